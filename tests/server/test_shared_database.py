"""Sessions of ``sqlml serve --database FILE`` on DuckDB share the file: they open at the
same moment without errors, see each other's tables, and predict in parallel. A real
server process and real ADBC clients."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import adbc_driver_flightsql.dbapi as adbc
import pytest

import sqlml

from .conftest import Server, query, start_server, stop_server

CLIENTS = 16
TRAIN = (
    "CREATE MODEL m OPTIONS (target = 'y', algorithm = 'linear') AS "
    "SELECT CAST(value AS DOUBLE) AS x, value * 2.0 AS y FROM range(200) AS t(value)"
)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("shared-database")
    database = tmp / "warehouse.duckdb"
    with sqlml.connect("duckdb", f"sqlite:///{tmp / 'catalog.db'}", str(database)) as local:
        local.sql("CREATE TABLE points AS SELECT CAST(range AS DOUBLE) AS x FROM range(1000)")
        local.sql(TRAIN)
    running = start_server(
        tmp, "--auth", "u:p", "--database", str(database), "--max-sessions-per-user", str(CLIENTS)
    )
    yield running
    stop_server(running)


def _connect(server: Server) -> Any:
    return adbc.connect(server.uri, db_kwargs={"username": "u", "password": "p"}, autocommit=True)


def test_clients_open_sessions_at_once_and_predict_in_parallel(served: Server) -> None:
    start = threading.Barrier(CLIENTS)
    sums: list[float] = []
    errors: list[BaseException] = []

    def client() -> None:
        try:
            with _connect(served) as con:
                start.wait()  # every session opens at the same moment
                rows = query(con, "SELECT sum(predict('m', x)) AS s FROM points")
                sums.append(rows.column("s")[0].as_py())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert sums == pytest.approx([999000.0] * CLIENTS)
    assert "Traceback" not in served.log()
    assert "already exists" not in served.log()


def test_sessions_share_the_file_and_errors_reach_their_own_client(served: Server) -> None:
    with _connect(served) as one, _connect(served) as two:
        query(one, "CREATE TABLE made_by_one AS SELECT 7 AS n")
        assert query(two, "SELECT n FROM made_by_one").to_pylist() == [{"n": 7}]
        with pytest.raises(adbc.Error, match="ModelNotFound: model 'nope' does not exist"):
            query(two, "SELECT predict('nope', x) FROM points")
        # Closing one session leaves the functions working for the others.
        one.close()
        rows = query(two, "SELECT predict('m', x) AS p FROM points WHERE x = 3")
        assert rows.column("p").to_pylist() == pytest.approx([6.0])
    # The clients' SQL still reaches no file of the host.
    with _connect(served) as con, pytest.raises(adbc.Error, match="HostAccessDenied"):
        query(con, "SELECT * FROM read_csv('/etc/passwd')")


def test_a_second_engine_on_a_file_in_one_process_shares_its_functions(tmp_path: Path) -> None:
    database, catalog = str(tmp_path / "w.duckdb"), f"sqlite:///{tmp_path / 'c.db'}"
    with sqlml.connect("duckdb", catalog, database) as first:
        first.sql(TRAIN)
        with sqlml.connect("duckdb", catalog, database) as second:
            one = second.sql("SELECT predict('m', x) AS p FROM (SELECT 2.0::DOUBLE AS x)")
            assert one.column("p").to_pylist() == pytest.approx([4.0])
        two = first.sql("SELECT predict('m', x) AS p FROM (SELECT 5.0::DOUBLE AS x)")
        assert two.column("p").to_pylist() == pytest.approx([10.0])
