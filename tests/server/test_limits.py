"""One client cannot take the server or its PostgreSQL catalog from the others: sessions
are bounded in all and per user, and they share one bounded pool of catalog connections.
A real ``sqlml serve`` process on a PostgreSQL catalog, real ADBC clients, psql's view of
the connections (``pg_stat_activity``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import adbc_driver_flightsql.dbapi as adbc
import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from sqlml.catalog import open_catalog

from .conftest import query, start_server, stop_server

pytestmark = pytest.mark.postgres

POOL = 2


def _connect(uri: str, user: str) -> Any:
    return adbc.connect(uri, db_kwargs={"username": user, "password": user}, autocommit=True)


def _catalog_connections(postgres_uri: str) -> int:
    """Connections to the catalog's database other than this one."""
    dbname = conninfo_to_dict(postgres_uri)["dbname"]
    with psycopg.connect(postgres_uri) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [dbname],
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_sessions_are_bounded_and_share_a_bounded_catalog_pool(
    postgres_uri: str, tmp_path: Path
) -> None:
    open_catalog(postgres_uri, migrate=True).close()
    server = start_server(
        tmp_path,
        "--auth", "alice:alice", "--auth", "bob:bob",
        "--max-sessions", "5", "--max-sessions-per-user", "3",
        "--catalog-pool", str(POOL),
        catalog=postgres_uri,
    )  # fmt: skip
    opened: list[Any] = []
    seen: list[int] = []
    try:
        alice = _connect(server.uri, "alice")
        opened.append(alice)
        query(
            alice, "CREATE TABLE pts AS SELECT range::DOUBLE AS x, range * 2.0 AS y FROM range(50)"
        )
        query(
            alice,
            "CREATE MODEL lin OPTIONS (target = 'y', algorithm = 'linear') AS SELECT * FROM pts",
        )
        for _ in range(3):  # bob takes all his sessions, each reading the catalog
            bob = _connect(server.uri, "bob")
            opened.append(bob)
            assert query(
                bob, "SELECT predict('lin', x) AS p FROM (SELECT 2.0::DOUBLE AS x)"
            ).column("p").to_pylist() == pytest.approx([4.0])
            seen.append(_catalog_connections(postgres_uri))
        extra = _connect(server.uri, "bob")
        opened.append(extra)
        with pytest.raises(
            adbc.Error, match=r"\] resource exhausted: .*Detail: Unavailable"
        ) as refused:
            query(extra, "SELECT 1")
        assert "user 'bob' has 3 sessions open" in str(refused.value)
        assert "--max-sessions-per-user 3" in str(refused.value)
        # alice keeps working, and PostgreSQL still takes a direct connection.
        assert query(alice, "SELECT predict('lin', x) AS p FROM (SELECT 5.0::DOUBLE AS x)").column(
            "p"
        ).to_pylist() == pytest.approx([10.0])
        seen.append(_catalog_connections(postgres_uri))
        second = _connect(server.uri, "alice")
        opened.append(second)
        assert query(second, "SELECT count(*) AS n FROM (SELECT 1)").to_pylist() == [{"n": 1}]
        # Five sessions are open: a sixth is refused whoever asks.
        third = _connect(server.uri, "alice")
        opened.append(third)
        with pytest.raises(
            adbc.Error, match=r"\] resource exhausted: .*Detail: Unavailable"
        ) as full:
            query(third, "SELECT 1")
        assert "--max-sessions 5" in str(full.value)
        seen.append(_catalog_connections(postgres_uri))
    finally:
        for con in opened:
            con.close()
        log = stop_server(server)
    assert max(seen) <= POOL, (seen, log)
    assert min(seen) >= 1, seen  # the pool is really where the sessions' connections are
