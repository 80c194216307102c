"""An Arrow Flight SQL server over sqlml sessions (``sqlml serve``).

Each client gets its own :class:`~sqlml.session.Session` (its own engine connection, the
shared catalog URI), so TEMP tables and registered data persist per client. A client is
identified by its bearer token when authentication is on, else by its gRPC peer.

Authentication: a client sends ``authorization: Basic base64(user:password)`` (on the
Handshake, as ADBC and pyarrow do); the server answers with ``authorization: Bearer
<token>`` and checks the token on every later call.

Results stream: GetFlightInfo starts the statement on the client's session and keeps its
open record batch reader under the ticket (the FlightInfo's schema is the reader's); DoGet
sends the batches as the engine computes them, so memory holds a few batches, not the
result. While a result is open the session is busy; a call that needs the session before
the result is fetched reads the rest of that result into memory first.

Errors: each reaches the client as one line naming the sqlml error, with a gRPC status
that says what kind of error it is: NOT_FOUND (unknown model, table, ticket or prepared
statement), INVALID_ARGUMENT (bad SQL, options, types), UNAUTHENTICATED, UNAVAILABLE (the
catalog is unreachable), UNIMPLEMENTED. Anything unexpected is logged here and sent as
INTERNAL without details.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.flight as flight
from google.protobuf.message import Message

from sqlml import __version__
from sqlml.errors import (
    CatalogUnavailable,
    ModelNotFound,
    QueryError,
    SourceTableNotFound,
    SourceUnavailable,
    SqlmlError,
)
from sqlml.server import protocol as pb
from sqlml.server.metrics import Metrics
from sqlml.session import Session, connect
from sqlml.sql import frontend

log = logging.getLogger("sqlml.server")

#: How long a query result waits for its DoGet before it is dropped.
TICKET_TTL = 300.0
#: How long a prepared statement may stay unused before it is dropped.
PREPARED_TTL = 3600.0
#: How long a client session may stay idle before it (and its token) is closed.
SESSION_TTL = 3600.0
#: The largest record batch sent, in bytes. gRPC clients refuse messages over 16 MiB by
#: default (ADBC's Flight SQL driver among them), so larger batches go out in slices.
MAX_BATCH_BYTES = 8 * 1024 * 1024

# --- result schemas, exactly as FlightSql.proto defines them (ADBC compares them) -----------

CATALOGS_SCHEMA = pa.schema([pa.field("catalog_name", pa.utf8(), nullable=False)])
DB_SCHEMAS_SCHEMA = pa.schema(
    [pa.field("catalog_name", pa.utf8()), pa.field("db_schema_name", pa.utf8(), nullable=False)]
)
TABLES_SCHEMA = pa.schema(
    [
        pa.field("catalog_name", pa.utf8()),
        pa.field("db_schema_name", pa.utf8()),
        pa.field("table_name", pa.utf8(), nullable=False),
        pa.field("table_type", pa.utf8(), nullable=False),
    ]
)
TABLES_WITH_SCHEMA_SCHEMA = TABLES_SCHEMA.append(
    pa.field("table_schema", pa.binary(), nullable=False)
)
TABLE_TYPES_SCHEMA = pa.schema([pa.field("table_type", pa.utf8(), nullable=False)])
SQL_INFO_VALUE_TYPE = pa.dense_union(
    [
        pa.field("string_value", pa.utf8(), nullable=False),
        pa.field("bool_value", pa.bool_(), nullable=False),
        pa.field("bigint_value", pa.int64(), nullable=False),
        pa.field("int32_bitmask", pa.int32(), nullable=False),
        pa.field("string_list", pa.list_(pa.utf8()), nullable=False),
        pa.field(
            "int32_to_int32_list_map", pa.map_(pa.int32(), pa.list_(pa.int32())), nullable=False
        ),
    ]
)
SQL_INFO_SCHEMA = pa.schema(
    [
        pa.field("info_name", pa.uint32(), nullable=False),
        pa.field("value", SQL_INFO_VALUE_TYPE, nullable=False),
    ]
)

PRIMARY_KEYS_SCHEMA = pa.schema(
    [
        pa.field("catalog_name", pa.utf8()),
        pa.field("db_schema_name", pa.utf8()),
        pa.field("table_name", pa.utf8(), nullable=False),
        pa.field("column_name", pa.utf8(), nullable=False),
        pa.field("key_name", pa.utf8()),
        pa.field("key_sequence", pa.int32(), nullable=False),
    ]
)
#: GetImportedKeys, GetExportedKeys and GetCrossReference.
KEYS_SCHEMA = pa.schema(
    [
        pa.field("pk_catalog_name", pa.utf8()),
        pa.field("pk_db_schema_name", pa.utf8()),
        pa.field("pk_table_name", pa.utf8(), nullable=False),
        pa.field("pk_column_name", pa.utf8(), nullable=False),
        pa.field("fk_catalog_name", pa.utf8()),
        pa.field("fk_db_schema_name", pa.utf8()),
        pa.field("fk_table_name", pa.utf8(), nullable=False),
        pa.field("fk_column_name", pa.utf8(), nullable=False),
        pa.field("key_sequence", pa.int32(), nullable=False),
        pa.field("fk_key_name", pa.utf8()),
        pa.field("pk_key_name", pa.utf8()),
        pa.field("update_rule", pa.uint8(), nullable=False),
        pa.field("delete_rule", pa.uint8(), nullable=False),
    ]
)
XDBC_TYPE_INFO_SCHEMA = pa.schema(
    [
        pa.field("type_name", pa.utf8(), nullable=False),
        pa.field("data_type", pa.int32(), nullable=False),
        pa.field("column_size", pa.int32()),
        pa.field("literal_prefix", pa.utf8()),
        pa.field("literal_suffix", pa.utf8()),
        pa.field("create_params", pa.list_(pa.field("item", pa.utf8(), nullable=False))),
        pa.field("nullable", pa.int32(), nullable=False),
        pa.field("case_sensitive", pa.bool_(), nullable=False),
        pa.field("searchable", pa.int32(), nullable=False),
        pa.field("unsigned_attribute", pa.bool_()),
        pa.field("fixed_prec_scale", pa.bool_(), nullable=False),
        pa.field("auto_increment", pa.bool_()),
        pa.field("local_type_name", pa.utf8()),
        pa.field("minimum_scale", pa.int32()),
        pa.field("maximum_scale", pa.int32()),
        pa.field("sql_data_type", pa.int32(), nullable=False),
        pa.field("datetime_subcode", pa.int32()),
        pa.field("num_prec_radix", pa.int32()),
        pa.field("interval_precision", pa.int32()),
    ]
)

#: SqlInfo codes (FlightSql.proto) -> values this server reports.
SQL_INFO: dict[int, str | bool | int] = {
    0: "sqlml",  # FLIGHT_SQL_SERVER_NAME
    1: __version__,  # FLIGHT_SQL_SERVER_VERSION
    2: pa.__version__,  # FLIGHT_SQL_SERVER_ARROW_VERSION
    3: False,  # FLIGHT_SQL_SERVER_READ_ONLY
    4: True,  # FLIGHT_SQL_SERVER_SQL
    5: False,  # FLIGHT_SQL_SERVER_SUBSTRAIT
    8: 0,  # FLIGHT_SQL_SERVER_TRANSACTION: SQL_SUPPORTED_TRANSACTION_NONE (int32)
    9: False,  # FLIGHT_SQL_SERVER_CANCEL
    504: '"',  # SQL_IDENTIFIER_QUOTE_CHAR
}

TABLE_TYPES = ("TABLE", "VIEW", "LOCAL TEMPORARY")

#: The types both engines have, as GetXdbcTypeInfo reports them: (name, XdbcDataType,
#: column size, literal prefix, case sensitive, Searchable, unsigned, fixed precision and
#: scale, SQL data type, datetime subcode, radix); codes as in FlightSql.proto.
XDBC_TYPES: tuple[
    tuple[
        str, int, int | None, str | None, bool, int, bool | None, bool, int, int | None, int | None
    ],
    ...,
] = (
    ("BOOLEAN", -7, 1, None, False, 2, None, False, -7, None, None),
    ("TINYINT", -6, 3, None, False, 2, False, True, -6, None, 10),
    ("SMALLINT", 5, 5, None, False, 2, False, True, 5, None, 10),
    ("INTEGER", 4, 10, None, False, 2, False, True, 4, None, 10),
    ("BIGINT", -5, 19, None, False, 2, False, True, -5, None, 10),
    ("REAL", 7, 7, None, False, 2, False, False, 7, None, 2),
    ("DOUBLE", 8, 15, None, False, 2, False, False, 8, None, 2),
    ("DECIMAL", 3, 38, None, False, 2, False, True, 3, None, 10),
    ("VARCHAR", 12, None, "'", True, 3, None, False, 12, None, None),
    ("BLOB", -3, None, None, False, 0, None, False, -3, None, None),
    ("DATE", 91, 10, "DATE '", False, 2, None, False, 9, 1, None),
    ("TIME", 92, 8, "TIME '", False, 2, None, False, 9, 2, None),
    ("TIMESTAMP", 93, 26, "TIMESTAMP '", False, 2, None, False, 9, 3, None),
)


# --- authentication ---------------------------------------------------------------------------


class _Handshake(flight.ServerAuthHandler):  # type: ignore[misc]
    """Accepts the Handshake RPC (pyarrow answers it UNIMPLEMENTED without an auth handler);
    the credentials are checked by :class:`AuthMiddlewareFactory` on the call's headers."""

    def authenticate(self, outgoing: Any, incoming: Any) -> None:
        pass

    def is_valid(self, token: bytes) -> str:
        return ""


