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
written by :class:`~sqlml.sql.dialect.SqlmlDataFusion`.

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

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
from sqlglot import exp

from sqlml.catalog.entities import Label, arrow_type_from_string
from sqlml.errors import CompileNotSupported, NotAClassifier
from sqlml.sql.dialects import dialect_names, get_dialect
from sqlml.udfs import preprocess
from sqlml.udfs.describe import Leaf, Node, Split, describe_linear, describe_trees
from sqlml.udfs.predict import LoadedModel, load_model

if TYPE_CHECKING:
    from sqlml.udfs.preprocess import Preprocessor

__all__ = [
    "compile_model",
    "dialect_names",
    "get_dialect",
    "predict_expression",
    "proba_expressions",
]


EXP_LIMIT = 700.0
"""Arguments of ``exp()`` are clamped to +-700: PostgreSQL raises an error for ``exp()`` of
about 710 and more (overflow) and of about -746 and less (underflow). The clamp changes a
probability by less than 1e-300."""

ZERO_THRESHOLD = float(np.float32(1e-35))
"""LightGBM's ``kZeroThreshold`` (``1e-35f``): values this close to 0 are zero to a split
whose missing type is ``Zero``."""


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
    labels = [_label(label, loaded.output_type) for label in loaded.classes]
    if scores.binary:
        # predict picks the second class when its probability beats 1 - it.
        positive = exp.GT(this=_paren(scores.output(0)), expression=_double(0.5))
        return _case(positive, labels[1], labels[0])
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
        return {first: _sub(_double(1.0), positive), second: scores.output(0)}
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


# --------------------------------------------------------------------------- SQL building


def _double(value: float) -> exp.Expression:
    """A double literal every engine reads exactly: ``CAST('<repr>' AS DOUBLE)``."""
    return _cast(exp.Literal.string(repr(float(value))), "double")


def _paren(node: exp.Expression) -> exp.Expression:
    """``node`` in parentheses if it is an operator (the generator adds none)."""
    return exp.Paren(this=node) if isinstance(node, exp.Binary | exp.Unary) else node


def _add(left: exp.Expression, right: exp.Expression) -> exp.Expression:
    return exp.Add(this=_paren(left), expression=_paren(right))


def _sub(left: exp.Expression, right: exp.Expression) -> exp.Expression:
    return exp.Sub(this=_paren(left), expression=_paren(right))


def _mul(left: exp.Expression, right: exp.Expression) -> exp.Expression:
    return exp.Mul(this=_paren(left), expression=_paren(right))


def _div(left: exp.Expression, right: exp.Expression) -> exp.Expression:
    return exp.Div(this=_paren(left), expression=_paren(right), typed=False, safe=False)


def _or(left: exp.Expression, right: exp.Expression) -> exp.Expression:
    return exp.Or(this=_paren(left), expression=_paren(right))


def _and(left: exp.Expression, right: exp.Expression) -> exp.Expression:
    return exp.And(this=_paren(left), expression=_paren(right))


def _case(condition: exp.Expression, then: exp.Expression, default: exp.Expression) -> exp.Case:
    return exp.Case(ifs=[exp.If(this=condition, true=then)], default=default)


def _sum(terms: Sequence[exp.Expression]) -> exp.Expression:
    """A balanced tree of ``+``: depth log2(n), not n."""
    if len(terms) == 1:
        return terms[0]
    middle = len(terms) // 2
    return _add(_sum(terms[:middle]), _sum(terms[middle:]))


def _clamp(value: exp.Expression) -> exp.Expression:
    """``LEAST(GREATEST(value, -700), 700)``: a safe argument for ``EXP``."""
    # ignore_nulls: the value is never NULL, and it keeps sqlglot's DuckDB generator from
    # wrapping the call in a CASE that repeats it.
    low = exp.Greatest(this=value, expressions=[_double(-EXP_LIMIT)], ignore_nulls=True)
    return exp.Least(this=low, expressions=[_double(EXP_LIMIT)], ignore_nulls=True)


def _sigmoid(value: exp.Expression, scale: float = 1.0) -> exp.Expression:
    """``1 / (1 + EXP(-scale * value))``, LightGBM's and the logistic's link."""
    power = exp.Exp(this=_clamp(_mul(_double(-scale), value)))
    return _div(_double(1.0), _add(_double(1.0), power))


def _label(value: Label, output_type: pa.DataType) -> exp.Expression:
    """A class label as a literal of the target's type."""
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, str):
        return exp.Literal.string(value)
    if isinstance(value, float) or pa.types.is_floating(output_type):
        return _double(float(value))
    literal = exp.Literal.number(abs(value))
    return exp.Neg(this=literal) if value < 0 else literal


# --------------------------------------------------------------------------- inputs


def _column(name: str) -> exp.Column:
    return exp.Column(this=exp.Identifier(this=name, quoted=True))


