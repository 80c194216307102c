"""Compile a trained model into one plain SQL expression that any engine evaluates natively.

The expression reads the model's feature columns by name (quoted identifiers) and applies
the stored preprocessing exactly as :class:`~sqlml.udfs.preprocess.Preprocessor` does, then
the model itself:

* LightGBM: every tree becomes a nested ``CASE``; the trees are summed as a balanced tree
  of ``+`` (a left-deep sum of hundreds of trees is slow to plan and evaluate), then the
  objective's link is applied (identity, ``exp``, sigmoid or softmax). The trees come
  from :func:`~sqlml.udfs.describe.describe_trees`.
* Linear and logistic regression: the coefficients and intercepts come from
  :func:`~sqlml.udfs.describe.describe_linear`; NULL imputation, scaling and one-hot
  encoding are written out.

Random forests are not compiled (:class:`~sqlml.errors.CompileNotSupported`).

How values are written, so that every engine computes in double precision what the
prediction function computes:

* Every float is ``CAST('<repr>' AS DOUBLE)`` (a bare ``0.1`` is a DECIMAL in DuckDB and a
  NUMERIC in PostgreSQL); the text is Python's shortest round-trip repr, so thresholds
  and leaf values are exact.
* A missing value is SQL NULL. LightGBM's routing is reproduced per split: for a split
  whose missing type is ``NaN`` a NULL goes the split's default direction; for ``None``
  LightGBM reads a NULL as 0.0 (so it goes left exactly when ``0 <= threshold``); for
  ``Zero`` a NULL and values within LightGBM's zero threshold go the default direction.
  A categorical split sends the listed training categories left and everything else
  (NULL, categories unseen at training) right.
* Categories are compared as strings (``"plan" IN ('basic', 'team')``); booleans are
  0/1; dates become year, month, day, ISO day of week - 1, day of year and days since
  1970-01-01; timestamps year, month, day, hour, day of week and seconds since the epoch.
* NaN in a float column is a number to SQL (larger than every other), not a missing
  value; use NULL for missing values.

Dialects are sqlglot's (``duckdb``, ``postgres``, ...) plus ``datafusion``, whose SQL is
written by :class:`~sqlml.sql.dialect_datafusion.SqlmlDataFusion`.

>>> import sqlml
>>> with sqlml.connect(catalog="sqlite:///:memory:") as session:
...     _ = session.sql("CREATE TABLE t AS SELECT i::DOUBLE AS x, 2 * i + 1.0 AS y "
...                     "FROM range(100) r(i)")
...     _ = session.sql("CREATE MODEL m OPTIONS (algorithm = 'linear', target = 'y') "
...                     "AS SELECT * FROM t")
...     sql = session.compile_model("m", "duckdb")
...     session.sql(f"SELECT round({sql}, 6) AS y FROM t WHERE x = 7").to_pylist()
[{'y': 15.0}]
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlglot import exp

from sqlml.catalog.entities import Label
from sqlml.errors import CompileNotSupported, NotAClassifier
from sqlml.sql.compile_exprs import EXP_LIMIT as EXP_LIMIT
from sqlml.sql.compile_exprs import (
    Scores,
    balanced_sum,
    case,
    clamp,
    div,
    double,
    label_literal,
    paren,
    sub,
)
from sqlml.sql.compile_linear import linear_scores
from sqlml.sql.compile_trees import ZERO_THRESHOLD as ZERO_THRESHOLD
from sqlml.sql.compile_trees import lightgbm_scores
from sqlml.sql.dialects import dialect_names, get_dialect
from sqlml.udfs.predict import LoadedModel, load_model

__all__ = [
    "compile_model",
    "dialect_names",
    "get_dialect",
    "predict_expression",
    "proba_expressions",
]


# --------------------------------------------------------------------------- public API


def predict_expression(model: LoadedModel | bytes) -> exp.Expression:
    """The expression of ``predict``: the predicted value, or the predicted class label.

    Labels are literals of the target's values (strings, integers, booleans, floats), the
    same values ``predict`` returns.

    Args:
        model: a loaded model or an artifact's bytes.

    Raises:
        CompileNotSupported: the model's algorithm, objective or a feature's type cannot
            be compiled.
    """
    loaded = _loaded(model)
    scores = _scores(loaded)
    if loaded.task == "regression":
        return scores.output(0)
    labels = [label_literal(label, loaded.output_type) for label in loaded.classes]
    if scores.binary:
        # predict picks the second class when its probability beats 1 - it.
        positive = exp.GT(this=paren(scores.output(0)), expression=double(0.5))
        return case(positive, labels[1], labels[0])
    return _argmax(scores, labels)


def proba_expressions(model: LoadedModel | bytes) -> dict[Label, exp.Expression]:
    """One probability expression per class, in the model's class order.

    For a binary model the second class (``classes[1]``, the positive class) gets the
    sigmoid and the first ``1 - `` it.

    Args:
        model: a loaded classification model or an artifact's bytes.

    Raises:
        NotAClassifier: the model is a regression model.
        CompileNotSupported: the model cannot be compiled.
    """
    loaded = _loaded(model)
    if loaded.task != "classification":
        raise NotAClassifier(loaded.name, loaded.task)
    scores = _scores(loaded)
    first, second = loaded.classes[0], loaded.classes[1]
    if scores.binary:
        positive = scores.output(0)
        return {first: sub(double(1.0), positive), second: scores.output(0)}
    return {label: _softmax(scores, k) for k, label in enumerate(loaded.classes)}


def compile_model(
    model: LoadedModel | bytes, dialect: str = "duckdb", *, proba: bool = False
) -> str:
    """Compile a model into SQL text of the given dialect.

    >>> compile_model(b"", "duckdbb")
    Traceback (most recent call last):
    ...
    sqlml.errors.UnknownDialect: unknown SQL dialect 'duckdbb'; did you mean 'duckdb'? ...

    Args:
        model: a loaded model or an artifact's bytes.
        dialect: a name from :func:`dialect_names`, e.g. ``duckdb``, ``postgres`` or
            ``datafusion``.
        proba: compile the class probabilities instead of the prediction.

    Returns:
        Without ``proba``: one expression, the value ``predict`` returns. With ``proba``:
        for a binary model one expression, the probability of the positive (second)
        class; for a multiclass model a select list ``<p0> AS "<class0>", <p1> AS ...``,
        one probability per class in class order.

    Raises:
        UnknownDialect: the dialect is not one sqlglot knows.
        NotAClassifier: ``proba`` for a regression model.
        CompileNotSupported: the model cannot be compiled.
    """
    target = get_dialect(dialect)
    if not proba:
        return target.generate(predict_expression(model), copy=False)
    expressions = proba_expressions(model)
    if len(expressions) == 2:
        return target.generate(list(expressions.values())[1], copy=False)
    items = [
        exp.alias_(expression, str(label), quoted=True, copy=False)
        for label, expression in expressions.items()
    ]
    return ",\n".join(target.generate(item, copy=False) for item in items)


# --------------------------------------------------------------------------- scores


def _loaded(model: LoadedModel | bytes) -> LoadedModel:
    return model if isinstance(model, LoadedModel) else load_model(model)


def _scores(model: LoadedModel) -> Scores:
    if model.algorithm == "lightgbm":
        return lightgbm_scores(model)
    if model.algorithm in ("linear", "logistic"):
        return linear_scores(model)
    raise CompileNotSupported(
        model.name,
        f"the {model.algorithm} algorithm is not supported (lightgbm, linear and logistic are)",
    )


def _argmax(scores: Scores, labels: Sequence[exp.Expression]) -> exp.Expression:
    """The label of the highest score, the first on ties (as NumPy's argmax):
    ``CASE GREATEST(s0, s1, ...) WHEN s0 THEN l0 WHEN s1 THEN l1 ... END``, so each score
    is written twice (pairwise comparisons would write it once per other class)."""
    count = scores.count
    highest = exp.Greatest(
        this=paren(scores.raw(0)),
        expressions=[paren(scores.raw(k)) for k in range(1, count)],
        ignore_nulls=True,  # scores are never NULL (see clamp)
    )
    ifs = [exp.If(this=paren(scores.raw(k)), true=labels[k]) for k in range(count - 1)]
    return exp.Case(this=highest, ifs=ifs, default=labels[-1])


def _softmax(scores: Scores, k: int) -> exp.Expression:
    """Class ``k``'s softmax probability, ``1 / sum_j EXP(s_j - s_k)``: no overflow."""
    terms: list[exp.Expression] = []
    for j in range(scores.count):
        if j == k:
            terms.append(double(1.0))
        else:
            terms.append(exp.Exp(this=clamp(sub(scores.raw(j), scores.raw(k)))))
    return div(double(1.0), balanced_sum(terms))
