"""What the server does with each Flight SQL command: one handler per command and RPC.

:data:`COMMANDS` maps each command's message type to its :class:`Command`, the handlers
of the RPCs that take it (GetFlightInfo, GetSchema, DoGet, DoPut), as Arrow's
``FlightSqlServerBase`` has a method per command and RPC.

Results stream: GetFlightInfo starts the statement on the client's session and keeps its
open record batch reader under the ticket (the FlightInfo's schema is the reader's); DoGet
sends the batches as the engine computes them, so memory holds a few batches, not the
result.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.flight as flight
from google.protobuf.message import Message

from sqlml.server import protocol as pb
from sqlml.server.errors import flight_errors
from sqlml.server.metadata import catalog_metadata
from sqlml.server.metrics import Metrics
from sqlml.server.schemas import (
    CATALOGS_SCHEMA,
    DB_SCHEMAS_SCHEMA,
    KEYS_SCHEMA,
    PRIMARY_KEYS_SCHEMA,
    SQL_INFO_SCHEMA,
    TABLE_TYPES,
    TABLE_TYPES_SCHEMA,
    TABLES_SCHEMA,
    TABLES_WITH_SCHEMA_SCHEMA,
    XDBC_TYPE_INFO_SCHEMA,
    sql_info_table,
    xdbc_type_info,
)
from sqlml.server.state import Client, Result, ServerState, Stream
from sqlml.session import Session
from sqlml.sql import frontend

log = logging.getLogger("sqlml.server")

#: The largest record batch sent, in bytes. gRPC clients refuse messages over 16 MiB by
#: default (ADBC's Flight SQL driver among them), so larger batches go out in slices.
MAX_BATCH_BYTES = 8 * 1024 * 1024

#: A started command: the client's key, the client whose session the result reads from
#: (None for results in memory) and the result.
Started = tuple[str, Client | None, Stream]
InfoHandler = Callable[[ServerState, Any, Any], Started]
SchemaHandler = Callable[[ServerState, Any, Any], pa.Schema]
GetHandler = Callable[[ServerState, Any, Any], Any]
PutHandler = Callable[[ServerState, Any, Any, Any, Any], None]
#: Builds a metadata command's result: ``(state, context, command) -> table``.
Metadata = Callable[[ServerState, Any, Any], pa.Table]


@dataclass(frozen=True, slots=True)
class Command:
    """The handlers of one Flight SQL command, per RPC; None where the RPC does not take it.

    Each is called with the server's state, the call's context and the command.

    Attributes:
        info: GetFlightInfo: start the command (its result waits under a ticket).
        schema: GetSchema: the schema of the command's result, without running it.
        get: DoGet: the stream of a ticket's result.
        put: DoPut: run the command on the uploaded batches (a reader, then a writer for
            the answer).
    """

    info: InfoHandler | None = None
    schema: SchemaHandler | None = None
    get: GetHandler | None = None
    put: PutHandler | None = None


class Observation:
    """One call's log line and metrics, recorded once when it ends."""

    def __init__(self, metrics: Metrics | None, context: Any, kind: str, what: str) -> None:
        self.metrics = metrics
        self.kind = kind
        self.what = " ".join(what.split())[:200]
        middleware = context.get_middleware("auth")
        self.user = getattr(middleware, "user", None) or "-"
        self.models: Sequence[str] = ()
        self.started = time.perf_counter()

    def done(self, status: str, rows: int) -> None:
        seconds = time.perf_counter() - self.started
        log.info(
            "query user=%s kind=%s status=%s rows=%d duration_ms=%.1f sql=%r",
            self.user,
            self.kind,
            status,
            rows,
            seconds * 1000,
            self.what,
        )
        if self.metrics is not None:
            self.metrics.observe(self.kind, status, rows, seconds, self.models)


def start(
    state: ServerState,
    context: Any,
    query: str | frontend.Script,
    params: list[list[Any]] | None,
    kind: str,
) -> Started:
    """Start a statement on the client's session; its result streams from there."""
    observation = Observation(state.metrics, context, kind, _text(query))
    try:
        key, client = state.client(context)
        with client.use() as session:
            state.begin_statement(client)
            try:
                if params and len(params) > 1:
                    tables = [session.sql(query, row) for row in params]
                    reader = pa.concat_tables(tables).to_reader()
                else:
                    reader = session.sql_reader(query, params[0] if params else None)
            except BaseException:
                state.end_statement(client)
                raise
            if state.metrics is not None:
                observation.models = _model_names(session)
            stream = Stream(reader, observation.done, lambda: state.end_statement(client))
            client.busy = stream
    except BaseException:
        observation.done("error", 0)
        raise
    return key, client, stream


def update(
    state: ServerState,
    context: Any,
    query: str | frontend.Script,
    params: list[list[Any]] | None,
    kind: str,
) -> int:
    """Run a statement to its end; the rows it changed (-1 when unknown)."""
    observation = Observation(state.metrics, context, kind, _text(query))
    status, count = "error", -1
    try:
        _, client = state.client(context)
        with client.use() as session:
            rows: list[list[Any] | None] = list(params) if params else [None]
            state.begin_statement(client)
            try:
                for row in rows:
                    counted = _count(session.sql(query, row))
                    count = -1 if counted < 0 else max(count, 0) + counted
            finally:
                state.end_statement(client)
            if state.metrics is not None:
                observation.models = _model_names(session)
        status = "ok"
    finally:
        observation.done(status, max(count, 0))
    return count


