"""How one ``predict``/``predict_proba`` call is written for an engine.

The front end finds each call's values (one expression per feature, from ``*``, a row or
listed columns); the engine that will run the statement decides what the call becomes.
Three shapes exist:

>>> from sqlglot import exp
>>> values = {"age": exp.column("age"), "plan": exp.column("plan")}
>>> show = lambda binding: binding.write(values).sql("duckdb", normalize_functions=False)
>>> show(struct_call("sqlml_predict", "churn@3", ("age", "plan")))
"sqlml_predict('churn@3', {'age': age, 'plan': plan})"
>>> probe = lambda value: exp.Anonymous(this="arrow_typeof", expressions=[value])
>>> show(argument_call("p_churn_3", "churn@3", ("age", "plan"), probe, ("plan",)))
'p_churn_3(age, plan, arrow_typeof(plan))'
>>> show(inline("churn@3", ("age",), exp.column("age") * 2))
'(age * 2)'
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from sqlglot import exp

__all__ = ["Binding", "Write", "argument_call", "inline", "struct_call"]

#: Writes a call from each feature's value (keyed by feature name, in signature order).
Write = Callable[[Mapping[str, exp.Expr]], exp.Expr]


@dataclass(frozen=True, slots=True)
class Binding:
    """One resolved ``predict``/``predict_proba`` call, ready to be written.

    Attributes:
        ref: the resolved reference, e.g. ``'churn@3'``.
        features: the model's feature names, in signature order: the values the call takes.
        write: builds the call's expression from the values.
        inlined: whether the call is the model compiled to SQL rather than a function call.
        keys: for ``predict_proba``, the keys of the probability map (the class labels as
            text), so that a literal ``['key']`` that is not one can be refused; empty when
            not known.
    """

    ref: str
    features: tuple[str, ...]
    write: Write
    inlined: bool = False
    keys: tuple[str, ...] = ()


def struct_call(function: str, ref: str, features: Sequence[str]) -> Binding:
    """``function('ref', {feature: value, ...})``: one function per output type, for engines
    whose functions take any arguments; the model is found by its reference."""

    def write(values: Mapping[str, exp.Expr]) -> exp.Expr:
        fields = [
            exp.PropertyEQ(this=exp.to_identifier(name, quoted=True), expression=value)
            for name, value in values.items()
        ]
        return exp.Anonymous(
            this=exp.to_identifier(function),
            expressions=[exp.Literal.string(ref), exp.Struct(expressions=fields)],
        )

    return Binding(ref, tuple(features), write)


def argument_call(
    function: str,
    ref: str,
    features: Sequence[str],
    probe: Callable[[exp.Expr], exp.Expr] | None = None,
    probed: Sequence[str] = (),
) -> Binding:
    """``function(<value>, ...)``: one argument per feature in signature order, for a
    function bound to one model version (engines whose functions have exact signatures).

    ``probe`` writes, for each feature in ``probed``, an extra argument after the features
    telling the function the column's actual type, so it can refuse a column the engine
    would silently cast."""
    wanted = {name.casefold() for name in probed}

    def write(values: Mapping[str, exp.Expr]) -> exp.Expr:
        arguments = list(values.values())
        if probe is not None:
            arguments += [
                probe(value.copy()) for name, value in values.items() if name.casefold() in wanted
            ]
        return exp.Anonymous(this=exp.to_identifier(function), expressions=arguments)

    return Binding(ref, tuple(features), write)


def inline(ref: str, features: Sequence[str], expression: exp.Expr) -> Binding:
    """The model compiled to SQL (see :mod:`sqlml.sql.compile`), each unqualified column
    replaced by the value the call takes for that feature, in parentheses."""

    def write(values: Mapping[str, exp.Expr]) -> exp.Expr:
        folded = {name.casefold(): value for name, value in values.items()}

        def replace(node: exp.Expr) -> exp.Expr:
            if isinstance(node, exp.Column) and not node.table:
                return folded[node.name.casefold()].copy()
            return node

        return exp.Paren(this=expression.transform(replace))

    return Binding(ref, tuple(features), write, inlined=True)
