"""DuckDB, the default embedded engine. The only module that imports duckdb."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from duckdb.func import FunctionNullHandling, PythonUDFType
from sqlglot import exp, parse_one
from sqlglot.errors import SqlglotError

from sqlml.engines.base import (
    Engine,
    HasNativePredict,
    HostAccess,
    Interruptible,
    ModelLoader,
    PredictKind,
    RestrictsHostAccess,
    ServesQualifiedStreams,
)
from sqlml.engines.binding import Binding, struct_call
from sqlml.errors import (
    ColumnNotFound,
    HostAccessDenied,
    QueryError,
    SqlmlError,
    StatementCancelled,
    TableNotFound,
)

if TYPE_CHECKING:
    from sqlml.catalog import Catalog, ModelVersion
    from sqlml.udfs.predict import LoadedModel

#: DuckDB's names for the Arrow types a prediction can have.
_DUCKDB_TYPES = {
    pa.string(): "VARCHAR",
    pa.large_string(): "VARCHAR",
    pa.bool_(): "BOOLEAN",
    pa.float64(): "DOUBLE",
    pa.float32(): "FLOAT",
    pa.int8(): "TINYINT",
    pa.int16(): "SMALLINT",
    pa.int32(): "INTEGER",
    pa.int64(): "BIGINT",
    pa.uint8(): "UTINYINT",
    pa.uint16(): "USMALLINT",
    pa.uint32(): "UINTEGER",
    pa.uint64(): "UBIGINT",
}
_PROBA_TYPE = "MAP(VARCHAR, DOUBLE)"

PREDICTION_TYPES: tuple[pa.DataType, ...] = tuple(_DUCKDB_TYPES)
"""The Arrow types a prediction can have, each with a typed function
(:meth:`DuckDBEngine.predict_function`)."""

BATCH_SIZE = 131_072
"""Rows per record batch of a streamed result (:meth:`DuckDBEngine.execute_reader`)."""


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _stream_name(schema: str, table: str) -> str:
    """The hidden, unqualified name a stream for ``schema.table`` is registered under."""
    return f"__sqlml_stream_{schema}_{table}"


class _Database:
    """sqlml's functions in one database file, which every connection to it shares.

    DuckDB keeps a Python function in the database instance (each connection to the file
    sees it, and a second ``create_function`` of the name fails), and the function stops
    working when the connection that created it closes. So the file's first engine opens
    a keeper connection that creates each function once and stays open while an engine
    uses the file; the engines' connections are its cursors. A call goes to an engine
    running a statement (the file's engines share one catalog, as a server's sessions
    do), and a function's error is kept for the engine that reports it. Settings are the
    instance's too: host access is restricted once, alike for every engine.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.keeper = duckdb.connect(path)
        self.engines: list[DuckDBEngine] = []
        self.functions: set[str] = set()
        self.lock = threading.Lock()
        self.access: HostAccess | None = None
        self.scratch: str | None = None
        self._failures: deque[tuple[str, SqlmlError]] = deque(maxlen=64)

    def engine(self) -> DuckDBEngine:
        """The engine a function call serves: one running a statement, else the newest."""
        with self.lock:
            ready = [engine for engine in self.engines if engine._loader is not None]
            busy = [engine for engine in ready if engine._busy]
            return (busy or ready or self.engines)[-1]

    def failed(self, exc: SqlmlError) -> None:
        with self.lock:
            self._failures.append((f"{type(exc).__name__}: {exc}", exc))

    def failure(self, message: str) -> SqlmlError | None:
        """The function error DuckDB's ``message`` reports, if it was one of sqlml's."""
        with self.lock:
            return next((exc for text, exc in reversed(self._failures) if text in message), None)

    def restrict(self, access: HostAccess) -> None:
        with self.lock:
            if self.access is None:
                self.scratch = tempfile.mkdtemp(prefix="sqlml-duckdb-")
                _restrict(self.keeper, access, self.scratch)
                self.access = access
            elif self.access != access:
                raise QueryError(
                    "duckdb",
                    f"{self.path} is already open with other host access; every session "
                    "of one database file has the same data directories",
                )


