"""Concurrent catalog writers: CREATE MODEL of one new name from eight processes at once,
on both catalog stores, and ``sqlml migrate`` while another runner holds the lock.

Each CREATE MODEL worker process opens its own session (and catalog connection), says it
is ready, and runs its statement when the test releases all of them together.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from sqlml import migrations
from sqlml.catalog import open_catalog

WORKERS = 8

WORKER = """
import sys
import sqlml
from sqlml.errors import ModelExists

uri, statement = sys.argv[1], sys.argv[2]
with sqlml.connect(catalog=uri) as session:
    session.sql(
        "CREATE TABLE t AS SELECT i::DOUBLE AS x, (i % 7)::DOUBLE + i / 1000 AS y "
        "FROM range(5000) r(i)"
    )
    import sqlml.udfs.train  # loaded before the start, so the workers start even
    print("ready", flush=True)
    sys.stdin.readline()
    try:
        print("version", session.sql(statement).column("version")[0].as_py(), flush=True)
    except ModelExists as exc:
        print("exists", exc.name, flush=True)
"""


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def catalog_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty catalog on each store."""
    if request.param == "sqlite":
        uri = f"sqlite:///{tmp_path / 'catalog.db'}"
    else:
        uri = request.getfixturevalue("postgres_uri")
    with open_catalog(uri, migrate=True):
        pass
    return uri


def run_at_once(uri: str, statement: str) -> list[str]:
    """``statement`` run by :data:`WORKERS` processes released together: what each said."""
    # One training thread each: eight processes share the machine's cores.
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, uri, statement],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(WORKERS)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line == "ready\n", (line, proc.communicate(timeout=60)[1])
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        outputs = [proc.communicate(timeout=300) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    assert [proc.returncode for proc in procs] == [0] * WORKERS, [err for _, err in outputs]
    return [out.strip() for out, _ in outputs]


def test_create_model_of_a_new_name_has_exactly_one_winner(catalog_uri: str) -> None:
    said = run_at_once(
        catalog_uri,
        "CREATE MODEL raced OPTIONS (task = 'regression', target = 'y') AS SELECT * FROM t",
    )
    assert sorted(said) == ["exists raced"] * (WORKERS - 1) + ["version 1"], said
    with open_catalog(catalog_uri) as catalog:
        assert [v.version for v in catalog.list_versions("raced")] == [1]
        assert catalog.list_aliases("raced") == []


def test_create_or_replace_model_gives_each_process_its_own_version(catalog_uri: str) -> None:
    said = run_at_once(
        catalog_uri,
        "CREATE OR REPLACE MODEL replaced OPTIONS (task = 'regression', target = 'y') "
        "AS SELECT * FROM t",
    )
    assert sorted(said, key=lambda s: int(s.split()[-1])) == [
        f"version {n}" for n in range(1, WORKERS + 1)
    ], said
    with open_catalog(catalog_uri) as catalog:
        stored = catalog.list_versions("replaced")
        assert [v.version for v in stored] == list(range(1, WORKERS + 1))
        for v in stored:
            catalog.load_artifact("replaced", v.version)  # each one whole (SHA-256 checked)


def sqlml_migrate(*args: str) -> subprocess.Popen[str]:
    """``sqlml migrate ARGS`` as a real process."""
    return subprocess.Popen(
        [sys.executable, "-m", "sqlml.cli", "migrate", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


WAITING = "waiting for another migration runner"


@pytest.mark.postgres
def test_migrate_says_it_waits_for_another_runner_then_goes_on(postgres_uri: str) -> None:
    with psycopg.connect(postgres_uri, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (migrations.ADVISORY_LOCK_KEY,))
        proc = sqlml_migrate("--catalog", postgres_uri)
        assert proc.stderr is not None
        assert WAITING in proc.stderr.readline()
        time.sleep(1.0)
        assert proc.poll() is None  # still waiting
        holder.execute("SELECT pg_advisory_unlock(%s)", (migrations.ADVISORY_LOCK_KEY,))
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert err.count(WAITING) == 0  # the one line was read above
    assert f"applied {migrations.latest_version():04d}_" in out
    with open_catalog(postgres_uri) as catalog:
        assert all(s.applied for s in catalog.migration_status())


@pytest.mark.postgres
def test_migrate_gives_up_after_the_lock_timeout(postgres_uri: str) -> None:
    with psycopg.connect(postgres_uri, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (migrations.ADVISORY_LOCK_KEY,))
        start = time.monotonic()
        proc = sqlml_migrate("--catalog", postgres_uri, "--lock-timeout", "1.5")
        _, err = proc.communicate(timeout=120)
        took = time.monotonic() - start
    assert proc.returncode == 1
    assert err.count(WAITING) == 1, err
    assert "error: gave up after waiting 1.5 s for the migration lock" in err
    assert "--lock-timeout" in err.splitlines()[-1]
    assert 1.5 <= took < 60
    with psycopg.connect(postgres_uri) as conn:
        row = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
        assert row is not None
        if row[0]:
            assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone() == (0,)


def test_migrate_of_a_locked_sqlite_catalog_gives_up_after_the_lock_timeout(
    tmp_path: Path,
) -> None:
    path = tmp_path / "catalog.db"
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("CREATE TABLE other (x)")
        holder.execute("BEGIN IMMEDIATE")
        proc = sqlml_migrate("--catalog", f"sqlite:///{path}", "--lock-timeout", "1")
        out, err = proc.communicate(timeout=120)
    finally:
        holder.close()
    assert proc.returncode == 1
    assert err.count(WAITING) == 1, err
    assert "gave up after waiting 1 s" in err
    proc = sqlml_migrate("--catalog", f"sqlite:///{path}", "--lock-timeout", "1")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert WAITING not in err
    assert f"applied {migrations.latest_version():04d}_" in out
