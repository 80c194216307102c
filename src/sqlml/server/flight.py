"""An Arrow Flight SQL server over sqlml sessions (``sqlml serve``).

Each client gets its own :class:`~sqlml.session.Session` (its own engine connection, the
shared catalog URI), so TEMP tables and registered data persist per client. A client is
identified by its bearer token when authentication is on, else by its gRPC peer.

Authentication: a client sends ``authorization: Basic base64(user:password)`` (on the
Handshake, as ADBC and pyarrow do); the server answers with ``authorization: Bearer
<token>`` and checks the token on every later call.

Errors: sqlml's errors reach the client as one clean line (``ModelNotFound: model 'm'
does not exist; ...``); pyarrow can only send tracebackless errors through its
``FlightError`` classes, none of which is NOT_FOUND or INVALID_ARGUMENT, so they travel
as ``FlightServerError`` (gRPC UNKNOWN) named after the sqlml error. Anything unexpected
is logged here and sent as ``FlightInternalError`` without details.
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
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.flight as flight
from google.protobuf.message import Message

from sqlml import __version__
from sqlml.errors import ModelNotFound, SourceTableNotFound, SqlmlError
from sqlml.server import protocol as pb
from sqlml.server.metrics import Metrics
from sqlml.session import Session, connect
from sqlml.sql import frontend

log = logging.getLogger("sqlml.server")

#: How long a query result waits for its DoGet before it is dropped.
TICKET_TTL = 300.0
#: How long a client session may stay idle before it (and its token) is closed.
SESSION_TTL = 3600.0

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


# --- per-client state -------------------------------------------------------------------------


@dataclass
class _Prepared:
    query: str
    params: list[list[Any]] | None = None


@dataclass
class _Client:
    session: Session
    lock: threading.Lock = field(default_factory=threading.Lock)
    last_used: float = field(default_factory=time.monotonic)
    prepared: dict[bytes, _Prepared] = field(default_factory=dict)


@dataclass
class _Result:
    client: str
    table: pa.Table
    expires: float


@dataclass(frozen=True, slots=True)
class ServerOptions:
    """What each client session is opened with.

    Attributes:
        engine: the engine name; ``None`` for the settings' default.
        catalog: the catalog URI, shared by every session.
        database: the engine's database file; ``None`` for in memory.
        init_sql: SQL run in each new session.
    """

    engine: str | None = None
    catalog: str | None = None
    database: str | None = None
    init_sql: str | None = None


class SqlmlFlightServer(flight.FlightServerBase):  # type: ignore[misc]
    """The Flight SQL server: a session per client, results held until fetched.

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

    def _run(
        self, context: Any, query: str, params: list[list[Any]] | None = None, kind: str = "query"
    ) -> tuple[str, pa.Table]:
        with self._observe(context, kind, query) as done:
            key, client = self._client(context)
            with client.lock:
                if not params:
                    table = client.session.sql(query)
                else:
                    tables = [client.session.sql(query, row) for row in params]
                    table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
                models = _model_names(client.session, query) if self.metrics else []
            done(table.num_rows, models)
        return key, table

    @contextmanager
    def _observe(
        self, context: Any, kind: str, what: str
    ) -> Iterator[Callable[[int, Sequence[str]], None]]:
        """Time a call; log one line for it and record it in the metrics, ok or error."""
        started = time.perf_counter()
        outcome: dict[str, Any] = {"rows": 0, "models": ()}

        def done(rows: int, models: Sequence[str] = ()) -> None:
            outcome.update(rows=rows, models=models)

        status = "error"
        try:
            yield done
            status = "ok"
        finally:
            seconds = time.perf_counter() - started
            middleware = context.get_middleware("auth")
            user = getattr(middleware, "user", None) or "-"
            log.info(
                "query user=%s kind=%s status=%s rows=%d duration_ms=%.1f sql=%r",
                user,
                kind,
                status,
                outcome["rows"],
                seconds * 1000,
                " ".join(what.split())[:200],
            )
            if self.metrics is not None:
                self.metrics.observe(kind, status, outcome["rows"], seconds, outcome["models"])

    def sweep(self, now: float | None = None) -> None:
        """Drop results never fetched and close sessions idle for too long."""
        now = time.monotonic() if now is None else now
        with self._lock:
            for handle in [h for h, r in self._results.items() if r.expires < now]:
                del self._results[handle]
            idle = [k for k, c in self._clients.items() if now - c.last_used > SESSION_TTL]
            closing = [self._clients.pop(k) for k in idle]
        for key in idle:
            self.auth.revoke(key)
        for client in closing:
            with client.lock:
                client.session.close()
        if closing:
            self._count_sessions()

    def close_sessions(self) -> None:
        """Close every client session (after shutdown)."""
        with self._lock:
            clients = list(self._clients.values())
            self._clients.clear()
        for client in clients:
            client.session.close()
        self._count_sessions()

    # --- Flight RPCs ------------------------------------------------------------------------

    def get_flight_info(self, context: Any, descriptor: Any) -> Any:
        with _errors():
            command = _command(descriptor)
            key, table = self._execute(context, command)
            handle = secrets.token_bytes(16)
            with self._lock:
                self._results[handle] = _Result(key, table, time.monotonic() + TICKET_TTL)
            ticket = pb.pack_bytes(pb.TicketStatementQuery(statement_handle=handle))
            endpoint = flight.FlightEndpoint(ticket, [])
            return flight.FlightInfo(table.schema, descriptor, [endpoint], table.num_rows, -1)

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
                raise flight.FlightServerError("unknown or expired ticket")
            return flight.RecordBatchStream(result.table)

    def do_put(self, context: Any, descriptor: Any, reader: Any, writer: Any) -> None:
        with _errors():
            command = _command(descriptor)
            if isinstance(command, pb.CommandStatementUpdate):
                _, table = self._run(context, command.query, kind="update")
                writer.write(_update_result(table))
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
                _, table = self._run(
                    context, prepared.query, params or prepared.params, kind="prepared"
                )
                writer.write(_update_result(table))
                return
            raise NotImplementedError(f"DoPut of {pb.name_of(command)} is not supported")

    def list_actions(self, context: Any) -> list[tuple[str, str]]:
        return [
            ("CreatePreparedStatement", "prepare a query; returns its handle"),
            ("ClosePreparedStatement", "close a prepared statement"),
        ]

    def do_action(self, context: Any, action: Any) -> Iterator[Any]:
        with _errors():
            body = action.body.to_pybytes() if action.body is not None else b""
            if action.type == "CreatePreparedStatement":
                request = pb.unpack(body)
                if not isinstance(request, pb.ActionCreatePreparedStatementRequest):
                    raise pb.ProtocolError("expected ActionCreatePreparedStatementRequest")
                _, client = self._client(context)
                handle = secrets.token_bytes(16)
                with client.lock:
                    client.prepared[handle] = _Prepared(request.query)
                result = pb.ActionCreatePreparedStatementResult(prepared_statement_handle=handle)
                return iter([flight.Result(pb.pack_bytes(result))])
            if action.type == "ClosePreparedStatement":
                request = pb.unpack(body)
                if not isinstance(request, pb.ActionClosePreparedStatementRequest):
                    raise pb.ProtocolError("expected ActionClosePreparedStatementRequest")
                _, client = self._client(context)
                with client.lock:
                    client.prepared.pop(request.prepared_statement_handle, None)
                return iter([])
            raise NotImplementedError(f"action {action.type!r} is not supported")

    # --- commands ---------------------------------------------------------------------------

    def _prepared(self, context: Any, handle: bytes) -> _Prepared:
        _, client = self._client(context)
        with client.lock:
            prepared = client.prepared.get(handle)
        if prepared is None:
            raise flight.FlightServerError("unknown prepared statement handle")
        return prepared

    def _execute(self, context: Any, command: Message) -> tuple[str, pa.Table]:
        if isinstance(command, pb.CommandStatementQuery):
            return self._run(context, command.query)
        if isinstance(command, pb.CommandPreparedStatementQuery):
            prepared = self._prepared(context, command.prepared_statement_handle)
            return self._run(context, prepared.query, prepared.params, kind="prepared")
        with self._observe(context, "metadata", pb.name_of(command)) as done:
            key, table = self._metadata_command(context, command)
            done(table.num_rows, ())
        return key, table

    def _metadata_command(self, context: Any, command: Message) -> tuple[str, pa.Table]:
        if isinstance(command, pb.CommandGetSqlInfo):
            return self._client_key(context), sql_info_table(list(command.info))
        if isinstance(command, pb.CommandGetTableTypes):
            types = pa.table([pa.array(TABLE_TYPES, pa.utf8())], schema=TABLE_TYPES_SCHEMA)
            return self._client_key(context), types
        if isinstance(
            command, pb.CommandGetCatalogs | pb.CommandGetDbSchemas | pb.CommandGetTables
        ):
            key, client = self._client(context)
            with client.lock:
                return key, _metadata(client.session, command)
        raise NotImplementedError(f"{pb.name_of(command)} is not supported")


# --- helpers ----------------------------------------------------------------------------------


@contextmanager
def _errors() -> Iterator[None]:
    """Translate errors into Flight errors with one clean line, never a traceback."""
    try:
        yield
    except (flight.FlightError, NotImplementedError):
        raise
    except (ModelNotFound, SourceTableNotFound) as exc:
        raise flight.FlightServerError(f"NOT_FOUND: {type(exc).__name__}: {_line(exc)}") from None
    except (SqlmlError, pb.ProtocolError) as exc:
        raise flight.FlightServerError(
            f"INVALID_ARGUMENT: {type(exc).__name__}: {_line(exc)}"
        ) from None
    except Exception:
        log.exception("internal error")
        raise flight.FlightInternalError("internal server error; see the server log") from None


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


def _update_result(table: pa.Table) -> pa.Buffer:
    count = -1
    if table.num_columns == 1 and table.num_rows == 1 and table.column_names[0].lower() == "count":
        value = table.column(0)[0].as_py()
        count = int(value) if isinstance(value, int) else -1
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
