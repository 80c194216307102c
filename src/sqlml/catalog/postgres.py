"""The production catalog: PostgreSQL through psycopg 3 with a connection pool."""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from sqlml import migrations
from sqlml._redact import redact_uri, scrub
from sqlml.catalog._breaker import CircuitBreaker
from sqlml.catalog._sql import Connection, SqlCatalog
from sqlml.errors import CatalogError, CatalogUnavailable

if TYPE_CHECKING:
    from sqlml.migrations import Migration, MigrationStatus

log = logging.getLogger("sqlml")


class PostgresCatalog(SqlCatalog):
    """A catalog in a PostgreSQL database; its schema is managed by ``sqlml migrate``.

    When the server goes away, the first call that finds out fails with
    :class:`~sqlml.errors.CatalogUnavailable`, and so does every call after it at once
    (without waiting for a timeout) for ``retry_after`` seconds; then one call tries the
    server again. The pool's own warnings go to the ``sqlml`` logger, the first of an
    outage as a warning, the rest as debug messages.

    Args:
        uri: a ``postgresql://`` URI.
        migrate: apply pending migrations on open; by default a schema that is behind or
            ahead of this sqlml is an error that says to run ``sqlml migrate``.
        max_connections: the size of the connection pool.
        connect_timeout: seconds to wait for the server to accept a connection.
        pool_timeout: seconds a call waits for a free connection while all are in use.
        retry_after: seconds after a connection failure during which calls fail at once.
        check_schema: when False, open without looking at the schema version (for
            ``sqlml migrate`` itself).
    """

    PARAM = "%s"

    def __init__(
        self,
        uri: str,
        *,
        migrate: bool = False,
        max_connections: int = 8,
        connect_timeout: float = 5,
        pool_timeout: float = 10,
        retry_after: float = 2,
        check_schema: bool = True,
    ) -> None:
        self._conninfo = uri
        self.uri = redact_uri(uri)
        self._timeout = connect_timeout
        self._pool_timeout = pool_timeout
        self._max_connections = max_connections
        self._breaker = CircuitBreaker(self.uri, retry_after)
        self._probe_lock = threading.Lock()
        self._pool_warned = False
        if check_schema:
            self.check_schema(migrate=migrate)
        self._pool: ConnectionPool[psycopg.Connection[tuple[object, ...]]] = ConnectionPool(
            uri,
            min_size=1,
            max_size=max_connections,
            open=False,
            timeout=pool_timeout,
            name=f"sqlml-catalog-{next(_pool_numbers)}",
            kwargs={"connect_timeout": _libpq_timeout(connect_timeout)},
        )
        self._log_filter = _PoolLogFilter(self._pool.name, self._pool_message)
        _pool_log.addFilter(self._log_filter)
        try:
            with _calling(self._pool.name):
                self._pool.open(wait=True, timeout=max(connect_timeout, pool_timeout))
        except PoolTimeout as exc:
            self.close()
            raise CatalogUnavailable(self.uri, self._reason(exc, first_line=False)) from exc

    def _connect(self, autocommit: bool = False) -> psycopg.Connection[tuple[object, ...]]:
        try:
            return psycopg.connect(
                self._conninfo,
                autocommit=autocommit,
                connect_timeout=_libpq_timeout(self._timeout),
            )
        except psycopg.Error as exc:
            raise CatalogUnavailable(self.uri, self._reason(exc)) from exc

    def migrate(
        self,
        *,
        lock_timeout: float | None = None,
        on_wait: Callable[[], None] | None = None,
    ) -> list[Migration]:
        self.check_schema(migrate=True, apply=False)
        with self._connect(autocommit=True) as conn:
            try:
                return migrations.migrate_postgresql(
                    conn, lock_timeout=lock_timeout, on_wait=on_wait, uri=self.uri
                )
            except psycopg.Error as exc:
                raise CatalogError(
                    f"cannot migrate catalog {self.uri}: {self._reason(exc, first_line=False)}"
                ) from exc

    def migration_status(self) -> list[MigrationStatus]:
        with self._connect(autocommit=True) as conn:
            return migrations.status_postgresql(conn)

    @contextmanager
    def _transaction(self, write: bool = False) -> Iterator[Connection]:
        with _calling(self._pool.name):
            conn = self._checkout()
            try:
                with conn.transaction():
                    yield conn
            except psycopg.OperationalError as exc:
                if conn.broken:
                    self._breaker.failure(self._reason(exc))
                raise CatalogUnavailable(self.uri, self._reason(exc, first_line=False)) from exc
            except psycopg.Error as exc:
                raise CatalogError(
                    f"catalog {self.uri}: {self._reason(exc, first_line=False)}"
                ) from exc
            finally:
                self._pool.putconn(conn)

    def _checkout(self) -> psycopg.Connection[tuple[object, ...]]:
        """A working connection from the pool, or :class:`CatalogUnavailable` at once
        when the server is known to be away (see :class:`CircuitBreaker`)."""
        probing = self._breaker.before()
        try:
            if probing:
                self._probe()
                self._pool_warned = False
                self._breaker.success()
            return self._pooled()
        finally:
            if probing:
                self._breaker.release()

    def _pooled(self) -> psycopg.Connection[tuple[object, ...]]:
        # Each pass discards one connection the server closed (after a restart every idle
        # one is), so one pass more than the pool holds always ends.
        for _ in range(self._max_connections + 1):
            try:
                conn = self._pool.getconn(timeout=min(_FIRST_WAIT, self._pool_timeout))
            except PoolTimeout:
                # No connection came: the server is away, or every connection is in use.
                if self._probe_lock.acquire(blocking=False):
                    try:
                        self._probe()
                    finally:
                        self._probe_lock.release()
                try:
                    conn = self._pool.getconn()
                except PoolTimeout as exc:
                    raise CatalogUnavailable(
                        self.uri,
                        f"all {self._max_connections} connections of the pool stayed in use "
                        f"for {self._pool_timeout:g} s",
                    ) from exc
            try:
                ConnectionPool.check_connection(conn)
            except psycopg.Error:
                self._pool.putconn(conn)  # the pool replaces a broken connection
                self._probe()  # a stale connection, or is the server away?
                continue
            return conn
        raise CatalogUnavailable(self.uri, "every pooled connection was closed by the server")

    def _probe(self) -> None:
        """Connect once, outside the pool (which may be waiting out a reconnection
        delay): return if the server answers, else open the breaker and raise."""
        try:
            psycopg.connect(
                self._conninfo, autocommit=True, connect_timeout=_libpq_timeout(self._timeout)
            ).close()
        except psycopg.Error as exc:
            reason = self._reason(exc)
            self._breaker.failure(reason)
            raise CatalogUnavailable(self.uri, reason) from exc

    def _pool_message(self, record: logging.LogRecord) -> None:
        """A warning of the pool, on the ``sqlml`` logger: the first of an outage as a
        warning, the rest as debug messages."""
        first, self._pool_warned = not self._pool_warned, True
        log.log(
            logging.WARNING if first else logging.DEBUG,
            "catalog %s connection pool: %s",
            self.uri,
            scrub(record.getMessage(), self._conninfo),
        )

    def _reason(self, exc: BaseException, first_line: bool = True) -> str:
        """A driver error for a message: its first line (or all of it), without the
        password (libpq can quote a piece of the conninfo, e.g. a badly encoded one)."""
        text = _first_line(exc) if first_line else str(exc).strip()
        return scrub(text, self._conninfo)

    def close(self) -> None:
        self._pool.close()
        _pool_log.removeFilter(self._log_filter)


