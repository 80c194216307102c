"""A served session reaches none of the host's files, databases or network unless the
server allows a directory: real ``sqlml serve`` processes on both engines, the ADBC
Flight SQL client, and the attacks a logged-in user could try."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import adbc_driver_flightsql.dbapi as adbc
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from .conftest import PASSWORD, USER, Server, query, start_server, stop_server

DENIED = r"UNAUTHORIZED: .*HostAccessDenied: .*this server lets SQL reach no files"


def _connect(server: Server) -> Any:
    return adbc.connect(
        server.uri, db_kwargs={"username": USER, "password": PASSWORD}, autocommit=True
    )


@pytest.fixture(scope="module", params=["duckdb", "datafusion"])
def host(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path, Server]]:
    """A default server (no directory allowed) with a secret file beside it."""
    tmp = tmp_path_factory.mktemp(f"host-{request.param}")
    (tmp / "secret.csv").write_text("password\nhunter2\n")
    running = start_server(tmp, "--auth", f"{USER}:{PASSWORD}", engine=request.param)
    yield request.param, tmp, running
    stop_server(running)


#: What a logged-in user tried on each engine; each must be refused.
ATTACKS = {
    "duckdb": [
        "SELECT * FROM read_csv('{tmp}/secret.csv')",
        "SELECT * FROM read_text('/etc/passwd')",
        "SELECT * FROM glob('{tmp}/*')",
        "COPY (SELECT 'import os' AS line) TO '{tmp}/planted.pth' (HEADER false)",
        "ATTACH '{tmp}/other.duckdb' AS other",
        "EXPORT DATABASE '{tmp}/export'",
        "SELECT * FROM read_csv('https://example.com/data.csv')",
        "LOAD httpfs",
    ],
    "datafusion": [
        "CREATE EXTERNAL TABLE s STORED AS CSV LOCATION '{tmp}/secret.csv'",
    ],
}


def test_sql_cannot_read_or_write_the_hosts_files(host: tuple[str, Path, Server]) -> None:
    engine, tmp, server = host
    con = _connect(server)
    try:
        for attack in ATTACKS[engine]:
            with pytest.raises(adbc.Error) as refused:
                query(con, attack.format(tmp=tmp))
            if engine == "duckdb":
                assert refused.match(DENIED), attack
        if engine == "datafusion":
            # With a declared schema the table is made, but over the session's own empty
            # directory: '/etc/passwd' is not the host's.
            query(
                con, "CREATE EXTERNAL TABLE p (line VARCHAR) STORED AS CSV LOCATION '/etc/passwd'"
            )
            assert query(con, "SELECT * FROM p").num_rows == 0
            # A COPY lands in the session's private scratch directory, not where it says.
            query(con, f"COPY (SELECT 1 AS a) TO '{tmp}/planted.csv' STORED AS CSV")
    finally:
        con.close()
    assert sorted(p.name for p in tmp.iterdir()) == ["catalog.db", "secret.csv"]


def test_a_client_cannot_switch_the_restriction_off(host: tuple[str, Path, Server]) -> None:
    engine, tmp, server = host
    con = _connect(server)
    try:
        if engine == "duckdb":
            for setting in (
                "SET enable_external_access = true",
                f"SET allowed_directories = ['{tmp}/']",
                "SET lock_configuration = false",
            ):
                with pytest.raises(adbc.Error, match="configuration has been locked"):
                    query(con, setting)
            with pytest.raises(adbc.Error, match=DENIED):
                query(con, f"SELECT * FROM read_csv('{tmp}/secret.csv')")
        else:
            with pytest.raises(adbc.Error):
                query(
                    con, f"CREATE EXTERNAL TABLE s STORED AS CSV LOCATION 'file://{tmp}/secret.csv'"
                )
    finally:
        con.close()


def test_the_session_still_trains_predicts_and_keeps_tables(
    host: tuple[str, Path, Server],
) -> None:
    _, _, server = host
    con = _connect(server)
    try:
        query(
            con,
            "CREATE TABLE pts AS SELECT CAST(value AS DOUBLE) AS x, value * 2.0 AS y "
            "FROM generate_series(1, 300) AS t(value)",
        )
        trained = query(
            con,
            "CREATE OR REPLACE MODEL lin OPTIONS (target = 'y', algorithm = 'linear') "
            "AS SELECT x, y FROM pts",
        ).to_pylist()
        rows = query(con, "SELECT x, predict('lin', *) AS p FROM pts ORDER BY x LIMIT 3")
        importance = query(con, "SELECT * FROM evaluate('lin', 'SELECT x, y FROM pts')")
    finally:
        con.close()
    assert trained[0]["rows"] == 300
    assert rows.column("p").to_pylist() == pytest.approx([2.0, 4.0, 6.0], abs=1e-6)
    assert importance.column("rows").to_pylist() == [300]


@pytest.fixture(scope="module", params=["duckdb", "datafusion"])
def allowed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path, Server]]:
    """A server allowing a data directory (and on DuckDB a writable one)."""
    tmp = tmp_path_factory.mktemp(f"allowed-{request.param}")
    (tmp / "data").mkdir()
    (tmp / "out").mkdir()
    pq.write_table(pa.table({"id": [1, 2, 3], "v": [0.5, 1.5, 2.5]}), tmp / "data" / "t.parquet")
    (tmp / "secret.csv").write_text("password\nhunter2\n")
    dirs = ["--data-dir", str(tmp / "data")]
    if request.param == "duckdb":
        dirs += ["--writable-dir", str(tmp / "out")]
    running = start_server(tmp, "--auth", f"{USER}:{PASSWORD}", *dirs, engine=request.param)
    yield request.param, tmp, running
    stop_server(running)


def test_allowed_directories_are_reachable_and_only_they(
    allowed: tuple[str, Path, Server],
) -> None:
    engine, tmp, server = allowed
    con = _connect(server)
    try:
        if engine == "duckdb":
            rows = query(con, f"SELECT sum(v) AS s FROM read_parquet('{tmp}/data/t.parquet')")
            query(con, f"COPY (SELECT 42 AS answer) TO '{tmp}/out/answer.csv'")
            written = query(con, f"SELECT * FROM read_csv('{tmp}/out/answer.csv')")
            assert written.to_pylist() == [{"answer": 42}]
            for refused in (
                f"COPY (SELECT 1 AS a) TO '{tmp}/data/overwrite.csv'",
                f"COPY (SELECT 1 AS a) TO '{tmp}/out/../escape.csv'",
                f"SELECT * FROM read_csv('{tmp}/secret.csv')",
            ):
                with pytest.raises(adbc.Error, match=DENIED):
                    query(con, refused)
        else:
            # DataFusion's paths are inside the one directory it serves.
            query(con, "CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '/t.parquet'")
            rows = query(con, "SELECT sum(v) AS s FROM t")
            with pytest.raises(adbc.Error, match=DENIED):
                query(con, "COPY (SELECT 1 AS a) TO '/overwrite.csv' STORED AS CSV")
            with pytest.raises(adbc.Error, match="No files found"):
                query(con, f"CREATE EXTERNAL TABLE s STORED AS CSV LOCATION '{tmp}/secret.csv'")
    finally:
        con.close()
    assert rows.to_pylist() == [{"s": 4.5}]
    assert sorted(p.name for p in (tmp / "data").iterdir()) == ["t.parquet"]
    assert not (tmp / "escape.csv").exists()


def _serve(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "sqlml.cli", "serve", "--port", "0", *args]
    return subprocess.run(command, cwd=tmp, capture_output=True, text=True, timeout=120)


def test_bad_directories_stop_the_server_with_one_line(tmp_path: Path) -> None:
    catalog = f"sqlite:///{tmp_path / 'catalog.db'}"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    cases = [
        (("--data-dir", str(tmp_path / "missing")), "--data-dir: " + str(tmp_path / "missing")),
        (("--writable-dir", str(tmp_path)), "holds the catalog"),
        (
            ("--engine", "datafusion", "--data-dir", str(tmp_path / "a"),
             "--data-dir", str(tmp_path / "b")),
            "serves at most one directory",
        ),
    ]  # fmt: skip
    for args, message in cases:
        result = _serve(tmp_path, "--catalog", catalog, *args)
        assert result.returncode == 1, result.stderr
        assert message in result.stderr
        assert "Traceback" not in result.stderr
        assert result.stderr.count("\n") == 1, result.stderr
