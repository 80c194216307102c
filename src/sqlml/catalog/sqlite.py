"""The embedded catalog: a SQLite file, created and migrated on first use."""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from sqlml import migrations
from sqlml.catalog._sql import Connection, SqlCatalog
from sqlml.errors import CatalogError, CatalogUnavailable

if TYPE_CHECKING:
    from sqlml.migrations import Migration, MigrationStatus


class SQLiteCatalog(SqlCatalog):
    """A catalog in one SQLite file; the default, so sqlml runs with no server.

    Args:
        path: the database file (created if missing), or ``:memory:``.
        migrate: apply pending migrations on open (the default); when False, a schema that
            is behind is an error.
        check_schema: when False, open without looking at the schema version (for
            ``sqlml migrate`` itself).
    """

    def __init__(self, path: str, *, migrate: bool = True, check_schema: bool = True) -> None:
        self.path = path
        self.uri = f"sqlite:///{path}"
        self._lock = threading.RLock()
        try:
            self._conn = sqlite3.connect(
                path, isolation_level=None, check_same_thread=False, timeout=60
            )
            self._conn.execute("PRAGMA foreign_keys = ON")
            self._conn.execute("PRAGMA busy_timeout = 60000")
        except sqlite3.Error as exc:
            raise CatalogUnavailable(self.uri, str(exc)) from exc
        if check_schema:
            try:
                self.check_schema(migrate=migrate)
            except BaseException:
                self._conn.close()
                raise

    def migrate(
        self,
        *,
        lock_timeout: float | None = None,
        on_wait: Callable[[], None] | None = None,
    ) -> list[Migration]:
        with self._lock:
            self.check_schema(migrate=True, apply=False)
            try:
                return migrations.migrate_sqlite(
                    self._conn, lock_timeout=lock_timeout, on_wait=on_wait, uri=self.uri
                )
            except sqlite3.Error as exc:
                raise CatalogError(f"cannot migrate catalog {self.uri}: {exc}") from exc

    def migration_status(self) -> list[MigrationStatus]:
        with self._lock:
            return migrations.status_sqlite(self._conn)

    @contextmanager
    def _transaction(self, write: bool = False) -> Iterator[Connection]:
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            except sqlite3.Error as exc:
                raise CatalogError(f"catalog {self.uri}: {exc}") from exc
            try:
                yield self._conn
            except sqlite3.Error as exc:
                self._conn.execute("ROLLBACK")
                raise CatalogError(f"catalog {self.uri}: {exc}") from exc
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _encode_time(self, value: dt.datetime) -> object:
        return value.isoformat()

    def close(self) -> None:
        with self._lock:
            self._conn.close()