class _CallMiddleware(flight.ServerMiddleware):  # type: ignore[misc]
    def __init__(
        self, client: str | None, issued: str | None = None, user: str | None = None
    ) -> None:
        self.client = client
        self.issued = issued
        self.user = user

    def sending_headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.issued}"} if self.issued else {}


class AuthMiddlewareFactory(flight.ServerMiddlewareFactory):  # type: ignore[misc]
    """Turns ``Basic`` credentials into a bearer token and checks bearer tokens.

    Without users every call is let through, and the client is its gRPC peer.
    """

    def __init__(self, users: Mapping[str, str]) -> None:
        super().__init__()
        self.users = dict(users)
        self.tokens: dict[str, str] = {}  # token -> user
        self._lock = threading.Lock()

    def start_call(self, info: Any, headers: Mapping[str, list[str]]) -> _CallMiddleware:
        if not self.users:
            return _CallMiddleware(None)
        values = headers.get("authorization") or []
        value = values[0] if values else ""
        scheme, _, credentials = value.partition(" ")
        if scheme.lower() == "basic":
            user = self._check_basic(credentials.strip())
            token = secrets.token_urlsafe(32)
            with self._lock:
                self.tokens[token] = user
            log.info("authenticated user %s", user)
            return _CallMiddleware(token, issued=token, user=user)
        if scheme.lower() == "bearer":
            token = credentials.strip()
            with self._lock:
                known = self.tokens.get(token)
            if known is None:
                raise flight.FlightUnauthenticatedError("invalid or expired token")
            return _CallMiddleware(token, user=known)
        raise flight.FlightUnauthenticatedError("authentication required (user and password)")

    def _check_basic(self, credentials: str) -> str:
        padded = credentials + "=" * (-len(credentials) % 4)  # ADBC sends no padding
        try:
            user, sep, password = base64.b64decode(padded).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            sep, user, password = "", "", ""
        expected = self.users.get(user)
        if (
            not sep
            or expected is None
            or not hmac.compare_digest(expected.encode(), password.encode())
        ):
            raise flight.FlightUnauthenticatedError("invalid user or password")
        return user

    def revoke(self, token: str) -> None:
        with self._lock:
            self.tokens.pop(token, None)


