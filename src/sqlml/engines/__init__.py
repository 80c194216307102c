"""Query engines: one adapter per engine behind the :class:`Engine` interface."""

from __future__ import annotations

from sqlml.config import ENGINES, check_engine
from sqlml.engines.base import Engine, ModelLoader


def get_engine(name: str = "duckdb", database: str | None = None) -> Engine:
    """Open the engine called ``name``.

    Args:
        name: one of :data:`sqlml.config.ENGINES`.
        database: the engine's database file; in memory when None.

    Raises:
        UnknownEngine: no such engine; the message suggests the closest name.
    """
    check_engine(name)
    if name == "duckdb":
        from sqlml.engines.duckdb import DuckDBEngine

        return DuckDBEngine(database)
    raise NotImplementedError(f"engine {name!r} is not available yet; use duckdb")


__all__ = ["ENGINES", "Engine", "ModelLoader", "get_engine"]
