"""Numbered SQL migrations of the catalog schema, and their runner.

Each file in this package is named ``NNNN_name.sql``; a file ``NNNN_name.<dialect>.sql``
beside it replaces it on that dialect (``postgresql`` or ``sqlite``). Applied files are
recorded in ``schema_migrations`` with their SHA-256; each file is applied in its own
transaction, and a file whose text changed after it was applied is refused.

On PostgreSQL the runner holds ``pg_advisory_lock`` while it works, so concurrent runners
apply each file exactly once; on SQLite ``BEGIN IMMEDIATE`` serialises them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any, Literal

from sqlml.errors import CatalogError, MigrationError

if TYPE_CHECKING:
    from typing import TypeAlias

    import psycopg

    PgConnection: TypeAlias = psycopg.Connection[tuple[Any, ...]]

Dialect = Literal["sqlite", "postgresql"]
Applied = dict[int, tuple[str, str, dt.datetime]]

#: Key of the PostgreSQL advisory lock that serialises migration runners.
ADVISORY_LOCK_KEY = 0x5A1_3A1

_CREATE_TABLE = {
    "sqlite": (
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
        "name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at TEXT NOT NULL)"
    ),
    "postgresql": (
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
        "name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
    ),
}


@dataclass(frozen=True, slots=True)
class Migration:
    """One migration file as it applies to a dialect."""

    version: int
    name: str
    sql: str
    checksum: str


@dataclass(frozen=True, slots=True)
class MigrationStatus:
    """A migration and whether (and when) it was applied."""

    version: int
    name: str
    checksum: str
    applied_at: dt.datetime | None

    @property
    def applied(self) -> bool:
        return self.applied_at is not None


def discover(dialect: Dialect) -> list[Migration]:
    """The migrations shipped with sqlml, for ``dialect``, in version order."""
    files = {f.name: f for f in resources.files(__name__).iterdir() if f.name.endswith(".sql")}
    found: dict[int, Migration] = {}
    for filename in sorted(files):
        stem = filename.removesuffix(".sql")
        if "." in stem:  # a dialect override, picked up beside its base file
            continue
        number, _, name = stem.partition("_")
        override = files.get(f"{stem}.{dialect}.sql")
        text = (override or files[filename]).read_text(encoding="utf-8")
        version = int(number)
        found[version] = Migration(version, name, text, hashlib.sha256(text.encode()).hexdigest())
    return [found[v] for v in sorted(found)]


def latest_version() -> int:
    """The schema version this sqlml expects."""
    return max(m.version for m in discover("sqlite"))


def _split_sqlite(script: str) -> list[str]:
    """Split a script into statements with SQLite's own statement-completeness test."""
    statements: list[str] = []
    buffer = ""
    for piece in script.split(";"):
        buffer += piece + ";"
        if sqlite3.complete_statement(buffer):
            if buffer.strip(" \n\t;"):
                statements.append(buffer)
            buffer = ""
    return statements


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# --- SQLite -------------------------------------------------------------------------------


def _sqlite_applied(conn: sqlite3.Connection) -> Applied:
    has_table = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
    ).fetchone()
    if not has_table:
        return {}
    rows = conn.execute("SELECT version, name, checksum, applied_at FROM schema_migrations")
    return {v: (n, c, dt.datetime.fromisoformat(a)) for v, n, c, a in rows}


def migrate_sqlite(
    conn: sqlite3.Connection,
    *,
    lock_timeout: float | None = None,
    on_wait: Callable[[], None] | None = None,
    uri: str = "",
) -> list[Migration]:
    """Apply pending migrations to a SQLite database opened with ``isolation_level=None``.

    Args:
        lock_timeout: the most seconds to wait for the database's write lock while
            another connection holds it; None for the connection's busy timeout.
        on_wait: called once when the lock is held by another connection, before waiting.
        uri: the catalog, for messages.

    Returns:
        The migrations applied by this call (empty when the schema was up to date).

    Raises:
        CatalogError: the lock stayed held for ``lock_timeout`` seconds.
    """
    applied: list[Migration] = []
    _sqlite_begin(conn, lock_timeout, on_wait, uri)
    try:
        conn.execute(_CREATE_TABLE["sqlite"])
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    for migration in discover("sqlite"):
        conn.execute("BEGIN IMMEDIATE")
        try:
            done = _sqlite_applied(conn)
            _check_known(done, "sqlite")
            if migration.version in done:
                conn.execute("COMMIT")
                continue
            for statement in _split_sqlite(migration.sql):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations VALUES (?, ?, ?, ?)",
                (migration.version, migration.name, migration.checksum, _now().isoformat()),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        applied.append(migration)
    return applied