# --- errors -----------------------------------------------------------------------------------


class _NoTraceback(Exception):
    pass


class _StatusError(Exception):
    """An error sent with the gRPC status pyarrow gives its base class, without a traceback.

    pyarrow turns a Python exception raised by a Flight method into a status from its
    class (KeyError -> NOT_FOUND, ValueError -> INVALID_ARGUMENT, NotImplementedError ->
    UNIMPLEMENTED) and appends ``Detail: Python exception: <traceback.format_exception(...)>``
    to the message; when that formatting fails it appends only the class name. Reading
    ``__notes__`` (which ``format_exception`` does) fails here, so the client gets the
    message and ``Detail: Python exception: NotFound``, not the server's stack.
    """

    @property
    def __notes__(self) -> list[str]:  # type: ignore[override]
        raise _NoTraceback

    def __str__(self) -> str:  # KeyError's would quote the message
        return str(self.args[0]) if self.args else ""


class NotFound(_StatusError, KeyError):
    """Sent as NOT_FOUND."""


class InvalidArgument(_StatusError, ValueError):
    """Sent as INVALID_ARGUMENT."""


class Unimplemented(_StatusError, NotImplementedError):
    """Sent as UNIMPLEMENTED."""


def flight_error(exc: BaseException, session: Session | None = None) -> Exception:
    """The error to raise to the client for ``exc``.

    Args:
        exc: what a call raised.
        session: the client's session, to tell a missing table from other query errors.
    """
    error: Exception
    if isinstance(exc, flight.FlightError | _StatusError):
        error = exc
    elif isinstance(exc, NotImplementedError):
        error = Unimplemented(_line(exc))
    elif isinstance(exc, CatalogUnavailable | SourceUnavailable):
        error = flight.FlightUnavailableError(f"{type(exc).__name__}: {_line(exc)}")
    else:
        error = _classify(exc, session)
    return error


def _classify(exc: BaseException, session: Session | None) -> Exception:
    if isinstance(exc, ModelNotFound | SourceTableNotFound) or (
        isinstance(exc, QueryError)
        and session is not None
        and session.engine.missing_table(exc) is not None
    ):
        return NotFound(f"{type(exc).__name__}: {_line(exc)}")
    if isinstance(exc, SqlmlError | pb.ProtocolError):
        return InvalidArgument(f"{type(exc).__name__}: {_line(exc)}")
    log.error("internal error", exc_info=exc)
    error: Exception = flight.FlightInternalError("internal server error; see the server log")
    return error


@contextmanager
def _errors(session: Session | None = None) -> Iterator[None]:
    """Translate errors into Flight errors with one clean line, never a traceback."""
    try:
        yield
    except Exception as exc:
        raise flight_error(exc, session) from None


# --- per-client state -------------------------------------------------------------------------


