"""Linear and logistic regression models as SQL: imputation, scaling and one-hot written out.

The coefficients and intercepts come from :func:`~sqlml.udfs.describe.describe_linear`.
"""

from __future__ import annotations

import math

import numpy as np
from sqlglot import exp

from sqlml.errors import CompileNotSupported
from sqlml.sql.compile_exprs import (
    Scores,
    balanced_sum,
    div,
    double,
    identity,
    mul,
    quoted_column,
    sigmoid,
    sub,
)
from sqlml.sql.compile_inputs import Input, model_inputs
from sqlml.udfs.describe import describe_linear
from sqlml.udfs.predict import LoadedModel


def linear_scores(model: LoadedModel) -> Scores:
    """A linear or logistic model's scores: per class, the intercept plus the weighted,
    preprocessed inputs. The link is the sigmoid for a binary logistic model, else the
    identity (a multiclass model's softmax is taken over all its scores)."""
    coef, intercept, post = _coefficients(model)
    preprocessor = model.preprocessor
    inputs = model_inputs(model)
    width = preprocessor.width
    if coef.shape[0] != width or len(inputs) != width:
        raise CompileNotSupported(model.name, "the ONNX graph does not match the preprocessing")
    center = preprocessor.center if preprocessor.center is not None else np.zeros(width)
    scale = preprocessor.scale if preprocessor.scale is not None else np.ones(width)
    # skl2onnx writes a binary model as [-w, w]: the second column scores the positive class.
    binary = post == "sigmoid" and coef.shape[1] == 2
    columns = [1] if binary else list(range(coef.shape[1]))

    def raw(k: int) -> exp.Expression:
        column = columns[k]
        terms: list[exp.Expression] = []
        j = 0
        while j < width:
            input_ = inputs[j]
            if input_.category is not None:
                size = len(input_.categories or ())
                block = slice(j, j + size)
                terms.append(_onehot_term(input_, coef[block, column], center[block], scale[block]))
                j += size
                continue
            # (COALESCE(x, center) - center) / scale, as Preprocessor.transform
            filled = exp.Coalesce(this=input_.value(), expressions=[double(center[j])])
            scaled = div(sub(filled, double(center[j])), double(scale[j]))
            terms.append(mul(double(coef[j, column]), scaled))
            j += 1
        terms.append(double(intercept[column]))
        return balanced_sum(terms)

    if post == "sigmoid":
        return Scores(raw, sigmoid, 1, True)
    if post == "softmax":
        return Scores(raw, identity, len(columns), False)
    return Scores(raw, identity, 1, False)


def _onehot_term(
    input_: Input, weights: np.ndarray, center: np.ndarray, scale: np.ndarray
) -> exp.Expression:
    """A category's contribution: one constant per training category, another for NULL
    and unseen values (all one-hot columns 0)."""
    none = float(np.sum(weights * ((0.0 - center) / scale)))
    ifs = []
    for i, category in enumerate(input_.categories or ()):
        onehot = np.zeros(len(weights))
        onehot[i] = 1.0
        value = float(np.sum(weights * ((onehot - center) / scale)))
        ifs.append(exp.If(this=exp.Literal.string(category), true=double(value)))
    if not ifs:
        return double(none)
    return exp.Case(this=quoted_column(input_.feature), ifs=ifs, default=double(none))


def _coefficients(model: LoadedModel) -> tuple[np.ndarray, np.ndarray, str]:
    """Coefficients ``(width, k)``, intercepts ``(k,)`` and the output transform
    (``identity``, ``sigmoid`` or ``softmax``) of a linear or logistic model."""
    linear = describe_linear(model)
    if linear is None:
        raise CompileNotSupported(model.name, "its ONNX graph is not a linear model's")
    coef, intercept = linear.coefficients, linear.intercepts
    if model.task == "classification" and linear.link == "identity":
        raise CompileNotSupported(model.name, "its ONNX graph has no known probability output")
    if not all(math.isfinite(v) for v in coef.ravel()):
        raise CompileNotSupported(model.name, "its coefficients are not finite")
    return coef, intercept, linear.link