_TYPES = {
    "double": exp.DataType.Type.DOUBLE,
    "int": exp.DataType.Type.INT,
    "date": exp.DataType.Type.DATE,
    "timestamp": exp.DataType.Type.TIMESTAMP,
}


def _cast(node: exp.Expression, type_: str) -> exp.Expression:
    # exp.DataType.build would parse the type's name: slow for tens of thousands of casts.
    return exp.Cast(this=node, to=exp.DataType(this=_TYPES[type_], nested=False))


def _extract(part: str, node: exp.Expression) -> exp.Expression:
    return exp.Extract(this=exp.Var(this=part), expression=node)


def _date_part(part: str, column: exp.Expression) -> exp.Expression:
    """One of :data:`~sqlml.udfs.preprocess.DATE_PARTS` / ``TIMESTAMP_PARTS`` as double."""
    if part == "day_of_week":  # Arrow counts Monday = 0; ISODOW Monday = 1
        return _sub(_cast(_extract("ISODOW", column), "double"), _double(1.0))
    if part == "days_since_epoch":
        return _div(_cast(_extract("EPOCH", column), "double"), _double(86400.0))
    if part == "seconds_since_epoch":
        return _cast(_extract("EPOCH", column), "double")
    field = {"day_of_year": "DOY"}.get(part, part.upper())
    return _cast(_extract(field, column), "double")


@dataclass(frozen=True, slots=True)
class _Input:
    """One column of the model's input matrix, as SQL.

    ``value()`` builds a fresh float expression each call (sqlglot nodes have one parent);
    ``column`` is the feature, for NULL tests and category comparisons; ``categories`` is
    set for a category's code (``codes`` encoding) or one-hot position (``category``).
    """

    value: Callable[[], exp.Expression]
    feature: str
    categories: tuple[str, ...] | None = None
    category: int | None = None


def _inputs(model: LoadedModel) -> list[_Input]:
    """The columns of the input matrix, in the preprocessor's order."""
    preprocessor: Preprocessor = model.preprocessor
    inputs: list[_Input] = []
    for column in preprocessor.columns:
        name = column.name
        if column.kind == preprocess.NUMERIC:
            inputs.append(_Input(_value(name, ("double",)), name))
        elif column.kind == preprocess.BOOL:
            inputs.append(_Input(_value(name, ("int", "double")), name))
        elif column.kind == preprocess.CATEGORY:
            categories = column.categories or ()
            if preprocessor.encoding == "codes":
                inputs.append(_Input(_no_value(model, name), name, categories))
            else:
                for i in range(len(categories)):
                    inputs.append(_Input(_no_value(model, name), name, categories, i))
        elif column.kind == preprocess.DATE:
            for part in preprocess.DATE_PARTS:
                inputs.append(_Input(_value(name, ("date",), part), name))
        else:
            trained = arrow_type_from_string(column.type)
            if trained.tz is not None:
                raise CompileNotSupported(
                    model.name,
                    f"feature {name!r} is a timestamp with a time zone ({column.type}); "
                    "compiled SQL handles timestamps without one",
                )
            for part in preprocess.TIMESTAMP_PARTS:
                inputs.append(_Input(_value(name, ("timestamp",), part), name))
    return inputs


def _value(
    name: str, casts: tuple[str, ...], part: str | None = None
) -> Callable[[], exp.Expression]:
    """A builder of a column's value: cast in turn to ``casts``, then a date part."""

    def build() -> exp.Expression:
        node: exp.Expression = _column(name)
        for type_ in casts:
            node = _cast(node, type_)
        return node if part is None else _date_part(part, node)

    return build


def _no_value(model: LoadedModel, name: str) -> Callable[[], exp.Expression]:
    def fail() -> exp.Expression:
        raise CompileNotSupported(
            model.name, f"category feature {name!r} is used as a number by the model"
        )

    return fail


# --------------------------------------------------------------------------- models


@dataclass(frozen=True, slots=True)
class _Scores:
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


def _loaded(model: LoadedModel | bytes) -> LoadedModel:
    return model if isinstance(model, LoadedModel) else load_model(model)


def _scores(model: LoadedModel) -> _Scores:
    if model.algorithm == "lightgbm":
        return _lightgbm(model)
    if model.algorithm in ("linear", "logistic"):
        return _linear(model)
    raise CompileNotSupported(
        model.name,
        f"the {model.algorithm} algorithm is not supported (lightgbm, linear and logistic are)",
    )


def _argmax(scores: _Scores, labels: Sequence[exp.Expression]) -> exp.Expression:
    """The label of the highest score, the first on ties (as NumPy's argmax):
    ``CASE GREATEST(s0, s1, ...) WHEN s0 THEN l0 WHEN s1 THEN l1 ... END``, so each score
    is written twice (pairwise comparisons would write it once per other class)."""
    count = scores.count
    highest = exp.Greatest(
        this=_paren(scores.raw(0)),
        expressions=[_paren(scores.raw(k)) for k in range(1, count)],
        ignore_nulls=True,  # scores are never NULL (see _clamp)
    )
    ifs = [exp.If(this=_paren(scores.raw(k)), true=labels[k]) for k in range(count - 1)]
    return exp.Case(this=highest, ifs=ifs, default=labels[-1])