class _Stream:
    """A statement's result on its way to the client, read batch by batch.

    While the reader is open it holds the client's session (the engine computes batches
    as they are read); :meth:`detach` reads the rest into memory to free the session. Call
    every method with the client's lock held.
    """

    def __init__(
        self, reader: pa.RecordBatchReader, finish: Callable[[str, int], None] | None = None
    ) -> None:
        self.schema: pa.Schema = reader.schema
        self.rows = 0
        self._reader: pa.RecordBatchReader | None = reader
        self._rest: deque[pa.RecordBatch] = deque()
        self._error: Exception | None = None
        self._finish = finish

    @property
    def open(self) -> bool:
        """Whether the stream still holds its session."""
        return self._reader is not None

    def next(self) -> pa.RecordBatch | None:
        """The next batch; None at the end."""
        if self._rest:
            batch = self._rest.popleft()
        elif self._error is not None:
            error, self._error = self._error, None
            raise error
        elif self._reader is None:
            return None
        else:
            try:
                batch = self._reader.read_next_batch()
            except StopIteration:
                self.close()
                return None
        self.rows += batch.num_rows
        return batch

    def detach(self) -> None:
        """Read the rest into memory (an error is kept for :meth:`next`); free the session."""
        reader, self._reader = self._reader, None
        if reader is None:
            return
        try:
            self._rest.extend(reader)
        except Exception as exc:
            self._error = exc
        finally:
            reader.close()

    def close(self) -> None:
        """Drop what is left; free the session."""
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.close()
        self._rest.clear()

    def finish(self, status: str) -> None:
        """Record the call (log line, metrics) once, with the rows sent."""
        finish, self._finish = self._finish, None
        if finish is not None:
            finish(status, self.rows)


@dataclass
class _Prepared:
    query: str
    params: list[list[Any]] | None = None
    last_used: float = field(default_factory=time.monotonic)


@dataclass
class _Client:
    session: Session
    lock: threading.RLock = field(default_factory=threading.RLock)
    last_used: float = field(default_factory=time.monotonic)
    prepared: dict[bytes, _Prepared] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    busy: _Stream | None = None
    """The result stream reading from the session now, if any."""

    @contextmanager
    def use(self) -> Iterator[Session]:
        """The session, for this thread alone; a result still reading from it is read
        into memory first."""
        with self.lock:
            if self.busy is not None:
                self.busy.detach()
                self.busy = None
            self.last_used = time.monotonic()
            with _errors(self.session):
                yield self.session


@dataclass
class _Result:
    client: str
    stream: _Stream
    expires: float
    owner: _Client | None = None
    """The client whose session the stream reads from (None for results in memory)."""


@dataclass(frozen=True, slots=True)
class ServerOptions:
    """What each client session is opened with, and how long things are kept.

    Attributes:
        engine: the engine name; ``None`` for the settings' default.
        catalog: the catalog URI, shared by every session.
        database: the engine's database file; ``None`` for in memory.
        init_sql: SQL run in each new session.
        ticket_ttl: seconds a result waits for its DoGet.
        prepared_ttl: seconds an unused prepared statement is kept.
        session_ttl: seconds an idle client session (and its token) is kept.
    """

    engine: str | None = None
    catalog: str | None = None
    database: str | None = None
    init_sql: str | None = None
    ticket_ttl: float = TICKET_TTL
    prepared_ttl: float = PREPARED_TTL
    session_ttl: float = SESSION_TTL


class _Observation:
    """One call's log line and metrics, recorded once when it ends."""

    def __init__(self, server: SqlmlFlightServer, context: Any, kind: str, what: str) -> None:
        self.metrics = server.metrics
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


