"""Settings: command-line flags > environment (``SQLML_*``) > ``sqlml.toml`` > defaults."""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

from sqlml.catalog import DEFAULT_CATALOG_URI
from sqlml.errors import ConfigError, UnknownEngine

#: The engines sqlml can run on.
ENGINES = ("duckdb", "datafusion")

#: How ``predict`` runs: ``auto`` picks per model, ``udf`` always calls the prediction
#: function, ``sql`` always inlines the model compiled to a SQL expression.
PREDICT_PATHS = ("auto", "udf", "sql")

CONFIG_FILE = "sqlml.toml"


@dataclass(frozen=True, slots=True)
class Settings:
    """Where the catalog is, which engine runs queries, the engine's database file, and a
    PostgreSQL database to read tables from.

    Attributes:
        catalog: the catalog URI (``sqlite:///sqlml.db`` by default).
        engine: ``duckdb`` (default) or ``datafusion``.
        database: the engine's database file; ``None`` means in memory.
        postgres: a PostgreSQL URI whose ``public`` tables ``sqlml sql`` and ``sqlml shell``
            attach as ``pg.<table>`` (see ``Session.attach_postgres``); ``None``: none.
        predict_path: how ``predict`` runs, one of :data:`PREDICT_PATHS` (see
            ``Session``).
    """

    catalog: str = DEFAULT_CATALOG_URI
    engine: str = "duckdb"
    database: str | None = None
    postgres: str | None = None
    predict_path: str = "auto"


def check_engine(name: str) -> str:
    """Return ``name`` if it is a known engine, else raise :class:`UnknownEngine`.

    >>> check_engine("duckdb")
    'duckdb'
    """
    if name in ENGINES:
        return name
    close = difflib.get_close_matches(name, ENGINES, n=1)
    raise UnknownEngine(name, ENGINES, close[0] if close else None)


def load_settings(
    flags: Mapping[str, str | None] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Settings:
    """Resolve the settings from flags, the environment, ``sqlml.toml`` and defaults.

    Args:
        flags: values given on the command line (``None`` for a flag not given).
        environ: the environment (defaults to ``os.environ``).
        cwd: where to look for ``sqlml.toml`` (defaults to the working directory).

    Raises:
        ConfigError: ``sqlml.toml`` is unreadable or has an unknown key or a bad value.
    """
    flags = flags or {}
    environ = os.environ if environ is None else environ
    names = [f.name for f in fields(Settings)]
    from_file = _read_file((cwd or Path.cwd()) / CONFIG_FILE, names)
    values: dict[str, str | None] = {}
    for name in names:
        for layer in (flags.get(name), environ.get(f"SQLML_{name.upper()}"), from_file.get(name)):
            if layer:
                values[name] = layer
                break
    settings = Settings(**values)  # type: ignore[arg-type]
    check_engine(settings.engine)
    check_predict_path(settings.predict_path)
    return settings


def check_predict_path(name: str) -> str:
    """Return ``name`` if it is one of :data:`PREDICT_PATHS`, else raise :class:`ConfigError`.

    >>> check_predict_path("compiled")
    Traceback (most recent call last):
    ...
    sqlml.errors.ConfigError: predict_path: expected one of auto, udf, sql; got 'compiled'
    """
    if name in PREDICT_PATHS:
        return name
    raise ConfigError("predict_path", f"expected one of {', '.join(PREDICT_PATHS)}; got {name!r}")


def _read_file(path: Path, names: list[str]) -> dict[str, str]:
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(str(path), f"cannot read it: {exc}") from exc
    table = data.get("sqlml", data)
    out: dict[str, str] = {}
    for key, value in table.items():
        if key not in names:
            raise ConfigError(
                f"{path}: {key}", f"unknown setting; valid settings: {', '.join(names)}"
            )
        if not isinstance(value, str):
            raise ConfigError(f"{path}: {key}", f"expected a string, got {value!r}")
        out[key] = value
    return out
