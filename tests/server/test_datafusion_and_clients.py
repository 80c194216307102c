"""sqlml serve on DataFusion streams in bounded memory; a non-loopback host needs auth.

Selecting and predicting on DataFusion, and the flightsql-dbapi client, are tested on every
engine x catalog cell (test_flight_sql.py, test_commands.py). The memory test is about
DataFusion's streaming alone (DuckDB's is test_streaming.py's), so it stays on one cell."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.test_cli import run

from .conftest import PASSWORD, USER, Server, adbc, start_server, stop_server


@pytest.fixture(scope="module")
def datafusion_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(
        tmp_path_factory.mktemp("df"), "--engine", "datafusion", "--auth", f"{USER}:{PASSWORD}"
    )
    yield running
    stop_server(running)


def test_refuses_public_host_without_auth(tmp_path: Path) -> None:
    result = run("serve", "--host", "0.0.0.0", "--port", "0", cwd=tmp_path)
    assert result.returncode == 1
    assert "without authentication" in result.stderr


def test_datafusion_result_streams_in_bounded_memory(datafusion_server: Server) -> None:
    """A 320 MB result grows the server by far less than a materialised copy would.

    What the server holds while streaming is not a constant: DataFusion runs a partition
    per core with batches in flight, and the allocator keeps some of what it freed. So the
    bound is taken against a baseline measured in the same test, on the same server: the
    growth while streaming a result a tenth the size. A stream holding its whole result
    would grow by at least the result's 320 MB over that baseline; a bounded one grows by
    about as much as the small stream did (measured here: 22 MB for 32 MB, 98 MB for 320 MB
    on a fresh server).
    """
    from .test_streaming import PeakRss

    small_rows, rows_wanted = 2_000_000, 20_000_000
    result_bytes = rows_wanted * 2 * 8

    def stream(cur: Any, rows: int) -> tuple[int, int]:
        with PeakRss(datafusion_server.process.pid) as rss:
            cur.execute(f"SELECT value AS i, value * 2 AS j FROM generate_series(1, {rows})")
            seen = sum(batch.num_rows for batch in cur.fetch_record_batch())
        return seen, rss.growth

    con = adbc.connect(
        datafusion_server.uri, db_kwargs={"username": USER, "password": PASSWORD}, autocommit=True
    )
    try:
        with con.cursor() as cur:
            cur.execute("SELECT 1 AS warm_up")
            cur.fetchall()
            small_seen, baseline = stream(cur, small_rows)
            rows, growth = stream(cur, rows_wanted)
    finally:
        con.close()
    assert (small_seen, rows) == (small_rows, rows_wanted)
    assert growth < baseline + result_bytes / 2, (
        f"server grew {growth / 1e6:.0f} MB streaming {result_bytes / 1e6:.0f} MB "
        f"(baseline: {baseline / 1e6:.0f} MB for a result a tenth the size)"
    )
