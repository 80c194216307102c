"""Query engines: one adapter per engine behind the :class:`Engine` interface."""

from __future__ import annotations

from sqlml.config import ENGINES, check_engine
from sqlml.engines.base import Engine, ModelLoader


def get_engine(name: str = "duckdb", database: str | None = None) -> Engine:
    """Open the engine called ``name``.

    Args:
        name: one of :data:`sqlml.config.ENGINES`.
        database: the engine's database file; in memory when None. DataFusion has no
            database file: giving one is a :class:`~sqlml.errors.ConfigError`.

    Raises:
        UnknownEngine: no such engine; the message suggests the closest name.
        ConfigError: ``database`` was given for DataFusion.
    """
    check_engine(name)
    if name == "duckdb":
        from sqlml.engines.duckdb import DuckDBEngine

        return DuckDBEngine(database)
    from sqlml.engines.datafusion import open_engine

    return open_engine(database)


__all__ = ["ENGINES", "Engine", "ModelLoader", "get_engine"]