_DATABASES: dict[str, _Database] = {}
_DATABASES_LOCK = threading.Lock()


def _restrict(con: duckdb.DuckDBPyConnection, access: HostAccess, scratch: str) -> None:
    # DuckDB's own switches: no file, database, extension or network access but the
    # allowed directories (and a private directory for spilling), locked for good.
    allowed = [scratch, *map(str, access.readable), *map(str, access.writable)]
    listed = ", ".join(_literal(os.path.join(path, "")) for path in allowed)
    try:
        con.execute(f"SET temp_directory = {_literal(scratch)}")
        con.execute(f"SET allowed_directories = [{listed}]")
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
    except duckdb.Error as exc:
        raise QueryError("duckdb", f"cannot restrict host access: {exc}") from exc


def duckdb_type(type_: pa.DataType) -> str:
    """DuckDB's name for an Arrow type a prediction can have."""
    try:
        return _DUCKDB_TYPES[type_]
    except KeyError:
        raise QueryError("duckdb", f"predictions of type {type_} are not supported") from None


class DuckDBEngine(
    Engine, HasNativePredict, ServesQualifiedStreams, RestrictsHostAccess, Interruptible
):
    """DuckDB through its Python API; one connection per engine object.

    A DuckDB connection serves one call at a time; open one engine per client session.
    """

    name: ClassVar[str] = "duckdb"
    SQLGLOT_DIALECT: ClassVar[str] = "duckdb"

    def __init__(
        self,
        database: str | None = None,
        *,
        connection: duckdb.DuckDBPyConnection | None = None,
    ) -> None:
        self.database = database
        self._database: _Database | None = None
        """The database file's shared functions; None in memory or on a given connection."""
        self._busy = False
        try:
            if connection is not None:
                self.con = connection
            elif database is None or database.startswith(":memory:"):
                self.con = duckdb.connect(database or ":memory:")
            else:
                self._database = _join(self, database)
                self.con = self._database.keeper.cursor()
        except duckdb.Error as exc:
            self._leave()
            raise QueryError(self.name, f"cannot open database {database}: {exc}") from exc
        self._loader: ModelLoader | None = None
        self._functions: set[str] = self._database.functions if self._database else set()
        # The error a UDF raised in the running statement. DuckDB may run UDFs on its own
        # worker threads, so this is shared (one statement at a time per connection).
        self._failure: SqlmlError | None = None
        self._failure_lock = threading.Lock()
        self._cancelled: str | None = None
        """Why statements are stopped (:meth:`interrupt`), until :meth:`resume`."""
        self._stream_catalogs: set[str] = set()
        self._writes: HostAccess | None = None
        """Set when some readable directories are not writable: writes are checked."""
        self._scratch: str | None = None

    def restrict_host_access(self, access: HostAccess) -> None:
        if self._database is not None:
            self._database.restrict(access)
        else:
            self._scratch = tempfile.mkdtemp(prefix="sqlml-duckdb-")
            _restrict(self.con, access, self._scratch)
        if set(access.readable) - set(access.writable):
            self._writes = access

    def interrupt(self, reason: str) -> None:
        # DuckDB stops the running query (or the stream being read) at its next chunk;
        # the statement's error is then this one, as a UDF's own error is.
        with self._failure_lock:
            self._cancelled = reason
        self.con.interrupt()

    def resume(self) -> None:
        with self._failure_lock:
            self._cancelled = None

    def _check_writes(self, sql: str) -> None:
        """Refuse statements that would write outside the writable directories.

        DuckDB lets a statement write wherever it may read; where some readable
        directories are not writable, DuckDB's own parser says which statements write
        files (COPY, EXPORT DATABASE, ATTACH), and a COPY's direction and target are read
        with sqlglot.
        """
        assert self._writes is not None
        try:
            statements = self.con.extract_statements(sql)
        except duckdb.Error:
            return  # unparsable: DuckDB reports it when it runs the statement
        for statement in statements:
            if statement.type == duckdb.StatementType.COPY:
                try:
                    tree = parse_one(statement.query, dialect="duckdb")
                except SqlglotError:
                    tree = None
                if isinstance(tree, exp.Copy):
                    if tree.args.get("kind"):  # COPY ... FROM reads
                        continue
                    files = [f.name for f in tree.args.get("files") or []]
                    if files and all(self._writes.allows_write(f) for f in files):
                        continue
                    target = files[0] if files else None
                    raise HostAccessDenied(self.name, f"cannot write {target!r}", sql, target)
                raise HostAccessDenied(self.name, "cannot tell where this COPY writes", sql)
            if statement.type in (duckdb.StatementType.EXPORT, duckdb.StatementType.ATTACH):
                raise HostAccessDenied(
                    self.name, f"{statement.type.name} is not allowed on this server", sql
                )

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        try:
            relation = self._relation(sql, params)
            return pa.table({}) if relation is None else relation.to_arrow_table()
        except duckdb.Error as exc:
            raise self._error(exc, sql) from exc
        finally:
            self._busy = False

    def execute_reader(self, sql: str, params: Sequence[Any] | None = None) -> pa.RecordBatchReader:
        # DuckDB computes the result chunk by chunk as the reader is read; the connection
        # refuses other statements until the reader is exhausted or closed.
        try:
            relation = self._relation(sql, params)
            if relation is None:
                return pa.table({}).to_reader()
            reader = relation.to_arrow_reader(BATCH_SIZE)
        except duckdb.Error as exc:
            self._busy = False
            raise self._error(exc, sql) from exc
        return pa.RecordBatchReader.from_batches(reader.schema, self._batches(reader, sql))

    def _relation(self, sql: str, params: Sequence[Any] | None) -> duckdb.DuckDBPyRelation | None:
        """Start a statement (None: it has no result)."""
        with self._failure_lock:
            self._failure = None
            cancelled = self._cancelled
        if cancelled is not None:
            raise StatementCancelled(self.name, cancelled)
        if self._writes is not None:
            self._check_writes(sql)
        self._busy = True
        return self.con.sql(sql, params=params) if params else self.con.sql(sql)

    def _batches(self, reader: pa.RecordBatchReader, sql: str) -> Iterator[pa.RecordBatch]:
        try:
            # Arrow reports an error inside the stream as an OSError carrying DuckDB's text.
            yield from reader
        except (duckdb.Error, OSError) as exc:
            raise self._error(exc, sql) from exc
        finally:
            reader.close()
            self._busy = False

    def _error(self, exc: Exception, sql: str) -> SqlmlError:
        """The sqlml error for a failed statement: a UDF's own error, else a QueryError."""
        with self._failure_lock:
            cause, cancelled = self._failure, self._cancelled
        if cancelled is not None:
            return StatementCancelled(self.name, cancelled)
        if cause is None and self._database is not None:
            cause = self._database.failure(str(exc))
        return cause if cause is not None else _query_error(str(exc), sql)

    def register(self, name: str, data: object) -> None:
        try:
            self.con.register(name, data)
        except duckdb.Error as exc:
            raise QueryError(self.name, f"cannot register {name!r}: {exc}") from exc

    def register_file(
        self, name: str, path: str | os.PathLike[str], format: Literal["parquet", "csv"]
    ) -> None:
        try:
            reader = self.con.read_parquet if format == "parquet" else self.con.read_csv
            self.con.register(name, reader(os.fspath(path)))
        except duckdb.Error as exc:
            raise QueryError(self.name, f"cannot read {format} {path}: {exc}") from exc

    def unregister(self, name: str) -> None:
        self.con.unregister(name)

    # --- qualified streams (attached sources such as PostgreSQL) ----------------------------

    def register_stream(
        self, schema: str, table: str, data: pa.RecordBatchReader | pa.Table
    ) -> None:
        # con.register names are unqualified, so the data is registered under a hidden name
        # and ``schema.table`` is a view over it in an in-memory database attached as
        # ``schema``: nothing lands in the user's database file, and the view re-resolves
        # the hidden name each time, so a fresh reader per statement is all it takes.
        hidden = _stream_name(schema, table)
        try:
            if schema not in self._stream_catalogs:
                self._attach_stream_catalog(schema)
            self.con.register(hidden, data)
            self.con.execute(
                f"CREATE OR REPLACE VIEW {_quote(schema)}.main.{_quote(table)} "
                f"AS SELECT * FROM {_quote(hidden)}"
            )
        except duckdb.Error as exc:
            raise QueryError(self.name, f"cannot register {schema}.{table}: {exc}") from exc

    def unregister_stream(self, schema: str, table: str) -> None:
        if schema in self._stream_catalogs:
            self.con.execute(f"DROP VIEW IF EXISTS {_quote(schema)}.main.{_quote(table)}")
        self.con.unregister(_stream_name(schema, table))

    def _attach_stream_catalog(self, schema: str) -> None:
        taken = self.con.execute(
            "SELECT (SELECT count(*) FROM duckdb_databases() WHERE database_name = $1)"
            " + (SELECT count(*) FROM duckdb_schemas() WHERE schema_name = $1"
            " AND database_name = current_database())",
            [schema],
        ).fetchone()
        if taken and taken[0]:
            raise QueryError(
                self.name,
                f"cannot attach a source as {schema!r}: the engine already has a database or "
                "schema of that name; choose another alias",
            )
        self.con.execute(f"ATTACH ':memory:' AS {_quote(schema)}")
        self._stream_catalogs.add(schema)

    def install(self, loader: ModelLoader) -> None:
        self._loader = loader
        self._create("predict", "VARIANT", proba=False)
        self._create("predict_proba", _PROBA_TYPE, proba=True)

    def bind_predict(self, version: ModelVersion, model: LoadedModel, kind: PredictKind) -> Binding:
        """``__sqlml_predict_<type>('name@v', {feature: value, ...})``: one function per
        output type finds the model by its reference."""
        function = self.predict_function(model.output_type, proba=kind == "predict_proba")
        return struct_call(function, version.ref, version.feature_names)

    def predict_function(self, output_type: pa.DataType, proba: bool = False) -> str:
        """The name of the prediction function returning ``output_type`` (created on first
        use), called as ``function('name@3', <struct of the features>)``."""
        return_type = _PROBA_TYPE if proba else duckdb_type(output_type)
        name = "__sqlml_predict_proba" if proba else f"__sqlml_predict_{return_type.lower()}"
        if name not in self._functions:
            self._create(name, return_type, proba=proba)
        return name

    def _create(self, name: str, return_type: str, *, proba: bool) -> None:
        database = self._database
        if database is not None:
            with database.lock:
                if name not in database.functions:
                    self._define(database.keeper, name, return_type, proba)
            return
        if name in self._functions:
            self.con.remove_function(name)
        self._define(self.con, name, return_type, proba)

    def _define(
        self, con: duckdb.DuckDBPyConnection, name: str, return_type: str, proba: bool
    ) -> None:
        database = self._database

        def udf(ref: pa.ChunkedArray, row: pa.ChunkedArray) -> pa.Array:
            engine = self if database is None else database.engine()
            try:
                return engine._predict(ref, row, proba)
            except SqlmlError as exc:
                with engine._failure_lock:
                    engine._failure = exc
                if database is not None:
                    database.failed(exc)
                raise

        con.create_function(
            name,
            udf,
            parameters=None,
            return_type=return_type,
            type=PythonUDFType.ARROW,
            null_handling=FunctionNullHandling.SPECIAL,
            side_effects=False,
        )
        self._functions.add(name)

    def _predict(self, ref: pa.ChunkedArray, row: pa.ChunkedArray, proba: bool) -> pa.Array:
        if self._loader is None:
            raise QueryError(self.name, "sqlml's functions are not installed")
        refs = ref.combine_chunks() if isinstance(ref, pa.ChunkedArray) else ref
        distinct = pc.unique(refs)
        if len(distinct) == 1 and refs.null_count == 0:
            model = self._loader(str(distinct[0]))
            return model.predict_proba(row) if proba else model.predict(row)
        return self._predict_mixed(refs, row, proba)

    def _predict_mixed(self, refs: pa.Array, row: pa.ChunkedArray, proba: bool) -> pa.Array:
        """Rows that name different models: predict each group, put rows back in order."""
        assert self._loader is not None
        rows = row.combine_chunks() if isinstance(row, pa.ChunkedArray) else row
        parts: list[pa.Array] = []
        order: list[pa.Array] = []
        for value in pc.unique(refs).drop_null():
            positions = pc.indices_nonzero(pc.equal(refs, value))
            model = self._loader(str(value))
            subset = rows.take(positions)
            parts.append(model.predict_proba(subset) if proba else model.predict(subset))
            order.append(positions)
        nulls = pc.indices_nonzero(pc.is_null(refs))
        if len(nulls):
            parts.append(pa.nulls(len(nulls), type=parts[0].type if parts else pa.null()))
            order.append(nulls)
        combined = pa.concat_arrays([p.cast(parts[0].type) for p in parts])
        inverse = pc.array_sort_indices(pa.concat_arrays(order))
        return combined.take(inverse)

    def close(self) -> None:
        self.con.close()
        self._leave()
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)

    def _leave(self) -> None:
        """No longer use the database file; its last engine closes the keeper."""
        database, self._database = self._database, None
        if database is None:
            return
        with _DATABASES_LOCK:
            with database.lock:
                if self in database.engines:
                    database.engines.remove(self)
                last = not database.engines
            if last and _DATABASES.get(database.path) is database:
                del _DATABASES[database.path]
        if last:
            database.keeper.close()
            if database.scratch is not None:
                shutil.rmtree(database.scratch, ignore_errors=True)


