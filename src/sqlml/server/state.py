"""Per-client state of the Flight SQL server: sessions, prepared statements, results.

Each client gets its own :class:`~sqlml.session.Session` (its own engine connection, the
shared catalog URI), so TEMP tables and registered data persist per client. A client is
identified by its bearer token when authentication is on, else by its gRPC peer.

While a result is open the session is busy; a call that needs the session before the
result is fetched reads the rest of that result into memory first. Results never fetched,
prepared statements no longer used and idle sessions expire (:meth:`ServerState.sweep`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from sqlml.catalog import Catalog, open_catalog
from sqlml.config import load_settings
from sqlml.engines.base import HostAccess, RestrictsHostAccess
from sqlml.errors import ModelNotFound, QueryError
from sqlml.server.auth import TOKEN_TTL
from sqlml.server.errors import NotFound, flight_errors, resource_exhausted
from sqlml.server.metrics import Metrics
from sqlml.server.users import User
from sqlml.session import Session, connect
from sqlml.sql import frontend

log = logging.getLogger("sqlml.server")

#: How long a query result waits for its DoGet before it is dropped.
TICKET_TTL = 300.0
#: How long a prepared statement may stay unused before it is dropped.
PREPARED_TTL = 3600.0
#: How long a client session may stay idle before it (and its token) is closed.
SESSION_TTL = 900.0
#: How many client sessions the server keeps open at once, and for one user.
MAX_SESSIONS = 64
MAX_SESSIONS_PER_USER = 8
#: How many PostgreSQL connections the sessions' shared catalog holds at most.
CATALOG_POOL = 4
#: How long one statement may run, from its start until its last row is sent.
STATEMENT_TIMEOUT = 1800.0


class Stream:
    """A statement's result on its way to the client, read batch by batch.

    While the reader is open it holds the client's session (the engine computes batches
    as they are read); :meth:`detach` reads the rest into memory to free the session. Call
    every method with the client's lock held.
    """

    def __init__(
        self,
        reader: pa.RecordBatchReader,
        finish: Callable[[str, int], None] | None = None,
        release: Callable[[], None] | None = None,
    ) -> None:
        self.schema: pa.Schema = reader.schema
        self.rows = 0
        self._reader: pa.RecordBatchReader | None = reader
        self._rest: deque[pa.RecordBatch] = deque()
        self._error: Exception | None = None
        self._finish = finish
        self._release = release

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
            self._released()

    def close(self) -> None:
        """Drop what is left; free the session."""
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.close()
            self._released()
        self._rest.clear()

    def _released(self) -> None:
        release, self._release = self._release, None
        if release is not None:
            release()

    def finish(self, status: str) -> None:
        """Record the call (log line, metrics) once, with the rows sent."""
        finish, self._finish = self._finish, None
        if finish is not None:
            finish(status, self.rows)


@dataclass
class Prepared:
    """A prepared statement: its query (parsed once, see :class:`~sqlml.sql.frontend.Script`),
    and the parameters last bound to it."""

    script: frontend.Script
    params: list[list[Any]] | None = None
    last_used: float = field(default_factory=time.monotonic)


@dataclass
class Client:
    """A client's session, prepared statements and session options."""

    session: Session
    user: str | None = None
    lock: threading.RLock = field(default_factory=threading.RLock)
    last_used: float = field(default_factory=time.monotonic)
    prepared: dict[bytes, Prepared] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    busy: Stream | None = None
    """The result stream reading from the session now, if any."""
    deadline: float | None = None
    """When the statement running on the session is stopped (None: none runs; infinity:
    no statement timeout); read and written with the server state's lock held."""
    interrupted: bool = False
    """Whether the running statement was stopped (the session resumes when it ends)."""

    @contextmanager
    def use(self) -> Iterator[Session]:
        """The session, for this thread alone; a result still reading from it is read
        into memory first."""
        with self.lock:
            if self.busy is not None:
                self.busy.detach()
                self.busy = None
            self.last_used = time.monotonic()
            with flight_errors():
                yield self.session


