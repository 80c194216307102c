"""What the front end makes of a statement: sqlml's own statements, queries for the
engine, and the calls the rewrite hands to the caller."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from sqlglot import exp

from sqlml.catalog.entities import ModelRef
from sqlml.engines.binding import Binding
from sqlml.sql.expressions import OptionValue

__all__ = [
    "Bind",
    "CreateModelStatement",
    "DeployModelStatement",
    "DescribeModelStatement",
    "DropModelStatement",
    "QueryStatement",
    "ShowModelsStatement",
    "Statement",
    "TableFunctionCall",
    "TableFunctionHandler",
]


@dataclass(frozen=True, slots=True)
class CreateModelStatement:
    """``CREATE [OR REPLACE] MODEL name OPTIONS (...) AS <query>``.

    Attributes:
        name: the model name.
        replace: whether OR REPLACE was given.
        options: option values by lower-cased key; not validated here (the trainer does).
        query_sql: the training query, exactly as written (outer parentheses removed).
        tree: the statement's sqlglot tree from the one parse; None when built by hand.
    """

    name: str
    replace: bool
    options: Mapping[str, OptionValue]
    query_sql: str
    tree: exp.Expr | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class ShowModelsStatement:
    """``SHOW MODELS``."""


@dataclass(frozen=True, slots=True)
class DescribeModelStatement:
    """``DESCRIBE MODEL name[@version | @alias]`` or ``DESCRIBE MODEL name VERSION n``.

    Attributes:
        name: the model name.
        version: the version to describe; None for the latest (or the aliased) one.
        alias: the alias whose version to describe; None when not given.
    """

    name: str
    version: int | None = None
    alias: str | None = None

    @property
    def ref(self) -> ModelRef:
        """The described version as a model reference (``churn``, ``churn@2``, ...)."""
        return ModelRef(self.name, self.version, self.alias)


@dataclass(frozen=True, slots=True)
class DropModelStatement:
    """``DROP MODEL [IF EXISTS] name [VERSION n [FORCE]]``; ``version`` None drops every
    version; without ``force`` a version an alias points at is not dropped."""

    name: str
    version: int | None = None
    if_exists: bool = False
    force: bool = False


@dataclass(frozen=True, slots=True)
class DeployModelStatement:
    """``DEPLOY MODEL name VERSION n [AS alias]``, or with ``version`` None ``DEPLOY MODEL
    name ROLLBACK [AS alias]``: the alias goes back to the version deployed before."""

    name: str
    version: int | None
    alias: str = "production"

    @property
    def rollback(self) -> bool:
        """Whether this is ``DEPLOY MODEL name ROLLBACK``."""
        return self.version is None


@dataclass(frozen=True, slots=True)
class QueryStatement:
    """Any other statement, for the engine.

    Attributes:
        sql: the statement exactly as written.
        model_refs: the models its predict/predict_proba/evaluate/feature_importance calls
            name, each once, in order of appearance; empty for plain engine SQL (which then
            needs no rewrite).
        explain: the statement is ``EXPLAIN [ANALYZE] <query>`` calling sqlml functions.
        tree: the statement's sqlglot tree from the one parse, kept for the rewrite; None
            for plain engine SQL, which is never parsed.
    """

    sql: str
    model_refs: tuple[ModelRef, ...] = field(default=())
    explain: bool = False
    tree: exp.Expr | None = field(default=None, compare=False, repr=False)


Statement = (
    CreateModelStatement
    | ShowModelsStatement
    | DescribeModelStatement
    | DropModelStatement
    | DeployModelStatement
    | QueryStatement
)


#: Resolves a model reference as written (``'churn'``, ``'churn@production'``) for a kind of call.
Bind = Callable[[str, Literal["predict", "predict_proba"]], Binding]


@dataclass(frozen=True, slots=True)
class TableFunctionCall:
    """One ``evaluate(...)`` or ``feature_importance(...)`` in a query.

    Attributes:
        function: ``"evaluate"`` or ``"feature_importance"``.
        ref: the model reference as written.
        query: evaluate's query text; None for feature_importance.
    """

    function: Literal["evaluate", "feature_importance"]
    ref: str
    query: str | None = None

    @property
    def model_ref(self) -> ModelRef:
        """The parsed model reference."""
        return ModelRef.parse(self.ref)


#: Computes a table function's result, registers it, and returns the relation's name.
TableFunctionHandler = Callable[[TableFunctionCall], str]
