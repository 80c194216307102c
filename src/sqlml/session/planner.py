"""The predict planner: how each ``predict``/``predict_proba`` call of a statement runs.

A call runs as the engine's prediction function (``udf``) or as the model compiled to one
SQL expression and inlined into the query (``sql``); the session's ``predict_path``
chooses. Under ``auto``, a statement the engine refuses while a call is inlined runs once
more with the prediction function for every call: at most one fallback per query.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, cast

import pyarrow as pa
from sqlglot import exp

from sqlml.catalog import ModelVersion
from sqlml.engines import Engine, binding
from sqlml.errors import ColumnNotFound, CompileNotSupported, FeatureMissing, QueryError
from sqlml.models import ModelCache
from sqlml.sql import frontend, rewrite
from sqlml.udfs.predict import LoadedModel

log = logging.getLogger("sqlml")

_Result = TypeVar("_Result", pa.Table, pa.RecordBatchReader)

#: Computes the relation an ``evaluate``/``feature_importance`` call reads.
Relation = Callable[[frontend.TableFunctionCall], pa.Table]

#: Algorithms whose ``predict`` the ``auto`` path inlines as compiled SQL: a few
#: multiply-adds per row, far cheaper for the engine than a call into Python (``make
#: bench``: compiled logistic regression runs >10x faster than the function on DuckDB).
INLINED_ALGORITHMS = frozenset({"linear", "logistic"})


@dataclass(frozen=True, slots=True)
class PredictPlan:
    """How one ``predict``/``predict_proba`` call of the last statement ran.

    Attributes:
        function: ``predict`` or ``predict_proba``.
        ref: the resolved model reference, e.g. ``churn@3``.
        path: ``sql`` (the compiled model, inlined) or ``udf`` (the prediction function).
        reason: why that path.
    """

    function: str
    ref: str
    path: str
    reason: str

    def __str__(self) -> str:
        how = "compiled SQL" if self.path == "sql" else "the prediction function"
        return f"{self.function}('{self.ref}') runs as {how}: {self.reason}"


@dataclass(slots=True)
class StatementState:
    """What one statement has planned: created when the statement starts, passed along.

    Attributes:
        predict_path: the session's ``predict_path`` when the statement started.
        pinned: the model each resolved reference was bound to, so the engine's loader
            serves the statement the models it was planned with.
        plan: one step per ``predict``/``predict_proba`` call, in order.
        fallback: why the engine refused the compiled SQL, once it has; every call then
            runs the prediction function.
    """

    predict_path: str = "auto"
    pinned: dict[str, LoadedModel] = field(default_factory=dict)
    plan: list[PredictPlan] = field(default_factory=list)
    fallback: str | None = None


@dataclass(frozen=True, slots=True)
class RewrittenQuery:
    """A query's text for the engine, the calls it binds and the relations it reads.

    Attributes:
        sql: the rewritten text.
        bound: the binding of each ``predict``/``predict_proba`` call.
        registered: the names of the relations registered for ``evaluate`` and
            ``feature_importance`` calls, unregistered when the query is done.
    """

    sql: str
    bound: Sequence[binding.Binding]
    registered: Sequence[str]


class PredictPlanner:
    """Binds the calls of a session's queries and runs them, with the one fallback.

    Args:
        engine: the session's engine.
        models: where models are loaded from.
    """

    def __init__(self, engine: Engine, models: ModelCache) -> None:
        self.engine = engine
        self.models = models
        self._names = itertools.count(1)

    def execute(
        self,
        sql: str | frontend.QueryStatement,
        params: Sequence[Any] | None,
        state: StatementState,
        run: Callable[[str, Sequence[Any] | None], _Result],
        relation: Relation,
        *,
        streams: bool = False,
    ) -> _Result:
        """Rewrite a query and ``run`` it. When the engine refuses it and
        :meth:`falls_back` agrees, it is rewritten and run once more, with the prediction
        function for every call; a second refusal is the caller's. The relations of
        evaluate() and feature_importance() are registered for the query only (so a stream
        of a query using them is read whole first).

        Raises:
            FeatureMissing: a feature of a bound model is not among the columns in scope.
        """
        for attempt in range(2):
            with self.rewritten(sql, state, relation) as query:
                try:
                    result = run(query.sql, params)
                except QueryError as exc:
                    missing = self.feature_missing(exc, query.bound)
                    if missing is not None:
                        raise missing from exc
                    if attempt > 0 or not self.falls_back(state, exc, query.bound):
                        raise
                    continue
                if streams and query.registered:
                    assert isinstance(result, pa.RecordBatchReader)
                    return cast("_Result", result.read_all().to_reader())
                return result
        raise AssertionError("unreachable: the second attempt returns or raises")

    @contextmanager
    def rewritten(
        self, sql: str | frontend.QueryStatement, state: StatementState, relation: Relation
    ) -> Iterator[RewrittenQuery]:
        """A query rewritten for the engine, its calls bound into ``state``; the relations
        of its evaluate() and feature_importance() calls are registered until exit."""
        registered: list[str] = []
        bound: list[binding.Binding] = []

        def table_function(call: frontend.TableFunctionCall) -> str:
            name = f"__sqlml_{call.function}_{next(self._names)}"
            self.engine.register(name, relation(call))
            registered.append(name)
            return name

        def bind(ref: str, kind: Literal["predict", "predict_proba"]) -> binding.Binding:
            bound.append(self.bind(state, ref, kind))
            return bound[-1]

        try:
            text = rewrite.rewrite_query(
                sql, bind, tables=table_function, dialect=self.engine.SQLGLOT_DIALECT
            )
            yield RewrittenQuery(text, bound, registered)
        finally:
            for name in registered:
                self.engine.unregister(name)

    def falls_back(
        self, state: StatementState, exc: QueryError, bound: Sequence[binding.Binding]
    ) -> bool:
        """Whether to run a query the engine refused again with the prediction function
        instead of compiled SQL: under ``auto``, when a call was inlined. The function then
        names a column of the wrong type (compiled SQL leaves it to the engine's casts),
        and whatever else the engine refused in the compiled SQL does not matter.

        When it does, ``state`` records why and forgets the refused plan, so the retry
        plans each call afresh (and EXPLAIN shows one row per call)."""
        if state.predict_path != "auto" or not any(bound_call.inlined for bound_call in bound):
            return False
        log.info("compiled predict SQL failed, running the prediction function: %s", exc)
        state.fallback = str(exc).splitlines()[0]
        state.plan.clear()
        return True

    def feature_missing(
        self, exc: QueryError, bound: Sequence[binding.Binding]
    ) -> FeatureMissing | None:
        """A feature that is not among the columns in scope fails in the engine's binder:
        the error naming it, when ``exc`` is that."""
        if not isinstance(exc, ColumnNotFound):
            return None
        for bound_call in bound:
            if exc.column.lower() in map(str.lower, bound_call.features):
                return FeatureMissing(bound_call.ref, exc.column)
        return None

    def bind(
        self, state: StatementState, ref: str, kind: Literal["predict", "predict_proba"]
    ) -> binding.Binding:
        """Bind one call: pin its model in ``state``, choose and record its path."""
        version, model = self.models.bind(ref, kind)
        state.pinned[version.ref] = model
        inline, reason = self.inline(state, version, model, kind)
        state.plan.append(
            PredictPlan(kind, version.ref, "udf" if inline is None else "sql", reason)
        )
        if inline is not None:
            return binding.inline(version.ref, version.feature_names, inline)
        bound = self.engine.bind_predict(version, model, kind)
        if kind == "predict_proba":
            bound = dataclasses.replace(bound, keys=model.class_keys)
        return bound

    def inline(
        self, state: StatementState, version: ModelVersion, model: LoadedModel, kind: str
    ) -> tuple[exp.Expr | None, str]:
        """The compiled expression to inline for a call (None: call the function), and why.

        Raises:
            CompileNotSupported: under ``sql``, the model cannot be compiled.
        """
        from sqlml.sql.compile import predict_expression

        path = state.predict_path
        if kind == "predict_proba":
            return None, "predict_proba always does"
        if path == "udf":
            return None, "predict_path = udf"
        if state.fallback is not None:
            return None, f"the engine refused the compiled SQL ({state.fallback})"
        if path == "auto" and version.algorithm not in INLINED_ALGORITHMS:
            return None, f"predict_path = auto, and a {version.algorithm} model runs faster so"
        try:
            compiled = self.models.compiled(model, predict_expression)
        except CompileNotSupported as exc:
            if path == "sql":
                raise
            return None, f"predict_path = auto, and the model cannot be compiled: {exc.reason}"
        if path == "sql":
            return compiled, "predict_path = sql"
        return compiled, f"predict_path = auto, and a {version.algorithm} model runs faster so"


def explain(plan: pa.Table, steps: Sequence[PredictPlan]) -> pa.Table:
    """The engine's EXPLAIN output (two text columns) after one row per sqlml call."""
    if plan.num_columns != 2 or not steps:
        return plan
    ours = pa.table(
        [["sqlml"] * len(steps), [str(step) for step in steps]],
        names=plan.column_names,
    )
    return pa.concat_tables([ours.cast(plan.schema), plan])