# --- statements -------------------------------------------------------------------------------


def statement_query(state: ServerState, context: Any, command: Any) -> Started:
    """GetFlightInfo of CommandStatementQuery."""
    return start(state, context, command.query, None, "query")


def prepared_query(state: ServerState, context: Any, command: Any) -> Started:
    """GetFlightInfo of CommandPreparedStatementQuery, with the parameters bound last."""
    prepared = state.prepared(context, command.prepared_statement_handle)
    return start(state, context, prepared.script, prepared.params, "prepared")


def statement_schema(state: ServerState, context: Any, command: Any) -> pa.Schema:
    """GetSchema of CommandStatementQuery."""
    return _query_schema(state, context, command.query, None)


def prepared_schema(state: ServerState, context: Any, command: Any) -> pa.Schema:
    """GetSchema of CommandPreparedStatementQuery."""
    prepared = state.prepared(context, command.prepared_statement_handle)
    params = prepared.params[0] if prepared.params else None
    return _query_schema(state, context, prepared.script, params)


def _text(query: str | frontend.Script) -> str:
    return query.sql if isinstance(query, frontend.Script) else query


def _query_schema(
    state: ServerState, context: Any, query: str | frontend.Script, params: list[Any] | None
) -> pa.Schema:
    _, client = state.client(context)
    with client.use() as session:
        schema = session.result_schema(query, params)
    # Not a query: its result is only known by running it.
    return schema if schema is not None else pa.schema([])


def statement_update(
    state: ServerState, context: Any, command: Any, reader: Any, writer: Any
) -> None:
    """DoPut of CommandStatementUpdate."""
    count = update(state, context, command.query, None, "update")
    writer.write(_update_result(count))


def bind_parameters(
    state: ServerState, context: Any, command: Any, reader: Any, writer: Any
) -> None:
    """DoPut of CommandPreparedStatementQuery: the parameters of its next execution."""
    handle = command.prepared_statement_handle
    prepared = state.prepared(context, handle)
    prepared.params = _rows(reader.read_all())
    result = pb.DoPutPreparedStatementResult(prepared_statement_handle=handle)
    writer.write(pa.py_buffer(result.SerializeToString()))


def prepared_update(
    state: ServerState, context: Any, command: Any, reader: Any, writer: Any
) -> None:
    """DoPut of CommandPreparedStatementUpdate: run once per uploaded row of parameters."""
    prepared = state.prepared(context, command.prepared_statement_handle)
    params = _rows(reader.read_all())
    count = update(state, context, prepared.script, params or prepared.params, "prepared")
    writer.write(_update_result(count))


def statement_ticket(state: ServerState, context: Any, ticket: Any) -> Any:
    """DoGet of TicketStatementQuery: the result's batches as they are read."""
    result = state.take_result(context, ticket.statement_handle)
    return flight.GeneratorStream(result.stream.schema, _batches(state, context, result))


def _batches(state: ServerState, context: Any, result: Result) -> Iterator[pa.RecordBatch]:
    stream, owner = result.stream, result.owner
    lock = owner.lock if owner is not None else threading.RLock()
    status = "cancelled"
    try:
        while True:
            if state.stopping.is_set():
                raise flight.FlightUnavailableError("the server is shutting down")
            if context.is_cancelled():
                return
            with lock, flight_errors():
                batch = stream.next()
            if batch is None:
                status = "ok"
                return
            yield from slices(batch)
    except GeneratorExit:  # the client went away mid-stream
        raise
    except BaseException:
        status = "error"
        raise
    finally:
        with lock:
            stream.close()
            if owner is not None and owner.busy is stream:
                owner.busy = None
        stream.finish(status)


# --- metadata ---------------------------------------------------------------------------------


def metadata(build: Metadata) -> InfoHandler:
    """GetFlightInfo of a metadata command whose result ``build`` makes in memory."""

    def info(state: ServerState, context: Any, command: Any) -> Started:
        observation = Observation(state.metrics, context, "metadata", pb.name_of(command))
        try:
            key = state.client_key(context)
            table = build(state, context, command)
        except BaseException:
            observation.done("error", 0)
            raise
        return key, None, Stream(table.to_reader(), observation.done)

    return info


def fixed(schema: pa.Schema) -> SchemaHandler:
    """GetSchema of a command whose result always has ``schema``."""

    def schema_of(state: ServerState, context: Any, command: Any) -> pa.Schema:
        return schema

    return schema_of


def no_keys(schema: pa.Schema) -> Metadata:
    """The keys commands' result: neither engine's tables carry keys sqlml reports."""

    def empty(state: ServerState, context: Any, command: Any) -> pa.Table:
        return schema.empty_table()

    return empty


def get_sql_info(state: ServerState, context: Any, command: Any) -> pa.Table:
    """CommandGetSqlInfo's result."""
    return sql_info_table(list(command.info))


