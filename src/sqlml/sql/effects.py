"""Whether a plain SQL statement only reads: what a served ``reader`` may run.

The test is an allow-list over the statement's sqlglot tree: queries, ``VALUES``,
``DESCRIBE``, ``SHOW``, ``SUMMARIZE``, ``EXPLAIN`` of a query, transactions, ``USE``, ``SET``
(the server's engines lock their configuration) and ``CREATE TEMP`` relations, which live
in the client's own session. Anything else, a statement sqlglot cannot read included,
writes.

>>> writes("SELECT * FROM t"), writes("CREATE TEMP TABLE t AS SELECT 1")
(None, None)
>>> writes("CREATE TABLE t AS SELECT 1"), writes("INSERT INTO t VALUES (1)")
('CREATE TABLE', 'INSERT')
>>> writes("EXPLAIN ANALYZE DELETE FROM t")
'EXPLAIN ANALYZE DELETE'
"""

from __future__ import annotations

from sqlglot import exp
from sqlglot.errors import SqlglotError

from sqlml.sql.dialects import engine_dialect
from sqlml.sql.expressions import Explain

__all__ = ["writes"]

#: Statements that only read, or change only the client's own session.
_READS: tuple[type[exp.Expr], ...] = (
    exp.Query,
    exp.Values,
    exp.Describe,
    exp.Show,
    exp.Summarize,
    exp.Transaction,
    exp.Commit,
    exp.Rollback,
    exp.Use,
    exp.Set,
)


def writes(sql: str, dialect: str = "duckdb", tree: exp.Expr | None = None) -> str | None:
    """What one statement would change beyond the client's session, in a few words for a
    message (``CREATE TABLE``, ``INSERT``); ``None`` when it only reads.

    Args:
        sql: the statement's text.
        dialect: the engine's sqlglot dialect.
        tree: the statement's tree, when the front end has parsed it already.
    """
    if tree is None:
        try:
            trees = [t for t in engine_dialect(dialect)().parse(sql) if t is not None]
        except SqlglotError:
            return "a statement sqlml cannot read"
        if len(trees) != 1:
            return "a statement sqlml cannot read"
        tree = trees[0]
    return _effect(tree, dialect)


def _effect(tree: exp.Expr, dialect: str) -> str | None:
    if isinstance(tree, _READS):
        return None
    if isinstance(tree, exp.Create | exp.Drop) and _temporary(tree):
        return None
    if isinstance(tree, Explain):
        # EXPLAIN plans a statement; EXPLAIN ANALYZE also runs it.
        inner = _effect(tree.this, dialect) if tree.args.get("analyze") else None
        return None if inner is None else f"EXPLAIN ANALYZE {inner}"
    if isinstance(tree, exp.Create):
        return f"CREATE {tree.args.get('kind') or ''}".strip()
    if isinstance(tree, exp.Command):
        return str(tree.this).upper()
    if isinstance(tree, exp.Column):  # a lone word sqlglot does not know (CHECKPOINT)
        return tree.name.upper()
    return tree.key.upper()


def _temporary(tree: exp.Create | exp.Drop) -> bool:
    if isinstance(tree, exp.Drop):
        return bool(tree.args.get("temporary"))
    properties = tree.args.get("properties")
    return properties is not None and any(
        isinstance(p, exp.TemporaryProperty) for p in properties.expressions
    )
