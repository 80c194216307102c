"""The one registry of SQL dialects: the engines' (with sqlml's constructs) and the
targets a model compiles to (sqlglot's own).

Names resolve like sqlglot's ``Dialect.get_or_raise``, case-insensitively, and a typo is
answered with the closest valid name:

>>> engine_dialect("DataFusion").__name__
'SqlmlDataFusion'
>>> type(get_dialect("postgres")).__name__
'Postgres'
>>> get_dialect("postgress")
Traceback (most recent call last):
...
sqlml.errors.UnknownDialect: unknown SQL dialect 'postgress'; did you mean 'postgres'? ...
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence

from sqlglot.dialects.dialect import Dialect

from sqlml.errors import UnknownDialect, UnknownEngine
from sqlml.sql.dialect import Sqlml
from sqlml.sql.dialect_datafusion import SqlmlDataFusion

__all__ = ["ENGINE_DIALECTS", "dialect_names", "engine_dialect", "get_dialect"]

#: The engines whose SQL the front end reads and writes, by name: each engine's own
#: sqlglot dialect extended with sqlml's statements and functions.
ENGINE_DIALECTS: Mapping[str, type[Sqlml]] = {"duckdb": Sqlml, "datafusion": SqlmlDataFusion}

#: Compile targets that sqlglot lacks, by name.
_TARGET_ALIASES: Mapping[str, type[Dialect]] = {"datafusion": SqlmlDataFusion}

#: Names in sqlglot's registry that are no compile target: sqlml's own engine dialects.
_HIDDEN = frozenset({"", "sqlml", "sqlmldatafusion"})


def _closest(name: str, choices: Sequence[str]) -> str | None:
    close = difflib.get_close_matches(name, choices, n=1)
    return close[0] if close else None


def engine_dialect(name: str) -> type[Sqlml]:
    """The sqlml dialect of an engine.

    Raises:
        UnknownEngine: no such engine; the message lists the valid names.
    """
    key = name.strip().lower()
    try:
        return ENGINE_DIALECTS[key]
    except KeyError:
        choices = sorted(ENGINE_DIALECTS)
        raise UnknownEngine(name, choices, _closest(key, choices)) from None


def dialect_names() -> tuple[str, ...]:
    """The dialect names :func:`get_dialect` accepts: sqlglot's and ``datafusion``."""
    names = {name for name in Dialect.classes if name not in _HIDDEN and not name.startswith("_")}
    return tuple(sorted(names | set(_TARGET_ALIASES)))


def get_dialect(name: str) -> Dialect:
    """The sqlglot dialect a compile target's name means.

    Raises:
        UnknownDialect: no such dialect; the message lists the valid names.
    """
    key = name.strip().lower()
    if key in _TARGET_ALIASES:
        return _TARGET_ALIASES[key]()
    valid = dialect_names()
    if key not in valid:
        raise UnknownDialect(name, valid, _closest(key, valid))
    return Dialect.get_or_raise(key)
