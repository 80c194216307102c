"""``sqlml serve`` observability and TLS: Prometheus metrics, per-query log lines, grpc+tls."""

from __future__ import annotations

import shutil
import socket
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import prometheus_client.parser as parser
import pyarrow as pa
import pytest

from tests.server.conftest import (
    PASSWORD,
    USER,
    Server,
    adbc,
    free_port,
    query,
    start_server,
    stop_server,
)
from tests.test_cli import run


def _finish(server: Server) -> str:
    """Stop the server; return everything it wrote to stderr."""
    return stop_server(server)


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, int]]:
    metrics_port = free_port()
    running = start_server(
        tmp_path_factory.mktemp("observed"),
        "--auth",
        f"{USER}:{PASSWORD}",
        "--metrics-port",
        str(metrics_port),
    )
    yield running, metrics_port
    if running.process.poll() is None:
        _finish(running)


def _metrics(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in parser.text_string_to_metric_families(text)
        for sample in family.samples
    }


def _value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_count_queries_errors_rows_and_predictions(observed: tuple[Server, int]) -> None:
    server, metrics_port = observed
    con = adbc.connect(
        server.uri, db_kwargs={"username": USER, "password": PASSWORD}, autocommit=True
    )
    try:
        query(
            con,
            "CREATE TABLE houses AS SELECT range AS id, range % 7 AS rooms, "
            "(range % 7) * 10.0 + range % 3 AS price FROM range(300)",
        )
        query(
            con,
            "CREATE MODEL price OPTIONS (target = 'price', exclude = 'id') AS SELECT * FROM houses",
        )
        before = _metrics(metrics_port)
        assert query(con, "SELECT 42 AS answer").to_pylist() == [{"answer": 42}]
        predicted = query(con, "SELECT id, predict('price', *) AS p FROM houses WHERE id < 5")
        assert predicted.num_rows == 5
        with pytest.raises(Exception, match="no_such_table"):
            query(con, "SELECT * FROM no_such_table")
        with con.cursor() as cur:  # a plain (unprepared) CommandStatementQuery
            cur.adbc_statement.set_sql_query("SELECT 7 AS x")
            stream, _ = cur.adbc_statement.execute_query()
            assert pa.RecordBatchReader._import_from_c(stream.address).read_all().num_rows == 1
        after = _metrics(metrics_port)
    finally:
        con.close()

    def delta(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    # the ADBC DB-API runs every statement as a prepared statement
    assert delta("sqlml_queries_total", kind="prepared", status="ok") == 2
    assert delta("sqlml_queries_total", kind="prepared", status="error") == 1
    assert delta("sqlml_queries_total", kind="query", status="ok") == 1
    assert delta("sqlml_rows_returned_total") == 7
    assert delta("sqlml_query_seconds_count") == 4
    assert delta("sqlml_predict_rows_total", model="price") == 5
    assert _value(after, "sqlml_active_sessions") >= 1
    assert _value(after, "sqlml_queries_total", kind="prepared", status="ok") >= 4


def test_one_log_line_per_query(tmp_path: Path) -> None:
    server = start_server(tmp_path, "--auth", f"{USER}:{PASSWORD}")
    try:
        con = adbc.connect(
            server.uri, db_kwargs={"username": USER, "password": PASSWORD}, autocommit=True
        )
        try:
            query(con, "SELECT 1 AS x UNION ALL SELECT 2")
            with pytest.raises(Exception, match="no_such_table"):
                query(con, "SELECT * FROM no_such_table")
        finally:
            con.close()
    finally:
        err = _finish(server)
    lines = [line for line in err.splitlines() if "sqlml.server query " in line]
    ok = [line for line in lines if "SELECT 1 AS x" in line]
    failed = [line for line in lines if "no_such_table" in line]
    assert len(ok) == 1, err
    assert len(failed) == 1, err
    assert f"user={USER} kind=prepared status=ok rows=2 duration_ms=" in ok[0]
    assert f"user={USER} kind=prepared status=error rows=0 duration_ms=" in failed[0]


def test_tls_flags_must_come_together(tmp_path: Path) -> None:
    (tmp_path / "cert.pem").write_text("x")
    result = run(
        "serve", "--port", str(free_port()), "--tls-cert", str(tmp_path / "cert.pem"), cwd=tmp_path
    )
    assert result.returncode == 1
    assert "--tls-cert and --tls-key must be given together" in result.stderr


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")
def test_tls_select(tmp_path: Path) -> None:
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
            "-keyout", "key.pem", "-out", "cert.pem", "-days", "1",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )  # fmt: skip
    cert = (tmp_path / "cert.pem").read_text()
    server = start_server(
        tmp_path,
        "--auth",
        f"{USER}:{PASSWORD}",
        "--tls-cert",
        str(tmp_path / "cert.pem"),
        "--tls-key",
        str(tmp_path / "key.pem"),
    )
    try:
        assert server.uri.startswith("grpc+tls://127.0.0.1:")
        from adbc_driver_flightsql import DatabaseOptions

        con = adbc.connect(
            f"grpc+tls://127.0.0.1:{server.port}",
            db_kwargs={
                "username": USER,
                "password": PASSWORD,
                DatabaseOptions.TLS_ROOT_CERTS.value: cert,
            },
            autocommit=True,
        )
        try:
            assert query(con, "SELECT 42 AS answer").to_pylist() == [{"answer": 42}]
        finally:
            con.close()
    finally:
        _finish(server)


def _openssl_pair(tmp_path: Path, name: str) -> tuple[Path, Path]:
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
            "-keyout", f"{name}-key.pem", "-out", f"{name}-cert.pem", "-days", "1",
            "-subj", "/CN=localhost",
        ],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )  # fmt: skip
    return tmp_path / f"{name}-cert.pem", tmp_path / f"{name}-key.pem"


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")
def test_start_up_errors_are_one_line_naming_the_cause(tmp_path: Path) -> None:
    cert, key = _openssl_pair(tmp_path, "a")
    _, other_key = _openssl_pair(tmp_path, "b")
    (tmp_path / "text.pem").write_text("not a certificate\n")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cases = [
            (["--port", str(port)], f"--port: cannot listen on 127.0.0.1:{port}: Address already"),
            (
                ["--port", "0", "--tls-cert", str(cert), "--tls-key", str(other_key)],
                "--tls-cert: cannot use", "the key does not belong to the certificate",
            ),
            (
                ["--port", "0", "--tls-cert", str(tmp_path / "text.pem"), "--tls-key", str(key)],
                "--tls-cert: cannot use", "must be a PEM certificate and its PEM private key",
            ),
            (
                ["--port", "0", "--tls-cert", str(cert), "--tls-key", str(tmp_path / "nope.pem")],
                "--tls-key: cannot read",
            ),
        ]  # fmt: skip
        for args, *expected in cases:
            result = run("serve", *args, cwd=tmp_path)
            assert result.returncode == 1, result.stderr
            assert result.stderr.count("\n") == 1, result.stderr
            assert "Traceback" not in result.stderr
            for text in expected:
                assert text in result.stderr
