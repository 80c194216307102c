"""The sqlml dialect for DataFusion: :class:`~sqlml.sql.dialect.Sqlml`'s grammar, with
DataFusion's structs and EXTRACT fields in what the front end writes."""

from __future__ import annotations

import typing as t

from sqlglot import exp
from sqlglot.generator import Generator

from sqlml.sql.dialect import Sqlml, SqlmlGenerator

__all__ = ["SqlmlDataFusion"]


def _named_struct_sql(gen: Generator, node: exp.Struct) -> str:
    """``named_struct('a', x, 'b', y)``: DataFusion's struct with named fields."""
    args: list[str] = []
    for i, field in enumerate(node.expressions):
        if isinstance(field, exp.PropertyEQ):
            args += [gen.sql(exp.Literal.string(field.name)), gen.sql(field, "expression")]
        else:
            args += [gen.sql(exp.Literal.string(f"c{i}")), gen.sql(field)]
    return f"named_struct({', '.join(args)})"


class SqlmlDataFusionGenerator(SqlmlGenerator):
    """The generator for DataFusion: what the front end writes into DataFusion statements.

    The front end only writes its own constructs (bound function calls, quoted column
    names, relation names); everything else in a statement reaches DataFusion as written.
    """

    TRANSFORMS: t.ClassVar[dict[type[exp.Expr], t.Callable[..., str]]] = {
        **SqlmlGenerator.TRANSFORMS,
        exp.Struct: _named_struct_sql,
    }

    def extract_sql(self, expression: exp.Extract) -> str:
        # DataFusion knows PostgreSQL's EXTRACT(DOY ...), not DuckDB's EXTRACT(DAYOFYEAR ...).
        return f"EXTRACT({expression.this.name} FROM {self.sql(expression, 'expression')})"


class SqlmlDataFusion(Sqlml):
    """The sqlml dialect for DataFusion.

    sqlglot has no DataFusion dialect. DataFusion's SQL (sqlparser-rs, PostgreSQL-like)
    is read with the DuckDB-based grammar of :class:`Sqlml`, which accepts what surrounds
    sqlml's calls (``::`` casts, ``arrow_cast(...)``, ``named_struct``, subqueries without
    aliases, ...); statements without sqlml constructs are never parsed and reach
    DataFusion unchanged. Structs are written as DataFusion's ``named_struct``.

    >>> from sqlglot import parse_one
    >>> parse_one("SELECT {'a': x} AS s", dialect=SqlmlDataFusion).sql(dialect=SqlmlDataFusion)
    "SELECT named_struct('a', x) AS s"
    """

    Generator = SqlmlDataFusionGenerator
