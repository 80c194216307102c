"""LightGBM models as SQL: every tree a nested ``CASE``, the trees summed, then the link.

The trees come from :func:`~sqlml.udfs.describe.describe_trees`; each split reproduces
LightGBM's routing of missing values (see :mod:`sqlml.sql.compile`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from sqlglot import exp

from sqlml.errors import CompileNotSupported
from sqlml.sql.compile_exprs import (
    Scores,
    and_,
    balanced_sum,
    case,
    div,
    double,
    identity,
    or_,
    quoted_column,
    sigmoid,
)
from sqlml.sql.compile_inputs import Input, model_inputs
from sqlml.udfs.describe import Leaf, Node, Split, describe_trees
from sqlml.udfs.predict import LoadedModel

ZERO_THRESHOLD = float(np.float32(1e-35))
"""LightGBM's ``kZeroThreshold`` (``1e-35f``): values this close to 0 are zero to a split
whose missing type is ``Zero``."""


def lightgbm_scores(model: LoadedModel) -> Scores:
    """A LightGBM model's scores: per class, the sum of its trees (their mean for
    LightGBM's random forest mode), and the objective's link."""
    ensemble = describe_trees(model)
    if ensemble.link in ("identity", "softmax"):
        link: Callable[[exp.Expression], exp.Expression] = identity
    elif ensemble.link == "exp":
        link = _exp
    elif ensemble.link == "sigmoid":
        scale = ensemble.sigmoid
        link = lambda value: sigmoid(value, scale)  # noqa: E731
    else:
        raise CompileNotSupported(model.name, f"LightGBM objective {ensemble.objective!r}")
    inputs = model_inputs(model)
    count = ensemble.num_class
    iterations = ensemble.iterations

    def raw(k: int) -> exp.Expression:
        total = balanced_sum([_tree(model, tree, inputs) for tree in ensemble.class_trees(k)])
        return div(total, double(float(iterations))) if ensemble.average else total

    binary = model.task == "classification" and count == 1
    return Scores(raw, link, count, binary)


def _exp(value: exp.Expression) -> exp.Expression:
    return exp.Exp(this=value)


def _tree(model: LoadedModel, node: Node, inputs: Sequence[Input]) -> exp.Expression:
    if isinstance(node, Leaf):
        if node.linear:
            raise CompileNotSupported(model.name, "linear trees (linear_tree) are not supported")
        return double(node.value)
    condition, left_if_true = _split(model, node, inputs[node.feature])
    left = _tree(model, node.left, inputs)
    right = _tree(model, node.right, inputs)
    return case(condition, left, right) if left_if_true else case(condition, right, left)


def _split(model: LoadedModel, node: Split, input_: Input) -> tuple[exp.Expression, bool]:
    """A split's condition, and whether a row for which it is true goes left (else right).

    A row for which the condition is NULL (or false) goes the other way: a split that
    sends missing values left tests ``value > threshold`` for going right, which a NULL
    fails, rather than ``value <= threshold OR value IS NULL`` for going left.
    """
    column = quoted_column(input_.feature)
    if node.decision == "==":
        # LightGBM sends NaN (NULL, unseen category) and negative codes right.
        categories = input_.categories or ()
        names = [categories[code] for code in node.categories if 0 <= code < len(categories)]
        if not names:
            return exp.false(), True
        return exp.In(this=column, expressions=[exp.Literal.string(name) for name in names]), True
    if node.decision != "<=":
        raise CompileNotSupported(model.name, f"LightGBM decision type {node.decision}")
    threshold = node.threshold
    missing = node.missing
    default_left = node.default_left
    condition: exp.Expression = exp.LTE(this=input_.value(), expression=double(threshold))
    if missing == "Zero":
        zero = exp.Between(
            this=input_.value(), low=double(-ZERO_THRESHOLD), high=double(ZERO_THRESHOLD)
        )
        condition = or_(condition, zero) if default_left else and_(condition, exp.Not(this=zero))
        if default_left:
            condition = or_(condition, exp.Is(this=column, expression=exp.null()))
        return condition, True
    # NaN: a missing value goes the default way; None: LightGBM reads it as 0.0.
    null_left = default_left if missing == "NaN" else threshold >= 0.0
    if null_left:
        return exp.GT(this=input_.value(), expression=double(threshold)), False
    return condition, True
