"""Fetching a large result through ``sqlml serve`` (Arrow Flight SQL) against running it
locally, and against psycopg fetching the same rows from PostgreSQL.

The result is N rows x 4 numeric columns (10M by default: 320 MB as Arrow). Measured in
the same run, best of ``REPEAT``:

- local: ``Session.sql(query)`` into a pyarrow Table, in this process (DuckDB);
- Flight SQL: a ``sqlml serve`` process on loopback, the ADBC Flight SQL driver's
  ``fetch_arrow_table()`` (the server streams record batches as DuckDB computes them);
- the baseline for BI tools without Arrow: the same rows loaded into PostgreSQL, fetched
  with psycopg 3 ``fetchall()`` (row tuples).

Goals: Flight SQL at least 0.5x as fast as local, at least 10x faster than psycopg.

Needs a PostgreSQL server for the psycopg figure (``SQLML_BENCH_POSTGRES_URI`` or
``SQLML_TEST_POSTGRES_URI``; ``make bench`` starts one), else that line is skipped.
``SQLML_BENCH_FLIGHT_ROWS`` (or ``--rows`` when run directly) sets N.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence

import adbc_driver_flightsql.dbapi as flightsql
import psycopg
import timing

import sqlml

ROWS = int(os.environ.get("SQLML_BENCH_FLIGHT_ROWS", 10_000_000))
REPEAT = int(os.environ.get("SQLML_BENCH_FLIGHT_REPEAT", 3))
TABLE = "sqlml_bench_flight"


def duckdb_query(rows: int) -> str:
    return (
        "SELECT range AS id, range * 0.5 AS x, range % 1000 AS k, "
        f"CAST(range % 7 AS DOUBLE) AS y FROM range({rows})"
    )


def postgres_query(rows: int) -> str:
    return (
        "SELECT g::int8 AS id, g * 0.5::float8 AS x, (g % 1000)::int8 AS k, "
        f"(g % 7)::float8 AS y FROM generate_series(0, {rows - 1}) g"
    )


@contextlib.contextmanager
def flight_server(workdir: str) -> Iterator[str]:
    """A ``sqlml serve`` process on a free loopback port; yields its URI."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SQLML_")}
    catalog = f"sqlite:///{workdir}/catalog.db"
    process = subprocess.Popen(
        [sys.executable, "-m", "sqlml.cli", "serve", "--port", str(port), "--catalog", catalog],
        cwd=workdir,
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stderr is not None
        for line in process.stderr:
            match = re.search(r"listening on (grpc://\S+)", line)
            if match:
                break
        else:
            raise RuntimeError("sqlml serve did not start")
        # keep the pipe drained: the server logs a line per statement
        drain = subprocess.Popen(["cat"], stdin=process.stderr, stdout=subprocess.DEVNULL)
        yield match.group(1)
    finally:
        process.terminate()
        process.wait(timeout=30)
        with contextlib.suppress(NameError):
            drain.wait(timeout=10)


def local_fetch(rows: int) -> float:
    with sqlml.connect(catalog="sqlite:///:memory:") as session:
        sql = duckdb_query(rows)
        assert session.sql(sql).num_rows == rows
        return timing.best_of(lambda: session.sql(sql), REPEAT)


def flight_fetch(rows: int) -> float:
    with (
        tempfile.TemporaryDirectory() as workdir,
        flight_server(workdir) as uri,
        flightsql.connect(uri, autocommit=True) as con,
    ):
        sql = duckdb_query(rows)

        def fetch() -> int:
            with con.cursor() as cur:
                cur.execute(sql)
                count: int = cur.fetch_arrow_table().num_rows
                return count

        assert fetch() == rows
        return timing.best_of(fetch, REPEAT)


def psycopg_fetch(uri: str, rows: int) -> float:
    with psycopg.connect(uri, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
        conn.execute(f"CREATE TABLE {TABLE} AS {postgres_query(rows)}")
        conn.execute(f"VACUUM ANALYZE {TABLE}")
    try:
        with psycopg.connect(uri) as conn:
            fetched = conn.execute(f"SELECT * FROM {TABLE}").fetchall()
            assert len(fetched) == rows
            del fetched
            return timing.best_of(
                lambda: conn.execute(f"SELECT * FROM {TABLE}").fetchall(), max(1, REPEAT - 1)
            )
    finally:
        with psycopg.connect(uri, autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {TABLE}")


def main(argv: Sequence[str] = ()) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=ROWS)
    rows = parser.parse_args(list(argv)).rows
    size = f"{rows * 32 / 1e6:.0f} MB as Arrow"
    print(f"   {rows:,} rows x 4 numeric columns ({size}), best of {REPEAT}")
    local = local_fetch(rows)
    remote = flight_fetch(rows)
    print(f"   {'local Session.sql -> Arrow':34} {local:7.2f} s")
    print(
        f"   {'Flight SQL (ADBC) -> Arrow':34} {remote:7.2f} s   "
        f"{local / remote:5.2f}x local (goal >= 0.5x), {rows / remote / 1e6:.1f} M rows/s"
    )
    uri = os.environ.get("SQLML_BENCH_POSTGRES_URI") or os.environ.get("SQLML_TEST_POSTGRES_URI")
    if not uri:
        print("   psycopg: skipped (set SQLML_BENCH_POSTGRES_URI, or run `make bench`)")
        return
    baseline = psycopg_fetch(uri, rows)
    print(
        f"   {'psycopg fetchall (PostgreSQL)':34} {baseline:7.2f} s   "
        f"Flight SQL is {baseline / remote:5.1f}x faster (goal >= 10x)"
    )


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main(sys.argv[1:])
