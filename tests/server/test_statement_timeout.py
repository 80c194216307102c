"""A runaway statement is stopped by ``--statement-timeout`` and says so; the session it
ran on keeps working. A real ``sqlml serve`` process and the ADBC client, on both engines."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import adbc_driver_flightsql.dbapi as adbc
import pytest

import sqlml
from sqlml.config import Settings
from sqlml.errors import ConfigError
from sqlml.server import serve

from .conftest import Server, query, start_server, stop_server

TIMEOUT = 1.0
#: How long a stopped statement may take to fail: the server looks once a second, and a
#: busy machine is slow to schedule it; far below the statements' own running time.
FAILS_WITHIN = 20.0

TRAIN = (
    "CREATE MODEL m OPTIONS (target = 'y', num_iterations = 20) AS "
    "SELECT CAST(value AS DOUBLE) AS x, value % 7 * 1.5 AS y "
    "FROM generate_series(1, 2000) AS t(value)"
)
#: Predictions over ten billion generated rows: hours of work, unless stopped.
RUNAWAY_PREDICT = (
    "SELECT count(p) AS n FROM (SELECT predict('m', x) AS p FROM "
    "(SELECT CAST(value AS DOUBLE) AS x FROM generate_series(1, 10000000000) AS t(value)))"
)
#: A plain aggregate over a trillion rows.
RUNAWAY_COUNT = "SELECT count(*) AS n FROM range(1000000000000) AS t(value)"


@pytest.fixture(scope="module", params=["duckdb", "datafusion"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp(f"timeout-{request.param}")
    running = start_server(
        tmp, "--auth", "u:p", "--statement-timeout", str(TIMEOUT), engine=request.param
    )
    yield running
    stop_server(running)


def _connect(server: Server) -> adbc.Connection:
    return adbc.connect(server.uri, db_kwargs={"username": "u", "password": "p"}, autocommit=True)


def _stopped(con: adbc.Connection, sql: str) -> float:
    """Run ``sql``; assert it was stopped by the timeout; the seconds it took."""
    started = time.monotonic()
    with pytest.raises(adbc.Error, match=r"TIMEOUT.*StatementCancelled.*statement timeout"):
        query(con, sql)
    return time.monotonic() - started


def test_a_runaway_predict_is_stopped_and_the_session_goes_on(served: Server) -> None:
    # Trained here, on the server's catalog: training may take longer than the timeout.
    with sqlml.connect(served.engine, served.catalog) as local:
        local.sql(TRAIN)
    with _connect(served) as con:
        seconds = _stopped(con, RUNAWAY_PREDICT)
        assert TIMEOUT <= seconds < FAILS_WITHIN, seconds
        # The same session runs the next statements as usual, predict included.
        assert query(con, "SELECT 42 AS answer").to_pylist() == [{"answer": 42}]
        small = RUNAWAY_PREDICT.replace("10000000000", "100")
        assert query(con, small).to_pylist() == [{"n": 100}]
    assert "stopping the statement of" in served.log()


def test_a_runaway_query_is_stopped_on_duckdb(served: Server) -> None:
    if served.engine != "duckdb":
        pytest.skip("DataFusion's Python API cannot stop a plan between its batches")
    with _connect(served) as con:
        seconds = _stopped(con, RUNAWAY_COUNT)
        assert TIMEOUT <= seconds < FAILS_WITHIN, seconds
        assert query(con, "SELECT 1 AS one").to_pylist() == [{"one": 1}]


def test_a_statement_within_the_timeout_is_not_stopped(served: Server) -> None:
    # The clock of each statement starts afresh: many short ones add up past the timeout.
    with _connect(served) as con:
        started = time.monotonic()
        while time.monotonic() - started < 2.5 * TIMEOUT:
            rows = query(con, "SELECT count(*) AS n FROM generate_series(1, 1000) AS t(value)")
            assert rows.column("n").to_pylist() == [1000]


@pytest.mark.parametrize("value", [-1.0, float("nan")])
def test_a_bad_statement_timeout_is_refused(tmp_path: Path, value: float) -> None:
    with pytest.raises(ConfigError, match="--statement-timeout"):
        serve(Settings(catalog=f"sqlite:///{tmp_path / 'c.db'}"), statement_timeout=value)
