"""The expressions sqlml's statements and functions parse into, and the values of
CREATE MODEL's options: what :mod:`sqlml.sql.dialect`'s parser builds and the front end
reads."""

from __future__ import annotations

import typing as t

from sqlglot import exp

#: A CREATE MODEL option value as Python sees it.
OptionValue = str | int | float | bool | None | list[str | int | float | bool | None]

#: The sqlml functions, by the upper-case name they are called with.
MODEL_FUNCTIONS = frozenset({"PREDICT", "PREDICT_PROBA", "EVALUATE", "FEATURE_IMPORTANCE"})

END_META_KEY = "sqlml_end"
"""``meta`` key of the offset of the last character of a sqlml function call."""

PROJECTION_SPAN_META_KEY = "sqlml_projection_span"
"""``meta`` key of a SELECT item's (first, last) character offsets in the source text."""

QUERY_SPAN_META_KEY = "sqlml_query_span"
"""``meta`` key of CREATE MODEL's (first, last) character offsets of its query."""


# --------------------------------------------------------------------------- expressions


class CreateModel(exp.Expression):
    """``CREATE [OR REPLACE] MODEL this OPTIONS (options) AS expression``.

    ``options`` holds one ``exp.Property`` per option (key as ``exp.Var``, lower-cased).
    """

    arg_types: t.ClassVar[dict[str, bool]] = {
        "this": True,
        "replace": False,
        "options": False,
        "expression": True,
    }

    @property
    def options(self) -> dict[str, OptionValue]:
        """The options as Python values, keys lower-cased."""
        return {
            prop.name: option_value(prop.args["value"]) for prop in self.args.get("options") or []
        }


class ShowModels(exp.Expression):
    """``SHOW MODELS``."""

    arg_types: t.ClassVar[dict[str, bool]] = {}


class DescribeModel(exp.Expression):
    """``DESCRIBE MODEL this[@version | @alias]`` (``this VERSION version`` too)."""

    arg_types: t.ClassVar[dict[str, bool]] = {"this": True, "version": False, "alias": False}


class DropModel(exp.Expression):
    """``DROP MODEL [IF EXISTS] this [VERSION version [FORCE]]``."""

    arg_types: t.ClassVar[dict[str, bool]] = {
        "this": True,
        "exists": False,
        "version": False,
        "force": False,
    }


class DeployModel(exp.Expression):
    """``DEPLOY MODEL this VERSION version [AS alias]`` or ``DEPLOY MODEL this ROLLBACK
    [AS alias]`` (``version`` absent, ``rollback`` set)."""

    arg_types: t.ClassVar[dict[str, bool]] = {
        "this": True,
        "version": False,
        "alias": False,
        "rollback": False,
    }


class Explain(exp.Expression):
    """``EXPLAIN [ANALYZE] this``, parsed (not kept as a command) when it uses sqlml."""

    arg_types: t.ClassVar[dict[str, bool]] = {"this": True, "analyze": False}


class ModelFunction(exp.Func):
    """A sqlml function call; ``this`` is the model reference, a string literal."""

    @property
    def ref(self) -> str:
        """The model reference as written: ``name``, ``name@3`` or ``name@alias``."""
        return str(self.this.name)


class SqlmlPredict(exp.Expression, ModelFunction):
    """``predict('model', *)``, ``predict('model', col, ...)``, ``predict('model', t)``."""

    arg_types: t.ClassVar[dict[str, bool]] = {"this": True, "expressions": False}
    is_var_len_args = True
    _sql_names: t.ClassVar[list[str]] = ["PREDICT"]


class SqlmlPredictProba(exp.Expression, ModelFunction):
    """``predict_proba(...)``, in the forms of :class:`SqlmlPredict`."""

    arg_types: t.ClassVar[dict[str, bool]] = {"this": True, "expressions": False}
    is_var_len_args = True
    _sql_names: t.ClassVar[list[str]] = ["PREDICT_PROBA"]


class SqlmlEvaluate(exp.Expression, ModelFunction):
    """``evaluate('model', '<select>')``, a table function."""

    arg_types: t.ClassVar[dict[str, bool]] = {"this": True, "expression": True}
    _sql_names: t.ClassVar[list[str]] = ["EVALUATE"]


class SqlmlFeatureImportance(exp.Expression, ModelFunction):
    """``feature_importance('model')``, a table function."""

    _sql_names: t.ClassVar[list[str]] = ["FEATURE_IMPORTANCE"]


SCALAR_FUNCTIONS: tuple[type[ModelFunction], ...] = (SqlmlPredict, SqlmlPredictProba)
TABLE_FUNCTIONS: tuple[type[ModelFunction], ...] = (SqlmlEvaluate, SqlmlFeatureImportance)
STATEMENTS: tuple[type[exp.Expression], ...] = (
    CreateModel,
    ShowModels,
    DescribeModel,
    DropModel,
    DeployModel,
)


# --------------------------------------------------------------------------- option values


class _NotAnOption(ValueError):
    pass


def option_value(node: exp.Expr) -> OptionValue:
    """Return the Python value of an option's expression.

    Strings, numbers, booleans, NULL and bare words (``task = regression``) are scalars;
    ``(a, b)`` and ``[a, b]`` are lists of scalars.

    Raises:
        ValueError: the expression is none of those.
    """
    if isinstance(node, (exp.Tuple, exp.Array)):
        return [_scalar(item) for item in node.expressions]
    if isinstance(node, exp.Paren):
        return [_scalar(node.this)]
    return _scalar(node)


def _scalar(node: exp.Expr) -> str | int | float | bool | None:
    if isinstance(node, exp.Literal):
        if node.is_string:
            return str(node.this)
        text = str(node.this).replace("_", "")
        try:
            return int(text)
        except ValueError:
            return float(text)
    if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal) and node.this.is_number:
        value = _scalar(node.this)
        assert isinstance(value, (int, float))
        return -value
    if isinstance(node, exp.Boolean):
        return bool(node.this)
    if isinstance(node, exp.Null):
        return None
    if isinstance(node, exp.Column) and not node.table and isinstance(node.this, exp.Identifier):
        return str(node.name)
    raise _NotAnOption(node.sql(dialect="duckdb"))
