"""The ``postgres_uri`` fixture gives each test its own empty, connectable database."""

from __future__ import annotations

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

pytestmark = pytest.mark.postgres

# Databases seen by earlier tests in this module, to check isolation and cleanup.
_seen: list[str] = []


def _check_fresh_database(uri: str, server_uri: str) -> str:
    name = conninfo_to_dict(uri)["dbname"]
    assert isinstance(name, str)
    assert name != conninfo_to_dict(server_uri).get("dbname")
    with psycopg.connect(uri) as conn:
        row = conn.execute("SELECT current_database()").fetchone()
        assert row == (name,)
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchall()
        assert tables == []
    with psycopg.connect(server_uri) as conn:
        # Databases of earlier tests are distinct and have been dropped.
        assert name not in _seen
        for earlier in _seen:
            gone = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (earlier,))
            assert gone.fetchone() is None
    _seen.append(name)
    return name


def test_fresh_database_is_writable(postgres_uri: str, postgres_server_uri: str) -> None:
    _check_fresh_database(postgres_uri, postgres_server_uri)
    with psycopg.connect(postgres_uri) as conn:
        conn.execute("CREATE TABLE probe (x int)")
        conn.execute("INSERT INTO probe VALUES (1)")
        conn.commit()
        assert conn.execute("SELECT x FROM probe").fetchall() == [(1,)]


def test_each_test_gets_another_database(postgres_uri: str, postgres_server_uri: str) -> None:
    # The table created by the other test must not exist here.
    _check_fresh_database(postgres_uri, postgres_server_uri)
    with psycopg.connect(postgres_uri) as conn:
        row = conn.execute("SELECT to_regclass('public.probe')").fetchone()
        assert row == (None,)
