"""Reading a PostgreSQL table into the engine through ADBC against psycopg's ``fetchall``.

A table of 1M rows x 20 columns (8 double, 4 integer, 4 text, 2 boolean, 2 date; some
NULLs) is generated on the server. Measured in the same run:

- ``pg.<table>`` copied into the engine (``CREATE TEMP TABLE ... AS SELECT * FROM pg.t``):
  ADBC's Arrow record batch stream handed to the engine by ``Session.attach_postgres``;
- the same ADBC stream read into a pyarrow Table, with no engine;
- the baseline: psycopg 3 ``fetchall()`` of ``SELECT *`` (row tuples, as a driver without
  Arrow delivers them).

Needs a server: ``SQLML_BENCH_POSTGRES_URI`` or ``SQLML_TEST_POSTGRES_URI`` (``make bench``
starts a private one); skipped with a message otherwise. ``SQLML_BENCH_ADBC_ROWS`` shrinks
the table.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable

import psycopg
import timing

import sqlml
from sqlml.pgsource import connect

ROWS = int(os.environ.get("SQLML_BENCH_ADBC_ROWS", 1_000_000))
REPEAT = int(os.environ.get("SQLML_BENCH_ADBC_REPEAT", 3))
TABLE = "sqlml_bench_adbc"

COLUMNS = (
    [f"(random() * 1000)::float8 AS d{i}" for i in range(7)]
    + ["CASE WHEN g % 10 = 0 THEN NULL ELSE random() END::float8 AS d7"]
    + [f"(g * {i + 3} % 100000)::int4 AS i{i}" for i in range(4)]
    + [f"'label_' || (g % {10**i + 7}) AS s{i}" for i in range(3)]
    + ["CASE WHEN g % 7 = 0 THEN NULL ELSE md5(g::text) END AS s3"]
    + ["g % 2 = 0 AS b0", "CASE WHEN g % 5 = 0 THEN NULL ELSE g % 3 = 0 END AS b1"]
    + ["DATE '2020-01-01' + (g % 1500) AS t0", "DATE '2000-01-01' + (g % 9000) AS t1"]
)


def best_of(fn: Callable[[], object], repeat: int = REPEAT) -> float:
    return timing.best_of(fn, repeat)


def engine_read(uri: str, engine: str) -> float | None:
    """Seconds to copy the table into the engine through ``pg.<table>``; None when the
    engine cannot read attached tables yet."""
    with sqlml.connect(engine=engine, catalog="sqlite:///:memory:") as session:
        session.attach_postgres(uri)
        # Both engines keep an in-memory table; neither writes a file here.
        copy = f"CREATE OR REPLACE TABLE copied AS SELECT * FROM pg.{TABLE}"
        check = f"SELECT count(*) AS n FROM pg.{TABLE}"
        try:
            assert session.sql(check)["n"].to_pylist() == [ROWS]
        except sqlml.SourceError as exc:
            print(f"   {engine}: skipped ({exc})")
            return None
        return best_of(lambda: session.sql(copy))


def adbc_read(uri: str) -> float:
    with contextlib.closing(connect(uri)) as conn:

        def read() -> object:
            with contextlib.closing(conn.cursor()) as cursor:
                cursor.execute(f"SELECT * FROM {TABLE}")
                return cursor.fetch_arrow_table()

        return best_of(read)


def psycopg_read(uri: str) -> float:
    with psycopg.connect(uri) as conn:
        return best_of(lambda: conn.execute(f"SELECT * FROM {TABLE}").fetchall())


def main() -> None:
    uri = os.environ.get("SQLML_BENCH_POSTGRES_URI") or os.environ.get("SQLML_TEST_POSTGRES_URI")
    if not uri:
        print(
            "   skipped: set SQLML_BENCH_POSTGRES_URI (or SQLML_TEST_POSTGRES_URI), "
            "or run `make bench`, which starts a private server"
        )
        return
    with psycopg.connect(uri, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
        conn.execute(
            f"CREATE TABLE {TABLE} AS SELECT {', '.join(COLUMNS)} FROM generate_series(1, {ROWS}) g"
        )
        conn.execute(f"VACUUM ANALYZE {TABLE}")
        size = conn.execute(f"SELECT pg_total_relation_size('{TABLE}')").fetchone()
    megabytes = (size[0] if size else 0) / 1e6
    print(
        f"   {ROWS:,} rows x {len(COLUMNS)} columns ({megabytes:.0f} MB on the server), "
        f"best of {REPEAT}"
    )
    try:
        baseline = psycopg_read(uri)
        arrow = adbc_read(uri)
        print(f"   {'psycopg fetchall (baseline)':32} {baseline:7.2f} s")
        print(
            f"   {'ADBC -> pyarrow Table':32} {arrow:7.2f} s   "
            f"{baseline / arrow:5.1f}x faster than psycopg"
        )
        for engine in ("duckdb", "datafusion"):
            seconds = engine_read(uri, engine)
            if seconds is not None:
                print(
                    f"   {f'ADBC -> {engine} (pg.<table>)':32} {seconds:7.2f} s   "
                    f"{baseline / seconds:5.1f}x faster than psycopg, "
                    f"{ROWS / seconds / 1e6:.2f} M rows/s"
                )
    finally:
        with psycopg.connect(uri, autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
