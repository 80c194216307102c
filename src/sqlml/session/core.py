"""The one entry point: a Session wires an engine, a catalog and the SQL front end.

>>> import sqlml
>>> with sqlml.connect(catalog="sqlite:///:memory:") as session:
...     session.sql("SELECT 42 AS answer").to_pylist()
[{'answer': 42}]
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import pyarrow as pa

from sqlml._closing import Closing
from sqlml.catalog import Catalog, CompiledKind, ModelRef, open_catalog
from sqlml.config import check_predict_path, load_settings
from sqlml.engines import Engine, get_engine
from sqlml.engines.base import HasNativePredict, Interruptible
from sqlml.errors import SqlmlError, StatementCancelled
from sqlml.models import ModelCache
from sqlml.session.planner import PredictPlan, PredictPlanner, Relation, StatementState, explain
from sqlml.session.sources import PostgresSources
from sqlml.session.statements import (
    Progress,
    Query,
    create_model,
    deploy_model,
    describe_table,
    drop_model,
    models_table,
    table_function,
)
from sqlml.sql import frontend
from sqlml.udfs.predict import LoadedModel


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
            owns_catalog=not isinstance(catalog, Catalog),  # a catalog given stays open
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

    Attributes:
        user: the served user the session is for, recorded as the owner of the models it
            creates; ``None`` for local use.
        authorize: called with each sqlml statement (CREATE/DROP/DEPLOY MODEL...) before it
            runs, to refuse it by raising (the server checks its users' roles so);
            ``None``, the default, allows everything, as local use does.
    """

    authorize: Callable[[frontend.Statement], None] | None = None
    user: str | None = None
    """The served user the session is for (the owner of models it creates); None locally."""

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
        self.engine = engine
        self.catalog = catalog
        self.progress = progress
        self._cancelled: str | None = None
        self.models = ModelCache(catalog)
        self.planner = PredictPlanner(engine, self.models)
        self._owns_catalog = owns_catalog
        self._sources = PostgresSources()
        # The last statement's state: what the engine's loader serves while it runs (a
        # stream runs after sql_reader returns) and what :attr:`plan` shows after it.
        self._statement = StatementState(self.predict_path)
        #: The models the statements of the last :meth:`sql`/:meth:`sql_reader` call name,
        #: in order, as their one parse found them (the server's metrics read it).
        self.called_models: tuple[ModelRef, ...] = ()
        if isinstance(engine, HasNativePredict):
            engine.install(self._load)

    @property
    def plan(self) -> list[PredictPlan]:
        """How each ``predict``/``predict_proba`` call of the last statement ran."""
        return self._statement.plan

    # --- public API -------------------------------------------------------------------------

    def script(self, query: str) -> frontend.Script:
        """``query`` split into statements to be parsed once, however often it then runs
        through :meth:`sql`, :meth:`sql_reader` or :meth:`result_schema`."""
        return frontend.Script(query, self.engine.SQLGLOT_DIALECT)

    def sql(self, query: str | frontend.Script, params: Sequence[Any] | None = None) -> pa.Table:
        """Run one or more statements; return the result of the last one.

        Args:
            query: sqlml or engine SQL, statements separated by ``;`` (or its
                :meth:`script`).
            params: positional parameters of the (last) statement, for the engine.

        Returns:
            The last statement's result as an Arrow table.
        """
        script = self._script(query)
        self.called_models = ()
        result = pa.table({})
        for i in range(len(script.texts)):
            last = i == len(script.texts) - 1
            statement = self._parse(script, i)
            with self._sources.attached_tables(statement, self.engine):
                result = self._run_parsed(statement, params if last else None)
        return result

    def sql_reader(
        self, query: str | frontend.Script, params: Sequence[Any] | None = None
    ) -> pa.RecordBatchReader:
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
        script = self._script(query)
        self.called_models = ()
        if not script.texts:
            return pa.table({}).to_reader()
        for i in range(len(script.texts) - 1):
            self._run(script, i, None)
        last = self._parse(script, len(script.texts) - 1)
        if isinstance(last, frontend.QueryStatement) and not last.explain:
            if self.authorize is not None:
                self.authorize(last)
            state = self._begin_statement()
            return self.planner.execute(
                last,
                params,
                state,
                self.engine.execute_reader,
                self._relation(state),
                streams=True,
            )
        return self._run_parsed(last, params).to_reader()

    def result_schema(
        self, query: str | frontend.Script, params: Sequence[Any] | None = None
    ) -> pa.Schema | None:
        """The schema of a query's result (the last statement's), without running it.

        Statements before the last are not run; a statement other than a query is never
        run here.

        Returns:
            The schema, or None when it cannot be known without running the statements
            (not a query, parameters missing, or the query fails).
        """
        script = self._script(query)
        if len(script.texts) != 1:
            return None
        try:
            statement = script.statement(0)
        except SqlmlError:
            return None
        if not isinstance(statement, frontend.QueryStatement):
            return None
        # Planned apart from the statements run: the last statement's plan stays as it is.
        state = StatementState(self.predict_path)
        try:
            with (
                self._sources.attached_tables(statement, self.engine),
                self.planner.rewritten(statement, state, self._relation(state)) as rewritten,
            ):
                return self.engine.result_schema(rewritten.sql, params)
        except SqlmlError:
            return None

    def schemata(self) -> list[tuple[str, str]]:
        """Every (catalog, schema) the session's engine has."""
        return self.engine.schemata()

    def relations(self) -> list[tuple[str, str, str, str]]:
        """Every table and view the session can query, as (catalog, schema, name, type)."""
        return self.engine.relations()

    def relation_schema(self, catalog: str, schema: str, name: str) -> pa.Schema:
        """The Arrow schema of one of :meth:`relations`."""
        return self.engine.relation_schema(catalog, schema, name)

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

    def interrupt(self, reason: str) -> None:
        """Stop the statement this session runs now, from another thread: it fails with
        :class:`~sqlml.errors.StatementCancelled` saying ``reason``, at the engine's next
        batch or a model's next boosting round; so does every statement until
        :meth:`resume`."""
        self._cancelled = reason
        if isinstance(self.engine, Interruptible):
            self.engine.interrupt(reason)

    def resume(self) -> None:
        """Let statements run again after :meth:`interrupt`."""
        self._cancelled = None
        if isinstance(self.engine, Interruptible):
            self.engine.resume()

    def _report(self, stage: str, done: int, total: int) -> None:
        """Training's progress: passed on, and where an interrupted training stops."""
        if self._cancelled is not None:
            raise StatementCancelled(self.engine.name, self._cancelled)
        if self.progress is not None:
            self.progress(stage, done, total)

    def close(self) -> None:
        """Close the engine (and the catalog, when the session opened it)."""
        self._sources.close()
        self.engine.close()
        if self._owns_catalog:
            self.catalog.close()

    # --- statements -------------------------------------------------------------------------

    def _script(self, query: str | frontend.Script) -> frontend.Script:
        return query if isinstance(query, frontend.Script) else self.script(query)

    def _parse(self, script: frontend.Script, index: int) -> frontend.Statement:
        """A statement of a script, parsed once; the models its calls name are noted."""
        statement = script.statement(index)
        if isinstance(statement, frontend.QueryStatement):
            self.called_models += statement.model_refs
        return statement

    def _run(self, script: frontend.Script, index: int, params: Sequence[Any] | None) -> pa.Table:
        return self._run_parsed(self._parse(script, index), params)

    def _run_parsed(self, statement: frontend.Statement, params: Sequence[Any] | None) -> pa.Table:
        if self.authorize is not None:
            self.authorize(statement)
        state = self._begin_statement()
        match statement:
            case frontend.CreateModelStatement():
                return create_model(
                    self.catalog, statement, self._query_of(state), self._report, self.user
                )
            case frontend.ShowModelsStatement():
                return models_table(self.catalog)
            case frontend.DescribeModelStatement():
                return describe_table(self.catalog, statement.ref)
            case frontend.DropModelStatement():
                return drop_model(self.catalog, statement)
            case frontend.DeployModelStatement():
                return deploy_model(self.catalog, statement)
            case frontend.QueryStatement(sql=text, model_refs=refs) if not refs:
                return self.engine.execute(text, params)
            case frontend.QueryStatement(explain=True):
                return explain(self._query(statement, params, state), state.plan)
            case _:
                return self._query(statement, params, state)

    def _begin_statement(self) -> StatementState:
        """A fresh state for the statement starting: nothing bound, no path taken yet."""
        self._statement = StatementState(self.predict_path)
        return self._statement

    def _query(
        self,
        sql: str | frontend.QueryStatement,
        params: Sequence[Any] | None,
        state: StatementState,
    ) -> pa.Table:
        """Run a query that may call predict, predict_proba or the table functions."""
        return self.planner.execute(sql, params, state, self.engine.execute, self._relation(state))

    def _query_of(self, state: StatementState) -> Query:
        """:meth:`_query` for queries a statement runs itself (without parameters)."""
        return lambda sql: self._query(sql, None, state)

    def _relation(self, state: StatementState) -> Relation:
        """Computes the relations of evaluate() and feature_importance() for a statement."""
        query = self._query_of(state)
        return lambda call: table_function(self.models, call, query)

    def _load(self, ref: str) -> LoadedModel:
        """The engine's way to models: those bound for the running statement, else the
        catalog (for the native ``predict('m', t)`` form)."""
        return self._statement.pinned.get(ref) or self.models.get(ref)

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
        self._sources.attach(uri, schema, alias)

    def detach_postgres(self, alias: str = "pg") -> None:
        """Forget an attached PostgreSQL schema and close its connection (no-op if absent)."""
        self._sources.detach(alias)

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
        self._sources.check_write(mode, uri)
        data = self.sql(data_or_query) if isinstance(data_or_query, str) else data_or_query
        return self._sources.write(table_name, data, mode, uri, schema)