@dataclass
class Result:
    """A result waiting for client ``client``'s DoGet until ``expires``."""

    client: str
    stream: Stream
    expires: float
    owner: Client | None = None
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
        token_ttl: seconds a bearer token is valid after it was issued.
        max_sessions: client sessions open at once, in all.
        max_sessions_per_user: client sessions open at once for one user (or one peer
            without authentication).
        statement_timeout: seconds a statement may run, from its start until its last
            row is sent, before it is stopped; ``None`` for no limit.
        catalog_pool: connections the sessions' one shared PostgreSQL catalog holds at
            most (a SQLite catalog is a file each session opens).
        host_access: what clients' SQL may reach of the host (by default nothing: no
            file, other database or network address), applied after ``init_sql``.
    """

    engine: str | None = None
    catalog: str | None = None
    database: str | None = None
    init_sql: str | None = None
    ticket_ttl: float = TICKET_TTL
    prepared_ttl: float = PREPARED_TTL
    session_ttl: float = SESSION_TTL
    token_ttl: float = TOKEN_TTL
    max_sessions: int = MAX_SESSIONS
    max_sessions_per_user: int = MAX_SESSIONS_PER_USER
    statement_timeout: float | None = STATEMENT_TIMEOUT
    catalog_pool: int = CATALOG_POOL
    host_access: HostAccess = field(default_factory=HostAccess)


def _rights(user: User, session: Session) -> Callable[[frontend.Statement], None]:
    """What ``user``'s session may run: its role's statements (see :mod:`.users`)."""

    def authorize(statement: frontend.Statement) -> None:
        model = None
        if isinstance(statement, frontend.CreateModelStatement) and statement.replace:
            with contextlib.suppress(ModelNotFound):
                model = session.catalog.get_model(statement.name)
        user.authorize(statement, model, session.engine.SQLGLOT_DIALECT)

    return authorize


class ServerState:
    """The server's clients and the results waiting for their DoGet.

    Args:
        options: how client sessions are opened, and how long things are kept.
        metrics: where to record Prometheus metrics; ``None`` for none.
        revoke: called with a client's key when its session is closed (its token goes).
        users: the users by name, whose roles limit what their sessions may run.
    """

    def __init__(
        self,
        options: ServerOptions,
        metrics: Metrics | None = None,
        revoke: Callable[[str], None] | None = None,
        users: Mapping[str, User] | None = None,
    ) -> None:
        self.options = options
        self.users = dict(users or {})
        self.metrics = metrics
        self.stopping = threading.Event()
        """Set when the server shuts down: every result stream ends at its next batch."""
        self._revoke = revoke
        self._clients: dict[str, Client] = {}
        self._results: dict[bytes, Result] = {}
        self._opening: dict[str, int] = {}  # user -> sessions being opened
        self._lock = threading.Lock()
        self._catalog_uri = options.catalog or load_settings({}).catalog
        self._catalog: Catalog | None = None
        self._catalog_lock = threading.Lock()

    # --- sessions ---------------------------------------------------------------------------

    def client_key(self, context: Any) -> str:
        """The key of the calling client: its token, else its gRPC peer."""
        middleware = context.get_middleware("auth")
        key = middleware.client if middleware is not None else None
        return key if key is not None else f"peer:{context.peer()}"

    def client(self, context: Any) -> tuple[str, Client]:
        """The calling client's key and state; its session is opened on its first call."""
        key = self.client_key(context)
        with self._lock:
            client = self._clients.get(key)
        if client is None:
            user = self._user(context, key)
            self._reserve(user)
            try:
                client = Client(self._open_session(self.users.get(user)), user)
            finally:
                with self._lock:
                    self._opening[user] -= 1
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

    def prepared(self, context: Any, handle: bytes) -> Prepared:
        """The calling client's prepared statement ``handle``, marked as used now."""
        _, client = self.client(context)
        with client.lock:
            prepared = client.prepared.get(handle)
        if prepared is None:
            raise NotFound("unknown or expired prepared statement; prepare it again")
        prepared.last_used = time.monotonic()
        return prepared

    @staticmethod
    def _user(context: Any, key: str) -> str:
        middleware = context.get_middleware("auth")
        user = middleware.user if middleware is not None else None
        return user if user is not None else key

    def _reserve(self, user: str) -> None:
        """Count a session about to open for ``user``, or refuse it over the limits."""
        with self._lock:
            total = len(self._clients) + sum(self._opening.values())
            mine = self._opening.get(user, 0) + sum(
                1 for c in self._clients.values() if c.user == user
            )
            if total >= self.options.max_sessions:
                raise resource_exhausted(
                    f"the server has {total} sessions open, its limit (--max-sessions "
                    f"{self.options.max_sessions}); close one (CloseSession) or try later"
                )
            if mine >= self.options.max_sessions_per_user:
                who = "user " + repr(user) if not user.startswith("peer:") else "this client"
                raise resource_exhausted(
                    f"{who} has {mine} sessions open, the limit per user "
                    f"(--max-sessions-per-user {self.options.max_sessions_per_user}); "
                    "close one (CloseSession) or wait for idle ones to expire"
                )
            self._opening[user] = self._opening.get(user, 0) + 1

    def check(self) -> None:
        """Open and close one client session: what would stop every client (an init file
        that fails, an engine that cannot be restricted as asked) stops the server now.

        Raises:
            SqlmlError: the session could not be opened.
        """
        self._open_session().close()

    def _open_session(self, user: User | None = None) -> Session:
        session = connect(self.options.engine, self._shared_catalog(), self.options.database)
        if user is not None:
            session.user = user.name
            session.authorize = _rights(user, session)
        try:
            if self.options.init_sql:
                session.sql(self.options.init_sql)
            # The server's own set-up is done: from here on the session is a client's.
            if not isinstance(session.engine, RestrictsHostAccess):
                raise QueryError(session.engine.name, "cannot be shut off from the host")
            session.engine.restrict_host_access(self.options.host_access)
        except BaseException:
            session.close()
            raise
        return session

    def _shared_catalog(self) -> Catalog | str | None:
        """The PostgreSQL catalog every session shares (one bounded pool of connections),
        opened on first use; a SQLite catalog's URI, which each session opens."""
        if not self._catalog_uri.lower().startswith(("postgresql:", "postgres:")):
            return self.options.catalog
        with self._catalog_lock:
            if self._catalog is None:
                pool = self.options.catalog_pool
                self._catalog = open_catalog(self._catalog_uri, max_connections=pool)
            return self._catalog

    def _count_sessions(self) -> None:
        if self.metrics is not None:
            with self._lock:
                count = len(self._clients)
            self.metrics.sessions.set(count)

    def close_client(self, key: str) -> bool:
        """Close a client's session, its results and its token; whether it had one."""
        with self._lock:
            client = self._clients.pop(key, None)
            handles = [h for h, r in self._results.items() if r.client == key]
            results = [self._results.pop(h) for h in handles]
        if self._revoke is not None:
            self._revoke(key)
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

    def close_sessions(self) -> None:
        """Close every client session, and the catalog they shared."""
        with self._lock:
            keys = list(self._clients)
        for key in keys:
            self.close_client(key)
        self._count_sessions()
        with self._catalog_lock:
            catalog, self._catalog = self._catalog, None
        if catalog is not None:
            catalog.close()

    # --- statements -------------------------------------------------------------------------

    def begin_statement(self, client: Client) -> None:
        """Start the clock of a statement about to run on ``client``'s session (with its
        lock held): :meth:`sweep` stops it past the statement timeout."""
        timeout = self.options.statement_timeout
        with self._lock:
            client.deadline = time.monotonic() + (math.inf if timeout is None else timeout)

    def end_statement(self, client: Client) -> None:
        """The statement running on ``client``'s session is over (its result sent, read
        into memory or dropped): its clock stops, and a stopped session runs again."""
        with self._lock:
            client.deadline = None
            if client.interrupted:
                client.interrupted = False
                client.session.resume()

    def _stop_overdue(self, now: float) -> None:
        """Interrupt the statements running past their deadline."""
        seconds = self.options.statement_timeout
        with self._lock:
            for key, client in self._clients.items():
                if client.deadline is None or client.deadline > now or client.interrupted:
                    continue
                client.interrupted = True
                log.warning("stopping the statement of %s after %g s", key[:12], seconds)
                client.session.interrupt(
                    f"it ran longer than this server's statement timeout ({seconds:g} s, "
                    "sqlml serve --statement-timeout)"
                )

    # --- results ----------------------------------------------------------------------------

    def add_result(self, key: str, stream: Stream, owner: Client | None) -> bytes:
        """Keep a result for client ``key``'s DoGet; the handle of its ticket."""
        handle = secrets.token_bytes(16)
        with self._lock:
            expires = time.monotonic() + self.options.ticket_ttl
            self._results[handle] = Result(key, stream, expires, owner)
        return handle

    def take_result(self, context: Any, handle: bytes) -> Result:
        """The calling client's result ``handle``, no longer kept."""
        key = self.client_key(context)
        with self._lock:
            result = self._results.get(handle)
            if result is not None and result.client == key:
                del self._results[handle]
            else:
                result = None
        if result is None:
            raise NotFound("unknown or expired ticket; run the statement again")
        return result

    def sweep(self, now: float | None = None) -> None:
        """Drop results never fetched and prepared statements no longer used, and close
        sessions idle for too long.

        Args:
            now: the :func:`time.monotonic` time to expire things at; ``None`` for now.
        """
        now = time.monotonic() if now is None else now
        self._stop_overdue(now)
        with self._lock:
            expired = [h for h, r in self._results.items() if r.expires < now]
            stale = [self._results.pop(h) for h in expired]
            idle = [
                k
                for k, c in self._clients.items()
                if c.deadline is None and now - c.last_used > self.options.session_ttl
            ]
            clients = list(self._clients.values())
        # A lock held means a statement runs there: leave it for a later sweep (the
        # sweep must never wait for a statement, or overdue ones would not be stopped).
        for result in stale:
            lock = result.owner.lock if result.owner is not None else threading.RLock()
            if not lock.acquire(blocking=False):
                with self._lock:
                    self._results[secrets.token_bytes(16)] = result
                continue
            try:
                result.stream.close()
                if result.owner is not None and result.owner.busy is result.stream:
                    result.owner.busy = None
            finally:
                lock.release()
            result.stream.finish("expired")
        for client in clients:
            if not client.lock.acquire(blocking=False):
                continue
            try:
                for handle, prepared in list(client.prepared.items()):
                    if now - prepared.last_used > self.options.prepared_ttl:
                        del client.prepared[handle]
            finally:
                client.lock.release()
        for key in idle:
            self.close_client(key)
