"""Which tables of an attached source a statement reads.

>>> from sqlml.sql.statements import QueryStatement
>>> query = QueryStatement("SELECT * FROM pg.a JOIN pg.b USING (id) JOIN other.c USING (id)")
>>> referenced_tables(query, "pg")
Counter({'a': 1, 'b': 1})
"""

from __future__ import annotations

from collections import Counter

from sqlglot import exp
from sqlglot.errors import SqlglotError

from sqlml.errors import SqlmlError
from sqlml.sql.dialects import engine_dialect
from sqlml.sql.expressions import SqlmlEvaluate
from sqlml.sql.statements import CreateModelStatement, QueryStatement, Statement

__all__ = ["referenced_tables"]


def referenced_tables(statement: Statement, alias: str, dialect: str = "duckdb") -> Counter[str]:
    """How many times a statement names each ``alias.<table>``, by table name as written.

    Tables are found with sqlglot (``exp.Table`` nodes whose schema is ``alias``), including
    the queries given to ``evaluate('model', '<query>')``. A statement holding sqlml
    constructs is read from the tree the front end parsed; plain SQL, which the front end
    passes on unparsed, is parsed here (only when a source is attached). A statement
    sqlglot cannot parse yields nothing; the engine then reports what it cannot resolve.

    Args:
        statement: one parsed statement.
        alias: the attached source's alias, e.g. ``pg``; compared case-insensitively.
        dialect: the engine's sqlglot dialect.
    """
    if isinstance(statement, QueryStatement | CreateModelStatement) and statement.tree:
        return _tables_in(statement.tree, alias, dialect)
    if isinstance(statement, QueryStatement):
        return _tables_in_text(statement.sql, alias, dialect)
    return Counter()  # SHOW, DESCRIBE, DROP and DEPLOY MODEL read no tables


def _tables_in_text(sql: str, alias: str, dialect: str) -> Counter[str]:
    try:
        trees = engine_dialect(dialect)().parse(sql)
    except (SqlglotError, SqlmlError):  # the front end reports malformed sqlml
        return Counter()
    found: Counter[str] = Counter()
    for tree in trees:
        if tree is not None:
            found.update(_tables_in(tree, alias, dialect))
    return found


def _tables_in(tree: exp.Expr, alias: str, dialect: str) -> Counter[str]:
    found: Counter[str] = Counter()
    wanted = alias.casefold()
    for table in tree.find_all(exp.Table):
        named = isinstance(table.this, exp.Identifier) and not table.catalog
        if named and table.db.casefold() == wanted:
            found[table.name] += 1
    for call in tree.find_all(SqlmlEvaluate):
        found.update(_tables_in_text(str(call.expression.this), alias, dialect))
    return found
