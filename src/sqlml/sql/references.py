"""Which tables of an attached source a statement reads.

>>> referenced_tables("SELECT * FROM pg.a JOIN pg.b USING (id) JOIN other.c USING (id)", "pg")
Counter({'a': 1, 'b': 1})
"""

from __future__ import annotations

from collections import Counter

from sqlglot import exp
from sqlglot.errors import SqlglotError

from sqlml.errors import SqlmlError
from sqlml.sql.dialect import SqlmlEvaluate
from sqlml.sql.dialects import engine_dialect

__all__ = ["referenced_tables"]


def referenced_tables(sql: str, alias: str, dialect: str = "duckdb") -> Counter[str]:
    """How many times a statement names each ``alias.<table>``, by table name as written.

    Tables are found with sqlglot (``exp.Table`` nodes whose schema is ``alias``), including
    the queries given to ``evaluate('model', '<query>')``. A statement sqlglot cannot parse
    yields nothing; the engine then reports what it cannot resolve.

    Args:
        sql: one statement (sqlml or engine SQL).
        alias: the attached source's alias, e.g. ``pg``; compared case-insensitively.
        dialect: the engine's sqlglot dialect.
    """
    try:
        trees = engine_dialect(dialect)().parse(sql)
    except (SqlglotError, SqlmlError):  # the front end reports malformed sqlml
        return Counter()
    found: Counter[str] = Counter()
    wanted = alias.casefold()
    for tree in trees:
        if tree is None:
            continue
        for table in tree.find_all(exp.Table):
            if (
                isinstance(table.this, exp.Identifier)
                and not table.catalog
                and table.db.casefold() == wanted
            ):
                found[table.name] += 1
        for call in tree.find_all(SqlmlEvaluate):
            found.update(referenced_tables(str(call.expression.this), alias, dialect))
    return found