def _softmax(scores: _Scores, k: int) -> exp.Expression:
    """Class ``k``'s softmax probability, ``1 / sum_j EXP(s_j - s_k)``: no overflow."""
    terms: list[exp.Expression] = []
    for j in range(scores.count):
        if j == k:
            terms.append(_double(1.0))
        else:
            terms.append(exp.Exp(this=_clamp(_sub(scores.raw(j), scores.raw(k)))))
    return _div(_double(1.0), _sum(terms))


# --- LightGBM


def _lightgbm(model: LoadedModel) -> _Scores:
    ensemble = describe_trees(model)
    if ensemble.link in ("identity", "softmax"):
        link: Callable[[exp.Expression], exp.Expression] = _identity
    elif ensemble.link == "exp":
        link = _exp
    elif ensemble.link == "sigmoid":
        scale = ensemble.sigmoid
        link = lambda value: _sigmoid(value, scale)  # noqa: E731
    else:
        raise CompileNotSupported(model.name, f"LightGBM objective {ensemble.objective!r}")
    inputs = _inputs(model)
    count = ensemble.num_class
    iterations = ensemble.iterations

    def raw(k: int) -> exp.Expression:
        total = _sum([_tree(model, tree, inputs) for tree in ensemble.class_trees(k)])
        return _div(total, _double(float(iterations))) if ensemble.average else total

    binary = model.task == "classification" and count == 1
    return _Scores(raw, link, count, binary)


def _identity(value: exp.Expression) -> exp.Expression:
    return value


def _exp(value: exp.Expression) -> exp.Expression:
    return exp.Exp(this=value)


def _tree(model: LoadedModel, node: Node, inputs: Sequence[_Input]) -> exp.Expression:
    if isinstance(node, Leaf):
        if node.linear:
            raise CompileNotSupported(model.name, "linear trees (linear_tree) are not supported")
        return _double(node.value)
    condition, left_if_true = _split(model, node, inputs[node.feature])
    left = _tree(model, node.left, inputs)
    right = _tree(model, node.right, inputs)
    return _case(condition, left, right) if left_if_true else _case(condition, right, left)


def _split(model: LoadedModel, node: Split, input_: _Input) -> tuple[exp.Expression, bool]:
    """A split's condition, and whether a row for which it is true goes left (else right).

    A row for which the condition is NULL (or false) goes the other way: a split that
    sends missing values left tests ``value > threshold`` for going right, which a NULL
    fails, rather than ``value <= threshold OR value IS NULL`` for going left.
    """
    column = _column(input_.feature)
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
    condition: exp.Expression = exp.LTE(this=input_.value(), expression=_double(threshold))
    if missing == "Zero":
        zero = exp.Between(
            this=input_.value(), low=_double(-ZERO_THRESHOLD), high=_double(ZERO_THRESHOLD)
        )
        condition = _or(condition, zero) if default_left else _and(condition, exp.Not(this=zero))
        if default_left:
            condition = _or(condition, exp.Is(this=column, expression=exp.null()))
        return condition, True
    # NaN: a missing value goes the default way; None: LightGBM reads it as 0.0.
    null_left = default_left if missing == "NaN" else threshold >= 0.0
    if null_left:
        return exp.GT(this=input_.value(), expression=_double(threshold)), False
    return condition, True


# --- linear and logistic regression


def _linear(model: LoadedModel) -> _Scores:
    coef, intercept, post = _coefficients(model)
    preprocessor = model.preprocessor
    inputs = _inputs(model)
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
            filled = exp.Coalesce(this=input_.value(), expressions=[_double(center[j])])
            scaled = _div(_sub(filled, _double(center[j])), _double(scale[j]))
            terms.append(_mul(_double(coef[j, column]), scaled))
            j += 1
        terms.append(_double(intercept[column]))
        return _sum(terms)

    if post == "sigmoid":
        return _Scores(raw, _sigmoid, 1, True)
    if post == "softmax":
        return _Scores(raw, _identity, len(columns), False)
    return _Scores(raw, _identity, 1, False)


def _onehot_term(
    input_: _Input, weights: np.ndarray, center: np.ndarray, scale: np.ndarray
) -> exp.Expression:
    """A category's contribution: one constant per training category, another for NULL
    and unseen values (all one-hot columns 0)."""
    none = float(np.sum(weights * ((0.0 - center) / scale)))
    ifs = []
    for i, category in enumerate(input_.categories or ()):
        onehot = np.zeros(len(weights))
        onehot[i] = 1.0
        value = float(np.sum(weights * ((onehot - center) / scale)))
        ifs.append(exp.If(this=exp.Literal.string(category), true=_double(value)))
    if not ifs:
        return _double(none)
    return exp.Case(this=_column(input_.feature), ifs=ifs, default=_double(none))


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