def _sqlite_begin(
    conn: sqlite3.Connection,
    lock_timeout: float | None,
    on_wait: Callable[[], None] | None,
    uri: str,
) -> None:
    """``BEGIN IMMEDIATE``, saying so through ``on_wait`` when another connection holds
    the write lock, and waiting at most ``lock_timeout`` seconds (else the busy timeout)."""
    (busy,) = conn.execute("PRAGMA busy_timeout").fetchone()
    wait = int(busy) if lock_timeout is None else max(0, round(lock_timeout * 1000))
    conn.execute("PRAGMA busy_timeout = 0")  # find out at once whether the lock is held
    try:
        try:
            conn.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc):
                raise
        if on_wait is not None:
            on_wait()
        conn.execute(f"PRAGMA busy_timeout = {wait}")
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if lock_timeout is None or "locked" not in str(exc):
                raise
            raise _lock_timeout(uri, lock_timeout) from exc
    finally:
        conn.execute(f"PRAGMA busy_timeout = {int(busy)}")


def status_sqlite(conn: sqlite3.Connection) -> list[MigrationStatus]:
    """Every known or applied migration and whether it was applied."""
    return _status(_sqlite_applied(conn), "sqlite")


# --- PostgreSQL ---------------------------------------------------------------------------


def _pg_applied(
    conn: PgConnection,
) -> Applied:
    row = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
    if not row or not row[0]:
        return {}
    rows = conn.execute("SELECT version, name, checksum, applied_at FROM schema_migrations")
    return {int(v): (str(n), str(c), a) for v, n, c, a in rows}


def migrate_postgresql(
    conn: PgConnection,
    *,
    lock_timeout: float | None = None,
    on_wait: Callable[[], None] | None = None,
    uri: str = "",
) -> list[Migration]:
    """Apply pending migrations to PostgreSQL, holding the runners' advisory lock.

    ``conn`` must be in autocommit mode; each file runs in its own transaction.

    Args:
        lock_timeout: the most seconds to wait for the lock while another runner holds
            it; None waits as long as it takes.
        on_wait: called once when another runner holds the lock, before waiting.
        uri: the catalog, for messages.

    Returns:
        The migrations applied by this call (empty when the schema was up to date).

    Raises:
        CatalogError: the lock stayed held for ``lock_timeout`` seconds.
    """
    _pg_lock(conn, lock_timeout, on_wait, uri)
    applied: list[Migration] = []
    try:
        conn.execute(_CREATE_TABLE["postgresql"])
        done = _pg_applied(conn)
        _check_known(done, "postgresql")
        for migration in discover("postgresql"):
            if migration.version in done:
                continue
            with conn.transaction():
                conn.execute(migration.sql.encode())
                conn.execute(
                    "INSERT INTO schema_migrations VALUES (%s, %s, %s, %s)",
                    (migration.version, migration.name, migration.checksum, _now()),
                )
            applied.append(migration)
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK_KEY,))
    return applied


def _pg_lock(
    conn: PgConnection,
    lock_timeout: float | None,
    on_wait: Callable[[], None] | None,
    uri: str,
) -> None:
    """Take the runners' advisory lock, saying so through ``on_wait`` when it is held."""
    row = conn.execute("SELECT pg_try_advisory_lock(%s)", (ADVISORY_LOCK_KEY,)).fetchone()
    if row is not None and row[0]:
        return
    if on_wait is not None:
        on_wait()
    if lock_timeout is None:
        conn.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_LOCK_KEY,))
        return
    from psycopg import errors as pg_errors

    if lock_timeout <= 0:
        raise _lock_timeout(uri, lock_timeout)
    # lock_timeout bounds the wait for any lock, advisory ones included.
    conn.execute(
        "SELECT set_config('lock_timeout', %s, false)", (str(max(1, round(lock_timeout * 1000))),)
    )
    try:
        conn.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_LOCK_KEY,))
    except pg_errors.LockNotAvailable as exc:
        raise _lock_timeout(uri, lock_timeout) from exc
    finally:
        conn.execute("RESET lock_timeout")


def _lock_timeout(uri: str, seconds: float) -> CatalogError:
    return CatalogError(
        f"gave up after waiting {seconds:g} s for the migration lock of catalog {uri}: "
        "another migration runner still holds it. Let it finish (then run `sqlml migrate` "
        "again, which finds nothing left to do), or wait longer with --lock-timeout SECONDS"
    )


def status_postgresql(conn: PgConnection) -> list[MigrationStatus]:
    """Every known or applied migration and whether it was applied."""
    return _status(_pg_applied(conn), "postgresql")


def applied_version(statuses: list[MigrationStatus]) -> int:
    """The highest applied migration version (0 for an empty database)."""
    return max((s.version for s in statuses if s.applied), default=0)


# --- shared -------------------------------------------------------------------------------


def _check_known(done: Applied, dialect: Dialect) -> None:
    """Refuse to go on when an applied file's text changed since it was applied."""
    for migration in discover(dialect):
        if migration.version in done and done[migration.version][1] != migration.checksum:
            raise MigrationError(
                migration.version,
                migration.name,
                "this file changed after it was applied (checksum mismatch); applied "
                "migrations must never be edited — add a new numbered file instead",
            )


def _status(done: Applied, dialect: Dialect) -> list[MigrationStatus]:
    known = {m.version: m for m in discover(dialect)}
    out = []
    for version in sorted(set(known) | set(done)):
        if version in done:
            name, checksum, applied_at = done[version]
            out.append(MigrationStatus(version, name, checksum, applied_at))
        else:
            m = known[version]
            out.append(MigrationStatus(version, m.name, m.checksum, None))
    return out