#: Seconds to wait for a pooled connection before asking whether the server is there.
_FIRST_WAIT = 0.5

_pool_numbers = itertools.count(1)
_pool_log = logging.getLogger("psycopg.pool")
_calls = threading.local()


@contextmanager
def _calling(pool: str) -> Iterator[None]:
    """Marks the running thread as using ``pool``, so the pool's messages logged in it
    are told apart from those of other pools."""
    outer = getattr(_calls, "pool", None)
    _calls.pool = pool
    try:
        yield
    finally:
        _calls.pool = outer


class _PoolLogFilter(logging.Filter):
    """Takes one sqlml pool's records off the ``psycopg.pool`` logger: those logged by
    the pool's own threads or by a thread while it calls the pool. Its warnings go to
    ``forward``; records of other pools pass."""

    def __init__(self, pool: str, forward: Callable[[logging.LogRecord], None]) -> None:
        super().__init__()
        self._pool = pool
        self._threads = f"{pool}-"
        self._forward = forward

    def filter(self, record: logging.LogRecord) -> bool:
        mine = (record.threadName or "").startswith(self._threads) or (
            getattr(_calls, "pool", None) == self._pool
        )
        if not mine:
            return True
        if record.levelno >= logging.WARNING:
            self._forward(record)
        return False


def _libpq_timeout(seconds: float) -> int:
    """libpq's ``connect_timeout``: whole seconds, and it treats less than 2 as 2."""
    return max(2, round(seconds))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
