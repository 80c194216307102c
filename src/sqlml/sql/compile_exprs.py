"""The SQL expression builders the model compiler writes with (see :mod:`sqlml.sql.compile`).

Double literals, arithmetic that parenthesises its operands, ``CASE``, balanced sums, casts
and the links (sigmoid with a clamped ``EXP``), plus :class:`Scores`, the form in which the
compiler of each algorithm hands its scores to the public functions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pyarrow as pa
from sqlglot import exp

from sqlml.catalog.entities import Label

EXP_LIMIT = 700.0
"""Arguments of ``exp()`` are clamped to +-700: PostgreSQL raises an error for ``exp()`` of
about 710 and more (overflow) and of about -746 and less (underflow). The clamp changes a
probability by less than 1e-300."""


def double(value: float) -> exp.Expression:
    """A double literal every engine reads exactly: ``CAST('<repr>' AS DOUBLE)``."""
    return cast(exp.Literal.string(repr(float(value))), "double")


def paren(node: exp.Expression) -> exp.Expression:
    """``node`` in parentheses if it is an operator (the generator adds none)."""
    return exp.Paren(this=node) if isinstance(node, exp.Binary | exp.Unary) else node


def add(left: exp.Expression, right: exp.Expression) -> exp.Expression:
    """``left + right``."""
    return exp.Add(this=paren(left), expression=paren(right))


def sub(left: exp.Expression, right: exp.Expression) -> exp.Expression:
    """``left - right``."""
    return exp.Sub(this=paren(left), expression=paren(right))


def mul(left: exp.Expression, right: exp.Expression) -> exp.Expression:
    """``left * right``."""
    return exp.Mul(this=paren(left), expression=paren(right))


def div(left: exp.Expression, right: exp.Expression) -> exp.Expression:
    """``left / right``, a float division."""
    return exp.Div(this=paren(left), expression=paren(right), typed=False, safe=False)


def or_(left: exp.Expression, right: exp.Expression) -> exp.Expression:
    """``left OR right``."""
    return exp.Or(this=paren(left), expression=paren(right))


def and_(left: exp.Expression, right: exp.Expression) -> exp.Expression:
    """``left AND right``."""
    return exp.And(this=paren(left), expression=paren(right))


def case(condition: exp.Expression, then: exp.Expression, default: exp.Expression) -> exp.Case:
    """``CASE WHEN condition THEN then ELSE default END``."""
    return exp.Case(ifs=[exp.If(this=condition, true=then)], default=default)


def balanced_sum(terms: Sequence[exp.Expression]) -> exp.Expression:
    """A balanced tree of ``+``: depth log2(n), not n."""
    if len(terms) == 1:
        return terms[0]
    middle = len(terms) // 2
    return add(balanced_sum(terms[:middle]), balanced_sum(terms[middle:]))


def clamp(value: exp.Expression) -> exp.Expression:
    """``LEAST(GREATEST(value, -700), 700)``: a safe argument for ``EXP``."""
    # ignore_nulls: the value is never NULL, and it keeps sqlglot's DuckDB generator from
    # wrapping the call in a CASE that repeats it.
    low = exp.Greatest(this=value, expressions=[double(-EXP_LIMIT)], ignore_nulls=True)
    return exp.Least(this=low, expressions=[double(EXP_LIMIT)], ignore_nulls=True)


def sigmoid(value: exp.Expression, scale: float = 1.0) -> exp.Expression:
    """``1 / (1 + EXP(-scale * value))``, LightGBM's and the logistic's link."""
    power = exp.Exp(this=clamp(mul(double(-scale), value)))
    return div(double(1.0), add(double(1.0), power))


def label_literal(value: Label, output_type: pa.DataType) -> exp.Expression:
    """A class label as a literal of the target's type."""
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, str):
        return exp.Literal.string(value)
    if isinstance(value, float) or pa.types.is_floating(output_type):
        return double(float(value))
    literal = exp.Literal.number(abs(value))
    return exp.Neg(this=literal) if value < 0 else literal


def quoted_column(name: str) -> exp.Column:
    """The column ``name`` as a quoted identifier."""
    return exp.Column(this=exp.Identifier(this=name, quoted=True))


_TYPES = {
    "double": exp.DataType.Type.DOUBLE,
    "int": exp.DataType.Type.INT,
    "date": exp.DataType.Type.DATE,
    "timestamp": exp.DataType.Type.TIMESTAMP,
}


def cast(node: exp.Expression, type_: str) -> exp.Expression:
    """``CAST(node AS <type_>)``, ``type_`` one of double, int, date, timestamp."""
    # exp.DataType.build would parse the type's name: slow for tens of thousands of casts.
    return exp.Cast(this=node, to=exp.DataType(this=_TYPES[type_], nested=False))


def identity(value: exp.Expression) -> exp.Expression:
    """The identity link: the raw score is the output."""
    return value


@dataclass(frozen=True, slots=True)
class Scores:
    """The model's raw scores as SQL, before the link.

    ``raw(k)`` builds a fresh expression of class ``k``'s score (of the only score for
    regression and binary models); ``output(k)`` the linked output (value, positive
    probability). ``binary`` marks a two-class model with one score.
    """

    raw: Callable[[int], exp.Expression]
    link: Callable[[exp.Expression], exp.Expression]
    count: int
    binary: bool

    def output(self, k: int) -> exp.Expression:
        return self.link(self.raw(k))