def _join(engine: DuckDBEngine, path: str) -> _Database:
    """The shared functions of the database file ``path``, with ``engine`` among its users."""
    key = os.path.realpath(os.path.expanduser(path))
    with _DATABASES_LOCK:
        database = _DATABASES.get(key)
        if database is None:
            database = _DATABASES[key] = _Database(key)
        with database.lock:
            database.engines.append(engine)
    return database


def install(con: duckdb.DuckDBPyConnection, catalog: Catalog) -> DuckDBEngine:
    """Install ``predict`` and ``predict_proba`` on a plain DuckDB connection.

    The native forms take the model reference and the row as a struct, e.g.
    ``SELECT predict('churn', c) FROM customers c``; ``predict`` returns a VARIANT holding
    the prediction in the target's own type (cast it, e.g. ``::BOOLEAN``, for a typed
    column) and ``predict_proba`` a ``MAP(VARCHAR, DOUBLE)``.

    Args:
        con: the connection to install on (e.g. the one dbt-duckdb opens).
        catalog: where models are found.

    Returns:
        The engine wrapping ``con``; keep it alive as long as the connection is used.
    """
    from sqlml.models import ModelCache

    engine = DuckDBEngine(connection=con)
    engine.install(ModelCache(catalog).get)
    return engine


def _literal(text: str) -> str:
    """``text`` as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def _query_error(message: str, sql: str) -> QueryError:
    """A failed statement's error, typed when DuckDB's message says what is missing."""
    # Refused by enable_external_access = false: Permission Error: Cannot access file "x"
    head, sep, rest = message.partition('Cannot access file "')
    if "Permission Error" in message:
        path, found, _ = rest.partition('"')
        return HostAccessDenied("duckdb", message, sql, path if sep and found else None)
    # The catalog says: Table with name x does not exist!
    _, sep, rest = message.partition("Table with name ")
    table, found, _ = rest.partition(" does not exist")
    if sep and found:
        return TableNotFound("duckdb", message, sql, table)
    # The binder says: Referenced column "x" not found in FROM clause!
    head, sep, rest = message.partition('Referenced column "')
    column, found, _ = rest.partition('" not found')
    if sep and found and "Binder Error" in head:
        return ColumnNotFound("duckdb", message, sql, column)
    return QueryError("duckdb", message, sql)