def get_table_types(state: ServerState, context: Any, command: Any) -> pa.Table:
    """CommandGetTableTypes's result."""
    return pa.table([pa.array(TABLE_TYPES, pa.utf8())], schema=TABLE_TYPES_SCHEMA)


def get_xdbc_type_info(state: ServerState, context: Any, command: Any) -> pa.Table:
    """CommandGetXdbcTypeInfo's result."""
    return xdbc_type_info(command.data_type if command.HasField("data_type") else None)


def get_catalog_metadata(state: ServerState, context: Any, command: Any) -> pa.Table:
    """CommandGetCatalogs's, CommandGetDbSchemas's and CommandGetTables's result."""
    _, client = state.client(context)
    with client.use() as session:
        return catalog_metadata(session, command)


def tables_schema(state: ServerState, context: Any, command: Any) -> pa.Schema:
    """GetSchema of CommandGetTables (with or without the tables' schemas)."""
    return TABLES_WITH_SCHEMA_SCHEMA if command.include_schema else TABLES_SCHEMA


def _unsupported(state: ServerState, context: Any, command: Any) -> pa.Table:
    raise NotImplementedError(f"{pb.name_of(command)} is not supported")


#: GetFlightInfo of a command it does not take (recorded as a failed metadata call).
UNSUPPORTED: InfoHandler = metadata(_unsupported)

#: Every Flight SQL command (and ticket) the server takes -> its handlers.
COMMANDS: dict[type[Message], Command] = {
    pb.CommandStatementQuery: Command(info=statement_query, schema=statement_schema),
    pb.CommandPreparedStatementQuery: Command(
        info=prepared_query, schema=prepared_schema, put=bind_parameters
    ),
    pb.CommandStatementUpdate: Command(put=statement_update),
    pb.CommandPreparedStatementUpdate: Command(put=prepared_update),
    pb.TicketStatementQuery: Command(get=statement_ticket),
    pb.CommandGetSqlInfo: Command(metadata(get_sql_info), fixed(SQL_INFO_SCHEMA)),
    pb.CommandGetCatalogs: Command(metadata(get_catalog_metadata), fixed(CATALOGS_SCHEMA)),
    pb.CommandGetDbSchemas: Command(metadata(get_catalog_metadata), fixed(DB_SCHEMAS_SCHEMA)),
    pb.CommandGetTables: Command(metadata(get_catalog_metadata), tables_schema),
    pb.CommandGetTableTypes: Command(metadata(get_table_types), fixed(TABLE_TYPES_SCHEMA)),
    pb.CommandGetXdbcTypeInfo: Command(metadata(get_xdbc_type_info), fixed(XDBC_TYPE_INFO_SCHEMA)),
    pb.CommandGetPrimaryKeys: Command(
        metadata(no_keys(PRIMARY_KEYS_SCHEMA)), fixed(PRIMARY_KEYS_SCHEMA)
    ),
    pb.CommandGetExportedKeys: Command(metadata(no_keys(KEYS_SCHEMA)), fixed(KEYS_SCHEMA)),
    pb.CommandGetImportedKeys: Command(metadata(no_keys(KEYS_SCHEMA)), fixed(KEYS_SCHEMA)),
    pb.CommandGetCrossReference: Command(metadata(no_keys(KEYS_SCHEMA)), fixed(KEYS_SCHEMA)),
}

_NONE = Command()


def command_of(message: Message) -> Command:
    """The handlers of ``message``'s command (none for a message the server does not take)."""
    return COMMANDS.get(type(message), _NONE)


# --- helpers ----------------------------------------------------------------------------------


def slices(batch: pa.RecordBatch, limit: int = MAX_BATCH_BYTES) -> Iterator[pa.RecordBatch]:
    """``batch`` cut into slices of at most about ``limit`` bytes (zero-copy).

    >>> batch = pa.record_batch({"s": ["x" * 100] * 1000})
    >>> [part.num_rows for part in slices(batch, limit=40_000)]
    [384, 384, 232]
    """
    size = batch.nbytes
    if size <= limit or batch.num_rows <= 1:
        yield batch
        return
    rows = max(1, batch.num_rows * limit // size)
    for start in range(0, batch.num_rows, rows):
        yield batch.slice(start, rows)


def _model_names(session: Session) -> list[str]:
    """The models the session's last statements called (predict and the like), each once,
    as the session's one parse of them found them."""
    return list(dict.fromkeys(ref.name for ref in session.called_models))


def _rows(table: pa.Table) -> list[list[Any]]:
    columns = [column.to_pylist() for column in table.columns]
    return [list(row) for row in zip(*columns, strict=True)]


def _count(table: pa.Table) -> int:
    """The row count a statement's result reports (``Count``), -1 when it reports none."""
    if table.num_columns == 1 and table.num_rows == 1 and table.column_names[0].lower() == "count":
        value = table.column(0)[0].as_py()
        return int(value) if isinstance(value, int) else -1
    return -1


def _update_result(count: int) -> pa.Buffer:
    return pa.py_buffer(pb.DoPutUpdateResult(record_count=count).SerializeToString())