class SqlmlFlightServer(flight.FlightServerBase):  # type: ignore[misc]
    """The Flight SQL server: a session per client, results streamed from it.

    Args:
        location: ``grpc://host:port`` (``grpc+tls://`` with ``tls_certificates``).
        options: how client sessions are opened.
        users: user -> password; empty for no authentication.
        tls_certificates: ``[(cert_pem, key_pem)]`` to serve TLS.
        metrics: where to record Prometheus metrics; ``None`` for none.
    """

    def __init__(
        self,
        location: str,
        options: ServerOptions,
        users: Mapping[str, str] | None = None,
        tls_certificates: Sequence[tuple[bytes, bytes]] | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.options = options
        self.metrics = metrics
        self.auth = AuthMiddlewareFactory(users or {})
        self._clients: dict[str, _Client] = {}
        self._results: dict[bytes, _Result] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        super().__init__(
            location,
            auth_handler=_Handshake(),
            middleware={"auth": self.auth},
            tls_certificates=list(tls_certificates or []),
        )

    # --- sessions ---------------------------------------------------------------------------

    def _client_key(self, context: Any) -> str:
        middleware = context.get_middleware("auth")
        key = middleware.client if middleware is not None else None
        return key if key is not None else f"peer:{context.peer()}"

    def _client(self, context: Any) -> tuple[str, _Client]:
        key = self._client_key(context)
        with self._lock:
            client = self._clients.get(key)
        if client is None:
            client = _Client(self._open_session())
            with self._lock:
                existing = self._clients.setdefault(key, client)
            if existing is not client:
                client.session.close()
                client = existing
            else:
                log.info("opened session for %s", key[:12])
                self._count_sessions()
        client.last_used = time.monotonic()
        return key, client

    def _open_session(self) -> Session:
        session = connect(self.options.engine, self.options.catalog, self.options.database)
        if self.options.init_sql:
            try:
                session.sql(self.options.init_sql)
            except BaseException:
                session.close()
                raise
        return session

    def _count_sessions(self) -> None:
        if self.metrics is not None:
            with self._lock:
                count = len(self._clients)
            self.metrics.sessions.set(count)

    def _close_client(self, key: str) -> bool:
        """Close a client's session, its results and its token; whether it had one."""
        with self._lock:
            client = self._clients.pop(key, None)
            handles = [h for h, r in self._results.items() if r.client == key]
            results = [self._results.pop(h) for h in handles]
        self.auth.revoke(key)
        if client is None:
            return False
        with client.lock:
            for result in results:
                result.stream.close()
                result.stream.finish("cancelled")
            client.session.close()
        self._count_sessions()
        log.info("closed session for %s", key[:12])
        return True

    def _start(
        self, context: Any, query: str, params: list[list[Any]] | None, kind: str
    ) -> tuple[str, _Client, _Stream]:
        """Start a statement on the client's session; its result streams from there."""
        observation = _Observation(self, context, kind, query)
        try:
            key, client = self._client(context)
            with client.use() as session:
                if params and len(params) > 1:
                    tables = [session.sql(query, row) for row in params]
                    reader = pa.concat_tables(tables).to_reader()
                else:
                    reader = session.sql_reader(query, params[0] if params else None)
                if self.metrics is not None:
                    observation.models = _model_names(session, query)
                stream = _Stream(reader, observation.done)
                client.busy = stream
        except BaseException:
            observation.done("error", 0)
            raise
        return key, client, stream

    def _update(self, context: Any, query: str, params: list[list[Any]] | None, kind: str) -> int:
        """Run a statement to its end; the rows it changed (-1 when unknown)."""
        observation = _Observation(self, context, kind, query)
        status, count = "error", -1
        try:
            _, client = self._client(context)
            with client.use() as session:
                rows: list[list[Any] | None] = list(params) if params else [None]
                for row in rows:
                    counted = _count(session.sql(query, row))
                    count = -1 if counted < 0 else max(count, 0) + counted
                if self.metrics is not None:
                    observation.models = _model_names(session, query)
            status = "ok"
        finally:
            observation.done(status, max(count, 0))
        return count

    def sweep(self, now: float | None = None) -> None:
        """Drop results never fetched and prepared statements no longer used, and close
        sessions idle for too long."""
        now = time.monotonic() if now is None else now
        with self._lock:
            expired = [h for h, r in self._results.items() if r.expires < now]
            stale = [self._results.pop(h) for h in expired]
            idle = [
                k for k, c in self._clients.items() if now - c.last_used > self.options.session_ttl
            ]
            clients = list(self._clients.values())
        for result in stale:
            lock = result.owner.lock if result.owner is not None else threading.RLock()
            with lock:
                result.stream.close()
                if result.owner is not None and result.owner.busy is result.stream:
                    result.owner.busy = None
            result.stream.finish("expired")
        for client in clients:
            with client.lock:
                for handle, prepared in list(client.prepared.items()):
                    if now - prepared.last_used > self.options.prepared_ttl:
                        del client.prepared[handle]
        for key in idle:
            self._close_client(key)

    def stop_streams(self) -> None:
        """Make every result stream end at its next batch (before shutting down)."""
        self._stopping.set()

    def close_sessions(self) -> None:
        """Close every client session (after shutdown)."""
        with self._lock:
            keys = list(self._clients)
        for key in keys:
            self._close_client(key)
        self._count_sessions()

    # --- Flight RPCs ------------------------------------------------------------------------

    def get_flight_info(self, context: Any, descriptor: Any) -> Any:
        with _errors():
            command = _command(descriptor)
            key, owner, stream = self._execute(context, command)
            handle = secrets.token_bytes(16)
            with self._lock:
                expires = time.monotonic() + self.options.ticket_ttl
                self._results[handle] = _Result(key, stream, expires, owner)
            ticket = pb.pack_bytes(pb.TicketStatementQuery(statement_handle=handle))
            endpoint = flight.FlightEndpoint(ticket, [])
            return flight.FlightInfo(stream.schema, descriptor, [endpoint], -1, -1)

    def get_schema(self, context: Any, descriptor: Any) -> Any:
        with _errors():
            command = _command(descriptor)
            return flight.SchemaResult(self._schema(context, command))

    def do_get(self, context: Any, ticket: Any) -> Any:
        with _errors():
            message = pb.unpack(ticket.ticket)
            if not isinstance(message, pb.TicketStatementQuery):
                raise pb.ProtocolError(f"unsupported ticket {pb.name_of(message)}")
            key = self._client_key(context)
            with self._lock:
                result = self._results.get(message.statement_handle)
                if result is not None and result.client == key:
                    del self._results[message.statement_handle]
                else:
                    result = None
            if result is None:
                raise NotFound("unknown or expired ticket; run the statement again")
            return flight.GeneratorStream(result.stream.schema, self._batches(context, result))

    def _batches(self, context: Any, result: _Result) -> Iterator[pa.RecordBatch]:
        stream, owner = result.stream, result.owner
        lock = owner.lock if owner is not None else threading.RLock()
        session = owner.session if owner is not None else None
        status = "cancelled"
        try:
            while True:
                if self._stopping.is_set():
                    raise flight.FlightUnavailableError("the server is shutting down")
                if context.is_cancelled():
                    return
                with lock, _errors(session):
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

    def do_put(self, context: Any, descriptor: Any, reader: Any, writer: Any) -> None:
        with _errors():
            command = _command(descriptor)
            if isinstance(command, pb.CommandStatementUpdate):
                count = self._update(context, command.query, None, "update")
                writer.write(_update_result(count))
                return
            if isinstance(
                command, pb.CommandPreparedStatementQuery | pb.CommandPreparedStatementUpdate
            ):
                handle = command.prepared_statement_handle
                prepared = self._prepared(context, handle)
                params = _rows(reader.read_all())
                if isinstance(command, pb.CommandPreparedStatementQuery):
                    prepared.params = params
                    result = pb.DoPutPreparedStatementResult(prepared_statement_handle=handle)
                    writer.write(pa.py_buffer(result.SerializeToString()))
                    return
                count = self._update(context, prepared.query, params or prepared.params, "prepared")
                writer.write(_update_result(count))
                return
            raise NotImplementedError(f"DoPut of {pb.name_of(command)} is not supported")

    def list_actions(self, context: Any) -> list[tuple[str, str]]:
        return [
            ("CreatePreparedStatement", "prepare a query; returns its handle and schema"),
            ("ClosePreparedStatement", "close a prepared statement"),
            ("SetSessionOptions", "set options of the client's session"),
            ("GetSessionOptions", "the options of the client's session"),
            ("CloseSession", "close the client's session (TEMP tables go with it)"),
        ]

    def do_action(self, context: Any, action: Any) -> Iterator[Any]:
        with _errors():
            body = action.body.to_pybytes() if action.body is not None else b""
            handler = self._actions.get(action.type)
            if handler is None:
                raise NotImplementedError(f"action {action.type!r} is not supported")
            return iter([flight.Result(data) for data in handler(self, context, body)])

    # --- actions ----------------------------------------------------------------------------

    def _create_prepared(self, context: Any, body: bytes) -> list[bytes]:
        request = pb.unpack(body)
        if not isinstance(request, pb.ActionCreatePreparedStatementRequest):
            raise pb.ProtocolError("expected ActionCreatePreparedStatementRequest")
        _, client = self._client(context)
        handle = secrets.token_bytes(16)
        with client.use() as session:
            # Known without running it for a query (statements are never run here); a
            # query that fails reports why when it is executed.
            schema = session.result_schema(request.query)
            client.prepared[handle] = _Prepared(request.query)
        result = pb.ActionCreatePreparedStatementResult(prepared_statement_handle=handle)
        if schema is not None:
            result.dataset_schema = schema.serialize().to_pybytes()
        # parameter_schema stays empty: neither engine's Python API reports the types of
        # a statement's parameters, so the client's types are taken as they come.
        return [pb.pack_bytes(result)]

    def _close_prepared(self, context: Any, body: bytes) -> list[bytes]:
        request = pb.unpack(body)
        if not isinstance(request, pb.ActionClosePreparedStatementRequest):
            raise pb.ProtocolError("expected ActionClosePreparedStatementRequest")
        _, client = self._client(context)
        with client.lock:
            client.prepared.pop(request.prepared_statement_handle, None)
        return []

    def _set_session_options(self, context: Any, body: bytes) -> list[bytes]:
        request = pb.ActionSetSessionOptionsRequest.FromString(body)
        _, client = self._client(context)
        result = pb.SetSessionOptionsResult()
        with client.lock:
            for name, value in request.session_options.items():
                kind = value.WhichOneof("option_value")
                if kind is None:  # an empty value erases the option
                    client.options.pop(name, None)
                elif kind == "string_list_value":
                    client.options[name] = list(value.string_list_value.values)
                else:
                    client.options[name] = getattr(value, kind)
        return [result.SerializeToString()]

    def _get_session_options(self, context: Any, body: bytes) -> list[bytes]:
        _, client = self._client(context)
        result = pb.ActionGetSessionOptionsResult()
        with client.lock:
            options = dict(client.options)
        for name, value in options.items():
            slot = result.session_options[name]
            if isinstance(value, list):
                slot.string_list_value.values.extend(value)
            elif isinstance(value, bool):
                slot.bool_value = value
            elif isinstance(value, int):
                slot.int64_value = value
            elif isinstance(value, float):
                slot.double_value = value
            else:
                slot.string_value = str(value)
        return [result.SerializeToString()]

    def _close_session(self, context: Any, body: bytes) -> list[bytes]:
        self._close_client(self._client_key(context))
        return [pb.ActionCloseSessionResult(status=pb.SESSION_CLOSED).SerializeToString()]

    _actions: ClassVar[dict[str, Callable[[SqlmlFlightServer, Any, bytes], list[bytes]]]] = {
        "CreatePreparedStatement": _create_prepared,
        "ClosePreparedStatement": _close_prepared,
        "SetSessionOptions": _set_session_options,
        "GetSessionOptions": _get_session_options,
        "CloseSession": _close_session,
    }

    # --- commands ---------------------------------------------------------------------------

    def _prepared(self, context: Any, handle: bytes) -> _Prepared:
        _, client = self._client(context)
        with client.lock:
            prepared = client.prepared.get(handle)
        if prepared is None:
            raise NotFound("unknown or expired prepared statement; prepare it again")
        prepared.last_used = time.monotonic()
        return prepared

    def _execute(self, context: Any, command: Message) -> tuple[str, _Client | None, _Stream]:
        if isinstance(command, pb.CommandStatementQuery):
            return self._start(context, command.query, None, "query")
        if isinstance(command, pb.CommandPreparedStatementQuery):
            prepared = self._prepared(context, command.prepared_statement_handle)
            return self._start(context, prepared.query, prepared.params, "prepared")
        observation = _Observation(self, context, "metadata", pb.name_of(command))
        try:
            key, table = self._metadata_command(context, command)
        except BaseException:
            observation.done("error", 0)
            raise
        return key, None, _Stream(table.to_reader(), observation.done)

    def _schema(self, context: Any, command: Message) -> pa.Schema:
        """The schema a command's result has, without running a statement."""
        query: str | None = None
        params: list[Any] | None = None
        if isinstance(command, pb.CommandStatementQuery):
            query = command.query
        elif isinstance(command, pb.CommandPreparedStatementQuery):
            prepared = self._prepared(context, command.prepared_statement_handle)
            query = prepared.query
            params = prepared.params[0] if prepared.params else None
        if query is not None:
            _, client = self._client(context)
            with client.use() as session:
                schema = session.result_schema(query, params)
            # Not a query: its result is only known by running it.
            return schema if schema is not None else pa.schema([])
        if isinstance(command, pb.CommandGetTables):
            return TABLES_WITH_SCHEMA_SCHEMA if command.include_schema else TABLES_SCHEMA
        for kind, schema in METADATA_SCHEMAS.items():
            if isinstance(command, kind):
                return schema
        raise NotImplementedError(f"{pb.name_of(command)} is not supported")

    def _metadata_command(self, context: Any, command: Message) -> tuple[str, pa.Table]:
        key = self._client_key(context)
        if isinstance(command, pb.CommandGetSqlInfo):
            return key, sql_info_table(list(command.info))
        if isinstance(command, pb.CommandGetTableTypes):
            return key, pa.table([pa.array(TABLE_TYPES, pa.utf8())], schema=TABLE_TYPES_SCHEMA)
        if isinstance(command, pb.CommandGetXdbcTypeInfo):
            data_type = command.data_type if command.HasField("data_type") else None
            return key, xdbc_type_info(data_type)
        if isinstance(
            command,
            pb.CommandGetPrimaryKeys
            | pb.CommandGetExportedKeys
            | pb.CommandGetImportedKeys
            | pb.CommandGetCrossReference,
        ):
            # Neither engine's tables carry keys sqlml reports: an empty result.
            schema = (
                PRIMARY_KEYS_SCHEMA
                if isinstance(command, pb.CommandGetPrimaryKeys)
                else KEYS_SCHEMA
            )
            return key, schema.empty_table()
        if isinstance(
            command, pb.CommandGetCatalogs | pb.CommandGetDbSchemas | pb.CommandGetTables
        ):
            key, client = self._client(context)
            with client.use() as session:
                return key, _metadata(session, command)
        raise NotImplementedError(f"{pb.name_of(command)} is not supported")


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


def _model_names(session: Session, query: str) -> list[str]:
    """The models ``query``'s statements call (predict and the like), each once."""
    names: list[str] = []
    try:
        for text in frontend.split_statements(query):
            statement = frontend.parse_statement(text, session.engine.SQLGLOT_DIALECT)
            if isinstance(statement, frontend.QueryStatement):
                names.extend(ref.name for ref in statement.model_refs)
    except Exception:  # metrics must never fail a query that ran
        return []
    return list(dict.fromkeys(names))


def _line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _command(descriptor: Any) -> Message:
    if descriptor.descriptor_type != flight.DescriptorType.CMD:
        raise pb.ProtocolError("only command descriptors are supported")
    return pb.unpack(descriptor.command)


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


def sql_info_table(codes: Sequence[int]) -> pa.Table:
    """The GetSqlInfo result for ``codes`` (every known code when empty)."""
    wanted = [c for c in codes if c in SQL_INFO] if codes else list(SQL_INFO)
    children: list[list[Any]] = [[], [], [], [], [], []]
    type_ids: list[int] = []
    offsets: list[int] = []
    for code in wanted:
        value = SQL_INFO[code]
        if isinstance(value, bool):
            slot = 1
        elif isinstance(value, int):
            slot = 3
        else:
            slot = 0
        type_ids.append(slot)
        offsets.append(len(children[slot]))
        children[slot].append(value)
    child_arrays = [
        pa.array(values, type=SQL_INFO_VALUE_TYPE.field(i).type)
        for i, values in enumerate(children)
    ]
    value = pa.Array.from_buffers(
        SQL_INFO_VALUE_TYPE,
        len(wanted),
        [
            None,
            pa.array(type_ids, pa.int8()).buffers()[1],
            pa.array(offsets, pa.int32()).buffers()[1],
        ],
        children=child_arrays,
    )
    return pa.Table.from_arrays([pa.array(wanted, pa.uint32()), value], schema=SQL_INFO_SCHEMA)


def xdbc_type_info(data_type: int | None = None) -> pa.Table:
    """The GetXdbcTypeInfo result: every type of :data:`XDBC_TYPES`, or those of one
    XdbcDataType code.

    >>> xdbc_type_info(4).column("type_name").to_pylist()
    ['INTEGER']
    """
    rows = []
    for name, code, size, prefix, case, search, unsigned, fixed, sql_type, sub, radix in XDBC_TYPES:
        if data_type is not None and code != data_type:
            continue
        decimal = name == "DECIMAL"
        rows.append(
            {
                "type_name": name,
                "data_type": code,
                "column_size": size,
                "literal_prefix": prefix,
                "literal_suffix": "'" if prefix else None,
                "create_params": ["precision", "scale"] if decimal else None,
                "nullable": 1,  # NULLABILITY_NULLABLE
                "case_sensitive": case,
                "searchable": search,
                "unsigned_attribute": unsigned,
                "fixed_prec_scale": fixed,
                "auto_increment": None,
                "local_type_name": name,
                "minimum_scale": 0 if decimal else None,
                "maximum_scale": 38 if decimal else None,
                "sql_data_type": sql_type,
                "datetime_subcode": sub,
                "num_prec_radix": radix,
                "interval_precision": None,
            }
        )
    return pa.Table.from_pylist(rows, schema=XDBC_TYPE_INFO_SCHEMA)


def _like(pattern: str | None) -> re.Pattern[str] | None:
    """A SQL LIKE pattern (``%``, ``_``) as a regular expression; None matches anything."""
    if pattern is None:
        return None
    parts = [".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern]
    return re.compile("".join(parts), re.DOTALL)


def _matches(regex: re.Pattern[str] | None, value: str) -> bool:
    return regex is None or regex.fullmatch(value) is not None


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _metadata(session: Session, command: Message) -> pa.Table:
    """GetCatalogs, GetDbSchemas and GetTables from the engine's information_schema."""
    schemata = session.engine.execute(
        "SELECT catalog_name, schema_name FROM information_schema.schemata"
    ).to_pylist()
    if isinstance(command, pb.CommandGetCatalogs):
        names = sorted({row["catalog_name"] for row in schemata})
        return pa.table([pa.array(names, pa.utf8())], schema=CATALOGS_SCHEMA)
    catalog = command.catalog if command.HasField("catalog") else None
    schema_re = _like(
        command.db_schema_filter_pattern if command.HasField("db_schema_filter_pattern") else None
    )
    if isinstance(command, pb.CommandGetDbSchemas):
        pairs = sorted(
            {
                (row["catalog_name"], row["schema_name"])
                for row in schemata
                if (catalog is None or row["catalog_name"] == catalog)
                and _matches(schema_re, row["schema_name"])
            }
        )
        return pa.Table.from_pylist(
            [{"catalog_name": c, "db_schema_name": s} for c, s in pairs], schema=DB_SCHEMAS_SCHEMA
        )
    table_re = _like(
        command.table_name_filter_pattern if command.HasField("table_name_filter_pattern") else None
    )
    types = set(command.table_types)
    rows = []
    listed = session.engine.execute(
        "SELECT table_catalog, table_schema, table_name, table_type FROM information_schema.tables"
    ).to_pylist()
    for row in listed:
        table_type = "TABLE" if row["table_type"] == "BASE TABLE" else row["table_type"]
        if (
            (catalog is None or row["table_catalog"] == catalog)
            and _matches(schema_re, row["table_schema"])
            and _matches(table_re, row["table_name"])
            and (not types or table_type in types)
        ):
            rows.append(
                {
                    "catalog_name": row["table_catalog"],
                    "db_schema_name": row["table_schema"],
                    "table_name": row["table_name"],
                    "table_type": table_type,
                }
            )
    rows.sort(key=lambda r: (r["catalog_name"], r["db_schema_name"], r["table_name"]))
    if not command.include_schema:
        return pa.Table.from_pylist(rows, schema=TABLES_SCHEMA)
    for row in rows:
        name = ".".join(_quote(row[k]) for k in ("catalog_name", "db_schema_name", "table_name"))
        schema = session.engine.execute(f"SELECT * FROM {name} LIMIT 0").schema
        row["table_schema"] = schema.serialize().to_pybytes()
    return pa.Table.from_pylist(rows, schema=TABLES_WITH_SCHEMA_SCHEMA)


#: The fixed result schemas of the metadata commands (GetTables's depends on the command).
METADATA_SCHEMAS: dict[type[Message], pa.Schema] = {
    pb.CommandGetSqlInfo: SQL_INFO_SCHEMA,
    pb.CommandGetCatalogs: CATALOGS_SCHEMA,
    pb.CommandGetDbSchemas: DB_SCHEMAS_SCHEMA,
    pb.CommandGetTableTypes: TABLE_TYPES_SCHEMA,
    pb.CommandGetXdbcTypeInfo: XDBC_TYPE_INFO_SCHEMA,
    pb.CommandGetPrimaryKeys: PRIMARY_KEYS_SCHEMA,
    pb.CommandGetExportedKeys: KEYS_SCHEMA,
    pb.CommandGetImportedKeys: KEYS_SCHEMA,
    pb.CommandGetCrossReference: KEYS_SCHEMA,
}
