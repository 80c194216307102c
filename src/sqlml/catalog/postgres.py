"""The production catalog: PostgreSQL through psycopg 3 with a connection pool."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from sqlml import migrations
from sqlml.catalog._sql import Connection, SqlCatalog
from sqlml.errors import CatalogError, CatalogUnavailable

if TYPE_CHECKING:
    from sqlml.migrations import Migration, MigrationStatus


def redact(uri: str) -> str:
    """``uri`` with its password replaced by ``***``, for messages and logs.

    >>> redact("postgresql://ada:secret@db:5432/ml")
    'postgresql://ada:***@db:5432/ml'
    """
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


class PostgresCatalog(SqlCatalog):
    """A catalog in a PostgreSQL database; its schema is managed by ``sqlml migrate``.

    Args:
        uri: a ``postgresql://`` URI.
        migrate: apply pending migrations on open; by default a schema that is behind or
            ahead of this sqlml is an error that says to run ``sqlml migrate``.
        max_connections: the size of the connection pool.
        connect_timeout: seconds to wait for the server.
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
        connect_timeout: float = 10,
        check_schema: bool = True,
    ) -> None:
        self._conninfo = uri
        self.uri = redact(uri)
        self._timeout = connect_timeout
        if check_schema:
            self.check_schema(migrate=migrate)
        self._pool: ConnectionPool[psycopg.Connection[tuple[object, ...]]] = ConnectionPool(
            uri,
            min_size=1,
            max_size=max_connections,
            open=False,
            timeout=connect_timeout,
            kwargs={"connect_timeout": max(1, round(connect_timeout))},
        )
        try:
            self._pool.open(wait=True, timeout=connect_timeout)
        except PoolTimeout as exc:
            self._pool.close()
            raise CatalogUnavailable(self.uri, str(exc)) from exc

    def _connect(self, autocommit: bool = False) -> psycopg.Connection[tuple[object, ...]]:
        try:
            return psycopg.connect(
                self._conninfo,
                autocommit=autocommit,
                connect_timeout=max(1, round(self._timeout)),
            )
        except psycopg.Error as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CatalogUnavailable(self.uri, reason) from exc

    def migrate(self) -> list[Migration]:
        self.check_schema(migrate=True, apply=False)
        with self._connect(autocommit=True) as conn:
            try:
                return migrations.migrate_postgresql(conn)
            except psycopg.Error as exc:
                raise CatalogError(f"cannot migrate catalog {self.uri}: {exc}") from exc

    def migration_status(self) -> list[MigrationStatus]:
        with self._connect(autocommit=True) as conn:
            return migrations.status_postgresql(conn)

    @contextmanager
    def _transaction(self, write: bool = False) -> Iterator[Connection]:
        try:
            with self._pool.connection() as conn, conn.transaction():
                yield conn
        except psycopg.OperationalError as exc:
            raise CatalogUnavailable(self.uri, str(exc).strip()) from exc
        except PoolTimeout as exc:
            raise CatalogUnavailable(self.uri, str(exc)) from exc
        except psycopg.Error as exc:
            raise CatalogError(f"catalog {self.uri}: {exc}") from exc

    def close(self) -> None:
        self._pool.close()
