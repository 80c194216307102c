"""The one entry point: a Session wires an engine, a catalog and the SQL front end.

>>> import sqlml
>>> with sqlml.connect(catalog="sqlite:///:memory:") as session:
...     session.sql("SELECT 42 AS answer").to_pylist()
[{'answer': 42}]
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

import pyarrow as pa
from sqlglot import exp

from sqlml._closing import Closing
from sqlml.catalog import Catalog, CompiledKind, ModelVersion, open_catalog
from sqlml.config import check_predict_path, load_settings
from sqlml.engines import Engine, get_engine
from sqlml.errors import (
    CompileNotSupported,
    FeatureMissing,
    ModelExists,
    ModelNotFound,
    NotAClassifier,
    QueryError,
    SourceError,
    SqlmlError,
)
from sqlml.sql import frontend
from sqlml.udfs.predict import LoadedModel, load_model

if TYPE_CHECKING:
    from sqlml.pgsource import PostgresSource

log = logging.getLogger("sqlml")

_Result = TypeVar("_Result", pa.Table, pa.RecordBatchReader)

#: Called as ``progress(stage, done, total)`` while a model trains.
Progress = Callable[[str, int, int], None]

_CACHE_SIZE = 32
_cache: OrderedDict[tuple[str, int, str], LoadedModel] = OrderedDict()
#: Each cached model's compiled predict expression, for as long as the model is cached.
_compiled: weakref.WeakKeyDictionary[LoadedModel, exp.Expr] = weakref.WeakKeyDictionary()
_cache_lock = threading.Lock()


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


class ModelCache:
    """Loads models from a catalog, keeping them per process by (name, version, sha256).

    The key holds the artifact's SHA-256, so a model re-created under an old name and
    version number is never served from a stale entry; references are resolved against
    the catalog on every call, so an alias move is seen at once.
    """

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def get(self, ref: str) -> LoadedModel:
        """The loaded model a reference (``name``, ``name@3``, ``name@alias``) means now."""
        return self.load(self.catalog.resolve(ref))

    def bind(self, ref: str, kind: str) -> tuple[ModelVersion, LoadedModel]:
        """The version a ``predict``/``predict_proba`` call names now, and its model.

        Raises:
            NotAClassifier: ``predict_proba`` of a regression model.
        """
        version = self.catalog.resolve(ref)
        model = self.load(version)
        if kind == "predict_proba" and model.task != "classification":
            raise NotAClassifier(version.ref, model.task)
        return version, model

    def load(self, version: ModelVersion) -> LoadedModel:
        """The loaded model of a catalog version."""
        key = (version.model, version.version, version.sha256)
        with _cache_lock:
            model = _cache.get(key)
            if model is not None:
                _cache.move_to_end(key)
                return model
        blob = self.catalog.load_artifact(version.model, version.version)
        model = load_model(blob, version.ref)
        with _cache_lock:
            _cache[key] = model
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
        return model


def connect(
    engine: str | None = None,
    catalog: str | Catalog | None = None,
    database: str | None = None,
    predict_path: str | None = None,
) -> Session:
    """Open a session.

    Args:
        engine: ``duckdb`` (the default) or ``datafusion``.
        catalog: a catalog URI or an open :class:`Catalog`; by default ``sqlite:///sqlml.db``
            in the working directory (or ``SQLML_CATALOG`` / ``sqlml.toml``).
        database: the engine's database file; in memory when None.
        predict_path: ``auto`` (the default), ``udf`` or ``sql``: see :class:`Session`.

    Returns:
        A :class:`Session`; use it as a context manager to close it.
    """
    flags = {"engine": engine, "database": database, "predict_path": predict_path}
    if not isinstance(catalog, Catalog):
        flags["catalog"] = catalog
    settings = load_settings(flags)
    opened = catalog if isinstance(catalog, Catalog) else open_catalog(settings.catalog)
    try:
        return Session(
            get_engine(settings.engine, settings.database),
            opened,
            predict_path=settings.predict_path,
        )
    except BaseException:
        if not isinstance(catalog, Catalog):
            opened.close()
        raise


class Session(Closing):
    """SQL in, Arrow out: sqlml's statements and the engine's, through one front end.

    Args:
        engine: the engine that runs queries.
        catalog: where models live.
        progress: called while a model trains; by default progress goes to the
            ``sqlml.train`` logger.
        owns_catalog: close the catalog when the session closes.
        predict_path: how ``predict`` runs. ``udf``: a call of the engine's vectorised
            prediction function. ``sql``: the model compiled to one SQL expression
            (:mod:`sqlml.sql.compile`) inlined into the query, which the engine then
            evaluates natively; a model that cannot be compiled is an error. ``auto`` (the
            default): compiled SQL for the models it is faster for (linear and logistic
            regression), the function for the others. ``predict_proba`` always calls the
            function. ``EXPLAIN`` shows which path each call took.
    """

    def __init__(
        self,
        engine: Engine,
        catalog: Catalog,
        *,
        progress: Progress | None = None,
        owns_catalog: bool = True,
        predict_path: str = "auto",
    ) -> None:
        self.predict_path = check_predict_path(predict_path)
        self.plan: list[PredictPlan] = []
        self._fallback: str | None = None
        self.engine = engine
        self.catalog = catalog
        self.progress = progress
        self.models = ModelCache(catalog)
        self._owns_catalog = owns_catalog
        self._pinned: dict[str, LoadedModel] = {}
        self._names = itertools.count(1)
        self._sources: dict[str, PostgresSource] = {}
        engine.install(self._load)

    # --- public API -------------------------------------------------------------------------

    def sql(self, query: str, params: Sequence[Any] | None = None) -> pa.Table:
        """Run one or more statements; return the result of the last one.

        Args:
            query: sqlml or engine SQL; statements separated by ``;``.
            params: positional parameters of the (last) statement, for the engine.

        Returns:
            The last statement's result as an Arrow table.
        """
        statements = frontend.split_statements(query)
        result = pa.table({})
        for i, statement in enumerate(statements):
            last = i == len(statements) - 1
            with self._attached_tables(statement):
                result = self._run(statement, params if last else None)
        return result

    def sql_reader(self, query: str, params: Sequence[Any] | None = None) -> pa.RecordBatchReader:
        """Like :meth:`sql`, but the last statement's result comes as a stream of record
        batches, computed as they are read: memory holds a few batches, not the result.

        Until the reader is exhausted or closed the session is busy: run nothing else on
        it meanwhile (DuckDB refuses; close the reader, or read it to the end, first).
        sqlml's own statements (``CREATE MODEL``, ``SHOW MODELS``...) and queries calling
        ``evaluate``/``feature_importance`` are computed whole, then read back.

        >>> with connect(catalog="sqlite:///:memory:") as session:
        ...     reader = session.sql_reader("SELECT range AS i FROM range(3)")
        ...     [batch.num_rows for batch in reader]
        [3]
        """
        if self._sources:
            # Attached tables are registered for one statement: compute it whole.
            return self.sql(query, params).to_reader()
        statements = frontend.split_statements(query)
        if not statements:
            return pa.table({}).to_reader()
        for text in statements[:-1]:
            self._run(text, None)
        last = frontend.parse_statement(statements[-1], self.engine.SQLGLOT_DIALECT)
        if isinstance(last, frontend.QueryStatement) and not last.explain:
            self._begin_statement()
            return self._query_reader(last.sql, params)
        return self._run(statements[-1], params).to_reader()

    def result_schema(self, query: str, params: Sequence[Any] | None = None) -> pa.Schema | None:
        """The schema of a query's result (the last statement's), without running it.

        Statements before the last are not run; a statement other than a query is never
        run here.

        Returns:
            The schema, or None when it cannot be known without running the statements
            (not a query, parameters missing, or the query fails).
        """
        statements = frontend.split_statements(query)
        if len(statements) != 1:
            return None
        try:
            statement = frontend.parse_statement(statements[0], self.engine.SQLGLOT_DIALECT)
        except SqlmlError:
            return None
        if not isinstance(statement, frontend.QueryStatement):
            return None
        registered: list[str] = []
        try:
            with self._attached_tables(statement.sql):
                rewritten = self._rewrite(statement.sql, registered)[0]
                return self.engine.result_schema(rewritten, params)
        except SqlmlError:
            return None
        finally:
            self._unregister(registered)

    def register(self, name: str, data: object) -> None:
        """Make a pyarrow Table or RecordBatchReader, or a pandas or polars DataFrame,
        queryable as ``name``."""
        self.engine.register(name, data)

    def read_parquet(self, name: str, path: str | os.PathLike[str]) -> None:
        """Make a Parquet file (a directory or glob of them on DataFusion) queryable as
        ``name``; queries read the file, nothing is copied.

        >>> import pyarrow.parquet as pq, tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "t.parquet"
        >>> pq.write_table(pa.table({"x": [1, 2]}), path)
        >>> with connect(engine="datafusion", catalog="sqlite:///:memory:") as session:
        ...     session.read_parquet("t", path)
        ...     session.sql("SELECT sum(x) AS s FROM t").to_pylist()
        [{'s': 3}]
        """
        self.engine.register_file(name, path, "parquet")

    def read_csv(self, name: str, path: str | os.PathLike[str]) -> None:
        """Make a CSV file with a header row queryable as ``name`` (types are inferred)."""
        self.engine.register_file(name, path, "csv")

    def compile_model(
        self, ref: str, dialect: str = "duckdb", *, proba: bool = False, save: bool = False
    ) -> str:
        """Compile a model into one SQL expression that ``dialect`` evaluates natively.

        The expression reads the model's features by column name and applies its stored
        preprocessing; see :mod:`sqlml.sql.compile` for what is supported.

        >>> sql = session.compile_model("churn@production", "postgres")  # doctest: +SKIP
        >>> session.sql(f"SELECT id, {sql} AS churn FROM customers")  # doctest: +SKIP

        Args:
            ref: ``name``, ``name@3`` (a version) or ``name@alias``.
            dialect: a sqlglot dialect name (``duckdb``, ``postgres``, ...) or
                ``datafusion``.
            proba: compile the class probabilities: for a binary model the probability
                of the second (positive) class, for a multiclass model a select list
                with one ``<probability> AS "<class>"`` per class.
            save: also store the text in the catalog (:meth:`Catalog.save_compiled`)
                under the resolved version, the dialect and the kind (``predict`` or
                ``proba``), where SQL-only tools such as a dbt-postgres macro read it.

        Returns:
            The SQL text.

        Raises:
            ModelNotFound: no such model, version or alias.
            UnknownDialect: no such dialect; the message lists the valid ones.
            NotAClassifier: ``proba`` for a regression model.
            CompileNotSupported: the model's algorithm (random forest) or objective
                cannot be compiled.
        """
        from sqlml.sql.compile import compile_model, get_dialect

        get_dialect(dialect)  # an unknown dialect fails before the model is loaded
        version = self.catalog.resolve(ref)
        text = compile_model(self.models.load(version), dialect, proba=proba)
        if save:
            kind: CompiledKind = "proba" if proba else "predict"
            self.catalog.save_compiled(version.model, version.version, dialect, kind, text)
        return text

    def close(self) -> None:
        """Close the engine (and the catalog, when the session opened it)."""
        for alias in list(self._sources):
            self.detach_postgres(alias)
        self.engine.close()
        if self._owns_catalog:
            self.catalog.close()

    # --- statements -------------------------------------------------------------------------

    def _run(self, sql: str, params: Sequence[Any] | None) -> pa.Table:
        statement = frontend.parse_statement(sql, self.engine.SQLGLOT_DIALECT)
        self._begin_statement()
        match statement:
            case frontend.CreateModelStatement():
                return self._create_model(statement)
            case frontend.ShowModelsStatement():
                return models_table(self.catalog)
            case frontend.DescribeModelStatement(name=name):
                return describe_table(self.catalog, name)
            case frontend.DropModelStatement():
                return self._drop_model(statement)
            case frontend.DeployModelStatement(name=name, version=version, alias=alias):
                self.catalog.set_alias(name, alias, version)
                return pa.table({"model": [name], "alias": [alias], "version": [version]})
            case frontend.QueryStatement(sql=text, model_refs=refs) if not refs:
                return self.engine.execute(text, params)
            case frontend.QueryStatement(explain=True):
                return self._explain(self._query(statement.sql, params))
            case _:
                return self._query(statement.sql, params)

    def _begin_statement(self) -> None:
        """Forget the models bound, and the paths taken, by the previous statement."""
        self._pinned = {}
        self.plan = []
        self._fallback = None

    def _query(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        """Run a query that may call predict, predict_proba or the table functions."""
        return self._execute(sql, params, self.engine.execute)

    def _query_reader(self, sql: str, params: Sequence[Any] | None) -> pa.RecordBatchReader:
        """:meth:`_query` as a stream of record batches."""

        def run(rewritten: str, params: Sequence[Any] | None) -> pa.RecordBatchReader:
            return self.engine.execute_reader(rewritten, params)

        return self._execute(sql, params, run, streams=True)

    def _execute(
        self,
        sql: str,
        params: Sequence[Any] | None,
        run: Callable[[str, Sequence[Any] | None], _Result],
        *,
        streams: bool = False,
    ) -> _Result:
        """Rewrite a query and ``run`` it; the relations of evaluate() and
        feature_importance() are registered for the statement only (so a stream of a
        statement using them is read whole first)."""
        registered: list[str] = []
        try:
            rewritten, bound = self._rewrite(sql, registered)
            try:
                result = run(rewritten, params)
            except QueryError as exc:
                missing = self._feature_missing(exc, bound)
                if missing is not None:
                    raise missing from exc
                if not self._falls_back(exc, bound):
                    raise
            else:
                if streams and registered:
                    assert isinstance(result, pa.RecordBatchReader)
                    return cast("_Result", result.read_all().to_reader())
                return result
        finally:
            self._unregister(registered)
        return self._execute(sql, params, run, streams=streams)

    def _falls_back(self, exc: QueryError, bound: Sequence[frontend.Binding]) -> bool:
        """Whether to run a statement the engine refused again with the prediction function
        instead of compiled SQL: under ``auto``, when a call was inlined. The function then
        names a column of the wrong type (compiled SQL leaves it to the engine's casts),
        and whatever else the engine refused in the compiled SQL does not matter."""
        if self.predict_path != "auto" or all(binding.inline is None for binding in bound):
            return False
        log.info("compiled predict SQL failed, running the prediction function: %s", exc)
        self._fallback = str(exc).splitlines()[0]
        self.plan = []
        return True

    def _unregister(self, names: Sequence[str]) -> None:
        for name in names:
            self.engine.unregister(name)

    def _rewrite(self, sql: str, registered: list[str]) -> tuple[str, list[frontend.Binding]]:
        """A query's text for the engine, and the models it binds. The relations made for
        evaluate() and feature_importance() are named in ``registered``: unregister them
        once the statement is done."""

        def table_function(call: frontend.TableFunctionCall) -> str:
            name = f"__sqlml_{call.function}_{next(self._names)}"
            self.engine.register(name, self._table_function(call))
            registered.append(name)
            return name

        bound: list[frontend.Binding] = []

        def bind(ref: str, kind: Literal["predict", "predict_proba"]) -> frontend.Binding:
            bound.append(self._bind(ref, kind))
            return bound[-1]

        rewritten = frontend.rewrite_query(
            sql, bind, tables=table_function, dialect=self.engine.SQLGLOT_DIALECT
        )
        return rewritten, bound

    def _feature_missing(
        self, exc: QueryError, bound: Sequence[frontend.Binding]
    ) -> FeatureMissing | None:
        """A feature that is not among the columns in scope fails in the engine's binder:
        the error naming it, when ``exc`` is that."""
        column = self.engine.missing_column(exc)
        for binding in bound:
            if column is not None and column.lower() in map(str.lower, binding.features):
                return FeatureMissing(binding.ref, column)
        return None

    def _bind(self, ref: str, kind: Literal["predict", "predict_proba"]) -> frontend.Binding:
        version, model = self.models.bind(ref, kind)
        self._pinned[version.ref] = model
        proba = kind == "predict_proba"
        inline, reason = self._inline(version, model, kind)
        self.plan.append(PredictPlan(kind, version.ref, "udf" if inline is None else "sql", reason))
        if inline is not None:
            return frontend.Binding("", version.ref, version.feature_names, inline=inline)
        if self.engine.EXACT_FUNCTION_SIGNATURES:
            function = self.engine.version_function(version, model, proba=proba)
            names = tuple(feature.name for feature in model.features)
            probes = self.engine.type_probes(model)
            return frontend.Binding(
                function, version.ref, names, arguments="features", type_probes=probes
            )
        function = self.engine.predict_function(model.output_type, proba=proba)
        return frontend.Binding(function, version.ref, version.feature_names)

    def _explain(self, plan: pa.Table) -> pa.Table:
        """The engine's EXPLAIN output (two text columns) after one row per sqlml call."""
        if plan.num_columns != 2 or not self.plan:
            return plan
        ours = pa.table(
            [["sqlml"] * len(self.plan), [str(step) for step in self.plan]],
            names=plan.column_names,
        )
        return pa.concat_tables([ours.cast(plan.schema), plan])

    def _inline(
        self, version: ModelVersion, model: LoadedModel, kind: str
    ) -> tuple[exp.Expr | None, str]:
        """The compiled expression to inline for a call (None: call the function), and why."""
        from sqlml.sql.compile import predict_expression

        if kind == "predict_proba":
            return None, "predict_proba always does"
        if self.predict_path == "udf":
            return None, "predict_path = udf"
        if self._fallback is not None:
            return None, f"the engine refused the compiled SQL ({self._fallback})"
        if self.predict_path == "auto" and version.algorithm not in INLINED_ALGORITHMS:
            return None, f"predict_path = auto, and a {version.algorithm} model runs faster so"
        with _cache_lock:
            cached = _compiled.get(model)
        if cached is None:
            try:
                cached = predict_expression(model)
            except CompileNotSupported as exc:
                if self.predict_path == "sql":
                    raise
                return None, f"predict_path = auto, and the model cannot be compiled: {exc.reason}"
            with _cache_lock:
                _compiled[model] = cached
        if self.predict_path == "sql":
            return cached, "predict_path = sql"
        return cached, f"predict_path = auto, and a {version.algorithm} model runs faster so"

    def _load(self, ref: str) -> LoadedModel:
        """The engine's way to models: those bound for the running statement, else the
        catalog (for the native ``predict('m', t)`` form)."""
        return self._pinned.get(ref) or self.models.get(ref)

    def _create_model(self, statement: frontend.CreateModelStatement) -> pa.Table:
        from sqlml.udfs.train import train

        try:
            versions = self.catalog.list_versions(statement.name)
        except ModelNotFound:
            versions = []
        if versions and not statement.replace:
            raise ModelExists(statement.name, len(versions))
        data = self._query(statement.query_sql)
        trained = train(
            data,
            name=statement.name,
            options=statement.options,
            training_sql=statement.query_sql,
            progress=self.progress,
        )
        version = self.catalog.register_version(statement.name, trained.spec, trained.artifact)
        log.info("trained %s on %d rows", version.ref, version.row_count)
        columns: dict[str, list[Any]] = {
            "model": [version.model],
            "version": [version.version],
            "algorithm": [version.algorithm],
            "task": [version.task],
            "rows": [version.row_count],
        }
        columns.update({name: [value] for name, value in sorted(version.metrics.items())})
        return pa.table(columns)

    def _drop_model(self, statement: frontend.DropModelStatement) -> pa.Table:
        try:
            if statement.version is None:
                self.catalog.delete_model(statement.name)
            else:
                self.catalog.delete_version(statement.name, statement.version)
        except ModelNotFound:
            if not statement.if_exists:
                raise
            return pa.table({"model": [statement.name], "dropped": ["nothing: no such model"]})
        what = "all versions" if statement.version is None else f"version {statement.version}"
        return pa.table({"model": [statement.name], "dropped": [what]})

    def _table_function(self, call: frontend.TableFunctionCall) -> pa.Table:
        from sqlml.udfs.explain import evaluate, feature_importance

        version = self.catalog.resolve(call.ref)
        model = self.models.load(version)
        if call.function == "feature_importance":
            return feature_importance(model)
        assert call.query is not None
        return evaluate(model, self._query(call.query))

    # --- PostgreSQL as a data source --------------------------------------------------------

    def attach_postgres(self, uri: str, schema: str = "public", alias: str = "pg") -> None:
        """Make the tables (and views) of a PostgreSQL schema queryable as ``alias.<table>``.

        Tables are read through ADBC as Arrow record batch streams: before each statement
        the session finds the ``alias.<table>`` names it reads and gives the engine a fresh
        stream of each, so every statement sees the table as it is when it starts.
        ``numeric`` columns arrive as double precision. Attaching an alias again replaces it.

        >>> session.attach_postgres("postgresql://ml@db/shop")  # doctest: +SKIP
        >>> session.sql("CREATE MODEL churn OPTIONS (target = 'churned') "
        ...             "AS SELECT * FROM pg.customers")  # doctest: +SKIP

        Args:
            uri: the database, e.g. ``postgresql://user:password@host:5432/db``.
            schema: the schema whose tables are attached.
            alias: the qualifier the tables are named with in SQL.

        Raises:
            SourceUnavailable: the server cannot be reached or refuses the credentials
                (the message shows the URI without its password).
            SourceTableNotFound: (from a later statement) it names a table the schema does
                not have; the message lists those it has.
        """
        from sqlml.pgsource import PostgresSource, redact

        if not alias.isidentifier():
            raise SourceError(
                redact(uri), f"invalid alias {alias!r}: use a name such as pg or sales"
            )
        source = PostgresSource(uri, schema=schema, alias=alias)
        self.detach_postgres(alias)
        self._sources[alias.casefold()] = source

    def detach_postgres(self, alias: str = "pg") -> None:
        """Forget an attached PostgreSQL schema and close its connection (no-op if absent)."""
        source = self._sources.pop(alias.casefold(), None)
        if source is not None:
            source.close()

    def write_postgres(
        self,
        table_name: str,
        data_or_query: object,
        mode: str = "create",
        uri: str | None = None,
        schema: str | None = None,
    ) -> int:
        """Write Arrow data, or a query's result, to a PostgreSQL table through ADBC ingest.

        >>> session.write_postgres("scores", "SELECT id, predict('churn', *) AS p "
        ...                        "FROM pg.customers", mode="replace")  # doctest: +SKIP
        50000

        Args:
            table_name: the table to write.
            data_or_query: a pyarrow Table, RecordBatch or RecordBatchReader, a DataFrame
                with ``__arrow_c_stream__`` (polars), or SQL run with :meth:`sql`.
            mode: ``create`` (the table must not exist), ``append`` (it must exist) or
                ``replace`` (dropped if it exists, then created).
            uri: the database; by default the first one attached with
                :meth:`attach_postgres`.
            schema: the table's schema; by default the attached schema (with ``uri``, the
                server's search path, normally ``public``).

        Returns:
            The number of rows written. The write is one transaction: on failure nothing
            is written.

        Raises:
            SourceError: a bad mode, no database attached and no ``uri``, or the write
                failed.
            SourceUnavailable: the server cannot be reached.
        """
        from sqlml import pgsource

        if uri is None and not self._sources:
            raise SourceError(
                "(none)",
                "no PostgreSQL database is attached; call attach_postgres() or pass uri=",
            )
        shown = pgsource.redact(uri) if uri is not None else next(iter(self._sources.values())).uri
        pgsource.check_write_mode(mode, shown)
        data = self.sql(data_or_query) if isinstance(data_or_query, str) else data_or_query
        if uri is not None:
            return pgsource.write_postgres(uri, table_name, data, mode, schema)
        return next(iter(self._sources.values())).write(table_name, data, mode, schema)

    def _attached_tables(self, statement: str) -> ExitStack:
        """A fresh stream, registered with the engine, of each attached table a statement
        reads; closing the returned stack unregisters and closes them."""
        stack = ExitStack()
        if not self._sources:
            return stack
        from sqlml.pgsource import referenced_tables

        try:
            for source in self._sources.values():
                counts: dict[str, int] = {}
                names = referenced_tables(statement, source.alias, self.engine.SQLGLOT_DIALECT)
                for name, count in names.items():
                    table = source.resolve(name)
                    counts[table] = counts.get(table, 0) + count
                for table, count in counts.items():
                    # A reader can be scanned once: a table named twice is read into memory.
                    data = source.read(table, stack, materialize=count > 1)
                    try:
                        self.engine.register_stream(source.alias, table, data)
                    except NotImplementedError as exc:
                        raise SourceError(
                            source.uri,
                            f"the {self.engine.name} engine cannot read attached tables yet",
                        ) from exc
                    stack.callback(self.engine.unregister_stream, source.alias, table)
        except BaseException:
            stack.close()
            raise
        return stack


def models_table(catalog: Catalog) -> pa.Table:
    """``SHOW MODELS``: a row per model with its versions, latest version and aliases."""
    aliases: dict[str, list[str]] = {}
    for alias in catalog.list_aliases():
        aliases.setdefault(alias.model, []).append(f"{alias.alias}={alias.version}")
    rows = []
    for model in catalog.list_models():
        versions = catalog.list_versions(model.name)
        latest = versions[-1] if versions else None
        rows.append(
            {
                "model": model.name,
                "task": model.task,
                "versions": len(versions),
                "latest": latest.version if latest else None,
                "algorithm": latest.algorithm if latest else None,
                "aliases": ", ".join(aliases.get(model.name, [])),
                "updated": latest.created_at if latest else model.created_at,
            }
        )
    schema = pa.schema(
        [
            ("model", pa.string()),
            ("task", pa.string()),
            ("versions", pa.int64()),
            ("latest", pa.int64()),
            ("algorithm", pa.string()),
            ("aliases", pa.string()),
            ("updated", pa.timestamp("us", tz="UTC")),
        ]
    )
    return pa.Table.from_pylist(rows, schema=schema)


def describe_table(catalog: Catalog, ref: str) -> pa.Table:
    """``DESCRIBE MODEL``: the latest (or referenced) version's lineage as property/value."""
    version = catalog.resolve(ref)
    aliases = [a.alias for a in catalog.list_aliases(version.model) if a.version == version.version]
    rows: list[tuple[str, str]] = [
        ("model", version.model),
        ("version", str(version.version)),
        ("aliases", ", ".join(aliases)),
        ("task", version.task),
        ("algorithm", version.algorithm),
        ("target", version.target),
        ("classes", ", ".join(str(c) for c in version.classes)),
        ("rows", str(version.row_count)),
        ("created_at", version.created_at.isoformat(timespec="seconds")),
    ]
    for feature in version.features:
        detail = feature.type
        if feature.categories is not None:
            detail += f" ({len(feature.categories)} categories)"
        rows.append((f"feature {feature.name}", detail))
    rows += [(f"metric {k}", f"{v:.6g}") for k, v in sorted(version.metrics.items())]
    rows += [(f"param {k}", str(v)) for k, v in sorted(version.hyperparameters.items())]
    rows += [
        ("training_sql", version.training_sql),
        ("data_fingerprint", version.data_fingerprint),
        ("artifact", f"{version.artifact_format}, sha256 {version.sha256}"),
    ]
    rows += [(f"library {k}", v) for k, v in sorted(version.library_versions.items())]
    return pa.table({"property": [r[0] for r in rows], "value": [r[1] for r in rows]})
