"""The ``sqlml`` command's rough edges: passwords in messages, scripts of several
statements, output formats, closed pipes, multi-line cells and ``--timer``.

Commands run in process (``sqlml.cli.main``) or as real processes, against a temporary
SQLite catalog (or the test PostgreSQL server) and an embedded engine.
"""

from __future__ import annotations

import csv
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg.conninfo
import pytest

import sqlml
from sqlml._redact import MASK, _conninfo_items, redact_uri, scrub
from sqlml.cli import main

from .test_cli import run

PASSWORD = "hunter2-Sekr1t"


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """In-process runs of ``main`` in ``tmp_path``, without the caller's SQLML_* settings
    and with a catalog of their own there (sqlite, the default)."""
    for key in list(os.environ):
        if key.startswith("SQLML_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _with_password(uri: str, password: str, user: str | None = None) -> str:
    parts = urlsplit(uri)
    if parts.scheme not in ("postgresql", "postgres"):
        pytest.skip("needs the test server as a postgresql:// URI")
    host = parts.netloc.rpartition("@")[2]
    name = user or parts.username or "postgres"
    return urlunsplit(parts._replace(netloc=f"{name}:{password}@{host}"))


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _assert_hidden(result: subprocess.CompletedProcess[str], password: str = PASSWORD) -> None:
    shown = result.stdout + result.stderr
    assert password not in shown, shown
    assert MASK in shown, shown
    assert "Traceback" not in result.stderr


# --------------------------------------------------------------------------- 1. secrets


@pytest.mark.postgres
def test_models_on_an_empty_postgres_catalog_hides_the_password(
    postgres_uri: str, tmp_path: Path
) -> None:
    uri = _with_password(postgres_uri, PASSWORD)
    unmigrated = run("models", "--catalog", uri, cwd=tmp_path)
    assert unmigrated.returncode == 1
    assert "run `sqlml migrate" in unmigrated.stderr
    _assert_hidden(unmigrated)
    migrated = run("migrate", "--catalog", uri, cwd=tmp_path)
    assert migrated.returncode == 0, migrated.stderr
    assert PASSWORD not in migrated.stdout + migrated.stderr
    status = run("migrate", "--catalog", uri, cwd=tmp_path)
    assert "is up to date" in status.stdout
    _assert_hidden(status)
    empty = run("models", "--catalog", uri, cwd=tmp_path)
    assert empty.returncode == 0, empty.stderr
    assert "no models in catalog" in empty.stdout
    _assert_hidden(empty)


@pytest.mark.postgres
@pytest.mark.parametrize(
    "case", ["refused role", "closed port", "bad percent-encoding", "password in query"]
)
@pytest.mark.parametrize("debug", [False, True], ids=["plain", "debug"])
def test_unreachable_postgres_hides_the_password(
    postgres_uri: str, tmp_path: Path, case: str, debug: bool
) -> None:
    password = PASSWORD
    if case == "refused role":
        # The test server trusts every login, so a role that does not exist stands for
        # credentials the server refuses.
        uri = _with_password(postgres_uri, password, user="nobody_sqlml")
    elif case == "closed port":
        uri = f"postgresql://ml:{password}@127.0.0.1:{_closed_port()}/ml"
    elif case == "bad percent-encoding":
        password = "hunter%zz2"  # libpq quotes the bad token in its error
        uri = _with_password(postgres_uri, password)
    else:
        uri = f"postgresql://ml@127.0.0.1:{_closed_port()}/ml?password={password}"
    flags = ["--debug"] if debug else []
    catalog = run("models", "--catalog", uri, *flags, cwd=tmp_path)
    assert catalog.returncode == 1
    assert "cannot open catalog" in catalog.stderr
    shown = catalog.stdout + catalog.stderr
    assert password not in shown, shown
    assert MASK in shown
    source = run("sql", "SELECT 1", "--postgres", uri, *flags, cwd=tmp_path)
    assert source.returncode == 1
    assert "PostgreSQL source" in source.stderr
    shown = source.stdout + source.stderr
    assert password not in shown, shown
    assert MASK in shown


def test_an_unsupported_conninfo_catalog_hides_the_password(tmp_path: Path) -> None:
    conninfo = f"host=127.0.0.1 port={_closed_port()} user=ml password='{PASSWORD}'"
    result = run("models", "--catalog", conninfo, cwd=tmp_path)
    assert result.returncode == 1
    assert "unsupported catalog URI" in result.stderr
    _assert_hidden(result)


@pytest.mark.parametrize(
    "conninfo",
    [
        "host=db user=ada password=secret dbname=shop",
        "host = db password = 'se cr\\'et' port=5432",
        "password=a\\ b host=x",
        "sslpassword=key-pass host=x password=''",
    ],
)
def test_conninfo_reading_agrees_with_libpq(conninfo: str) -> None:
    """The redaction's conninfo reader sees the same keys and values as libpq."""
    ours = {key: value for key, _, _, value in _conninfo_items(conninfo)}
    assert ours == psycopg.conninfo.conninfo_to_dict(conninfo)
    redacted = redact_uri(conninfo)
    secrets = [v for k, v in ours.items() if k in ("password", "sslpassword") and v]
    assert secrets
    assert all(secret not in redacted for secret in secrets)
    kept = psycopg.conninfo.conninfo_to_dict(redacted)
    assert {k: v for k, v in kept.items() if v != MASK} == {
        k: v for k, v in ours.items() if k not in ("password", "sslpassword")
    }
    assert redact_uri(redacted) == redacted
    assert scrub(f"connecting with {conninfo}: refused", conninfo).count(MASK) >= 1


def test_scrub_hides_uris_in_free_text() -> None:
    text = (
        "could not reach postgresql://ada:p%40ss@db:5432/ml?sslmode=require&password=q1w2, "
        "then postgres://bob:top@db/x."
    )
    scrubbed = scrub(text)
    for secret in ("p%40ss", "q1w2", "top"):
        assert secret not in scrubbed
    assert "postgresql://ada:***@db:5432/ml?sslmode=require&password=***, " in scrubbed
    assert scrubbed.endswith("postgres://bob:***@db/x.")
    # A piece of a known URI's password is hidden too, raw or decoded.
    assert scrub("token 'p@ss' is bad", "postgresql://ada:p%40ss@db/ml") == "token '***' is bad"


# --------------------------------------------------------------------------- 2. scripts


def test_sql_prints_every_statements_result(cli: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = (
        "CREATE TABLE t AS SELECT range AS x, range * 2.0 AS y FROM range(60); "
        "INSERT INTO t VALUES (1000, 2000.0); "
        "SELECT count(*) AS n FROM t; "
        "CREATE MODEL m OPTIONS (task = 'regression', target = 'y') AS SELECT * FROM t; "
        "DROP MODEL m; "
        "DROP TABLE t"
    )
    assert main(["sql", script]) == 0
    out = capsys.readouterr().out
    blocks = out.strip("\n").split("\n\n")
    assert len(blocks) == 6, out
    assert blocks[0] == "CREATE TABLE 60"
    assert blocks[1] == "INSERT 1"
    assert blocks[2].splitlines()[0].strip() == "n"
    assert blocks[2].splitlines()[2].strip() == "61"
    trained = [c.strip() for c in blocks[3].splitlines()[2].split("|")]
    assert trained[:2] == ["m", "1"]
    assert "all versions" in blocks[4]
    assert blocks[5] == "DROP TABLE"


# --------------------------------------------------------------------------- 3. formats


QUERY = "SELECT 1 AS a, 'x' AS b UNION ALL SELECT 2, 'y|z' ORDER BY a"


def test_output_format_follows_the_extension(cli: Path) -> None:
    for name in ("out.csv", "out.tsv", "out.json", "out.md", "out.markdown"):
        assert main(["sql", QUERY, "--output", name]) == 0
    with open(cli / "out.csv", newline="") as f:
        assert list(csv.reader(f)) == [["a", "b"], ["1", "x"], ["2", "y|z"]]
    with open(cli / "out.tsv", newline="") as f:
        assert list(csv.reader(f, delimiter="\t")) == [["a", "b"], ["1", "x"], ["2", "y|z"]]
    lines = (cli / "out.json").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [{"a": 1, "b": "x"}, {"a": 2, "b": "y|z"}]
    markdown = (cli / "out.md").read_text()
    assert markdown.splitlines() == [
        "| a | b |",
        "| ---: | --- |",
        "| 1 | x |",
        "| 2 | y\\|z |",
    ]
    assert (cli / "out.markdown").read_text() == markdown


def test_an_explicit_format_wins_over_the_extension(
    cli: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sql", QUERY, "--output", "out.csv", "--format", "json"]) == 0
    assert json.loads((cli / "out.csv").read_text().splitlines()[0]) == {"a": 1, "b": "x"}
    assert main(["sql", QUERY, "--format", "tsv"]) == 0
    assert capsys.readouterr().out.splitlines() == ["a\tb", "1\tx", "2\ty|z"]
    assert main(["sql", QUERY, "--output", "notes.txt"]) == 0
    assert "(2 rows)" in (cli / "notes.txt").read_text()


# --------------------------------------------------------------------------- 4. pipes


def _closed_pipe(*args: str, cwd: Path) -> tuple[int, str]:
    """Run ``sqlml ARGS`` with its stdout a pipe that nobody reads any more."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SQLML_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "sqlml.cli", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    process.stdout.close()  # the reader goes away before the command writes a byte
    with process.stderr:
        stderr = process.stderr.read()
    return process.wait(timeout=120), stderr


def test_a_closed_pipe_ends_quietly_with_status_141(tmp_path: Path) -> None:
    catalog = f"sqlite:///{tmp_path / 'c.db'}"
    with sqlml.connect(catalog=catalog) as session:
        session.sql("CREATE TABLE t AS SELECT range AS x, range * 3.0 AS y FROM range(50)")
        session.sql("CREATE MODEL m OPTIONS (task = 'regression', target = 'y') AS SELECT * FROM t")
    for args in (
        ("sql", "SELECT * FROM range(100000)", "--format", "csv"),
        ("sql", "SELECT 1 AS a; SELECT 2 AS b"),
        ("compile", "m", "--catalog", catalog),
    ):
        status, stderr = _closed_pipe(*args, cwd=tmp_path)
        assert (status, stderr) == (141, ""), args


# --------------------------------------------------------------------------- 5. cells


@pytest.mark.parametrize("engine", ["duckdb", "datafusion"])
def test_multi_line_cells_keep_the_borders_aligned(
    cli: Path, capsys: pytest.CaptureFixture[str], engine: str
) -> None:
    query = "EXPLAIN SELECT x FROM (SELECT 1 AS x UNION ALL SELECT 2) WHERE x > 1"
    assert main(["--engine", engine, "sql", query]) == 0
    lines = capsys.readouterr().out.splitlines()
    table = [line for line in lines if not re.fullmatch(r"\(\d+ rows\)", line)]
    assert len(table) > 3, lines  # the plan takes several lines
    border = table[0].index(" | ")
    for line in table[2:]:
        assert line[border : border + 2] == " |", (line, lines)
    rule = table[1]
    assert rule[border : border + 3] == "-+-"


# --------------------------------------------------------------------------- 6. timer


def test_timer_prints_each_statements_time(cli: Path, capsys: pytest.CaptureFixture[str]) -> None:
    started = time.perf_counter()
    assert main(["sql", "SELECT 1 AS a; SELECT sum(range) AS s FROM range(100000)", "--timer"]) == 0
    wall_ms = (time.perf_counter() - started) * 1000
    captured = capsys.readouterr()
    times = [float(t) for t in re.findall(r"^Time: (\d+\.\d{3}) ms$", captured.err, re.M)]
    assert len(times) == 2, captured.err
    assert all(t >= 0 for t in times)
    assert sum(times) <= wall_ms  # each statement's time is a part of the whole run
    assert "Time:" not in captured.out
    assert main(["sql", "SELECT 1 AS a"]) == 0
    assert "Time:" not in capsys.readouterr().err


def test_training_notices_are_printed_as_notes(tmp_path: Path) -> None:
    """What training decides for the user (a task inferred from an integer target, a text
    feature that looks like an id, no holdout) is said on stderr, once each."""
    script = (
        "CREATE TABLE g AS SELECT 'u' || i AS id, i % 7 * 1.5 AS x, i % 3 AS grade "
        "FROM range(600) r(i); "
        "CREATE MODEL g OPTIONS (target = 'grade', test_size = 0) AS SELECT * FROM g"
    )
    result = run("sql", script, "--catalog", f"sqlite:///{tmp_path / 'c.db'}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    notes = [line for line in result.stderr.splitlines() if line.startswith("note: ")]
    assert len(notes) == 3, result.stderr
    assert "task = 'classification' was inferred" in notes[0]
    assert "'id' has 600 distinct values" in notes[1]
    assert "OPTIONS (exclude = 'id')" in notes[1]
    assert "test_size = 0, so no rows are held out" in notes[2]
    assert "classification" in result.stdout


def test_a_syntax_error_keeps_its_caret_line(tmp_path: Path) -> None:
    statement = "SELECT predict('m', *) FROM t WHERE"
    result = run("sql", statement, "--catalog", f"sqlite:///{tmp_path / 'c.db'}", cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[0].startswith("error: syntax error at end of input: WHERE needs a condition")
    assert lines[1] == f"LINE 1: {statement}"
    assert lines[2] == " " * (len("LINE 1: ") + len(statement)) + "^"
