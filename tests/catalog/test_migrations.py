"""The migration runner on SQLite and on the real PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import time

import psycopg
import pytest

from sqlml import migrations
from sqlml.catalog import open_catalog
from sqlml.errors import MigrationError, SchemaOutOfDate

from .conftest import make_spec
from .test_catalog import raw_execute

ALL = migrations.discover("postgresql")


def test_files_are_numbered_and_have_dialect_overrides() -> None:
    assert [m.version for m in ALL] == list(range(1, len(ALL) + 1))
    sqlite_first = migrations.discover("sqlite")[0]
    pg_first = ALL[0]
    assert (sqlite_first.version, sqlite_first.name) == (pg_first.version, pg_first.name)
    assert "JSONB" in pg_first.sql
    assert "JSONB" not in sqlite_first.sql
    assert sqlite_first.checksum != pg_first.checksum
    assert migrations.latest_version() == ALL[-1].version
    assert [(m.version, m.name) for m in ALL] == [
        (1, "initial"),
        (2, "compiled_models"),
        (3, "model_owner"),
        (4, "alias_history"),
    ]
    sqlite_compiled, pg_compiled = migrations.discover("sqlite")[1], ALL[1]
    assert "created_at TEXT" in sqlite_compiled.sql
    assert "created_at TIMESTAMPTZ" in pg_compiled.sql


def test_aliases_made_before_their_history_can_be_rolled_back_to(catalog_uri: str) -> None:
    """0004 starts each existing alias's history at its current version."""
    with open_catalog(catalog_uri, migrate=True) as catalog:
        for artifact in (b"1", b"2"):
            catalog.register_version("churn", make_spec(), artifact)
        catalog.set_alias("churn", "production", 1)
    raw_execute(catalog_uri, "DROP TABLE model_alias_history")
    raw_execute(catalog_uri, "DELETE FROM schema_migrations WHERE version >= 4")
    with open_catalog(catalog_uri, migrate=True) as catalog:
        assert catalog.migration_status()[-1].applied
        catalog.set_alias("churn", "production", 2)
        assert catalog.rollback_alias("churn", "production").version == 1


def test_migrate_from_empty_then_rerun_is_a_no_op(catalog_uri: str) -> None:
    with open_catalog(catalog_uri, migrate=False, check_schema=False) as catalog:
        assert [s.applied for s in catalog.migration_status()] == [False] * len(ALL)
        applied = catalog.migrate()
        assert [m.version for m in applied] == [m.version for m in ALL]
        assert catalog.migrate() == []
        statuses = catalog.migration_status()
        assert all(s.applied for s in statuses)
        dialect = "sqlite" if catalog_uri.startswith("sqlite") else "postgresql"
        assert [s.checksum for s in statuses] == [m.checksum for m in migrations.discover(dialect)]
    with open_catalog(catalog_uri) as catalog:
        assert catalog.list_models() == []


def test_postgres_catalog_behind_says_to_migrate(postgres_uri: str) -> None:
    with pytest.raises(SchemaOutOfDate, match="run `sqlml migrate --catalog") as info:
        open_catalog(postgres_uri)
    assert (info.value.current, info.value.expected) == (0, migrations.latest_version())


def test_catalog_ahead_says_to_upgrade(catalog_uri: str) -> None:
    with open_catalog(catalog_uri, migrate=True):
        pass
    raw_execute(
        catalog_uri,
        "INSERT INTO schema_migrations VALUES (?, ?, ?, ?)",
        (999, "from_the_future", "0" * 64, "2099-01-01T00:00:00+00:00"),
    )
    with pytest.raises(SchemaOutOfDate, match="upgrade sqlml"):
        open_catalog(catalog_uri)
    with (
        open_catalog(catalog_uri, check_schema=False) as catalog,
        pytest.raises(SchemaOutOfDate),
    ):
        catalog.migrate()


def test_a_changed_applied_file_is_refused(catalog_uri: str) -> None:
    with open_catalog(catalog_uri, migrate=True):
        pass
    raw_execute(
        catalog_uri, "UPDATE schema_migrations SET checksum = ? WHERE version = 1", ("f" * 64,)
    )
    with (
        open_catalog(catalog_uri, check_schema=False) as catalog,
        pytest.raises(MigrationError, match="changed after it was applied") as info,
    ):
        catalog.migrate()
    assert info.value.version == 1


RUNNER = """
import sys, time
from sqlml.catalog import open_catalog
start = float(sys.argv[2])
with open_catalog(sys.argv[1], migrate=False, check_schema=False) as catalog:
    time.sleep(max(0.0, start - time.time()))
    print(len(catalog.migrate()))
"""


def test_four_concurrent_runners_apply_each_file_once(postgres_uri: str) -> None:
    start = time.time() + 2.0
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RUNNER, postgres_uri, str(start)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [err for _, err in outputs]
    applied = sorted(int(out) for out, _ in outputs)
    assert applied == [0, 0, 0, len(ALL)]
    with psycopg.connect(postgres_uri) as conn:
        rows = conn.execute("SELECT version, count(*) FROM schema_migrations GROUP BY version")
        assert sorted(rows) == [(m.version, 1) for m in ALL]
