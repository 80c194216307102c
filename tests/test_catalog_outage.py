"""Predicting while the PostgreSQL catalog is down, and recovering when it is back.

Each test starts a private PostgreSQL server of its own (the shared test server must not
be stopped), so it can stop it (``pg_ctl stop -m immediate``, as a crash would) and start
it again.
"""

from __future__ import annotations

import glob
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pyarrow as pa
import pytest

import sqlml
from sqlml.catalog import open_catalog
from sqlml.errors import CatalogUnavailable
from sqlml.models import CATALOG_GRACE_ENV

pytestmark = pytest.mark.postgres

#: The targets: a loaded model answers within this while the catalog is down...
PREDICT_TARGET = 0.1
#: ...and a call that needs the catalog fails within this.
FAIL_TARGET = 1.0
#: What the tests assert, with room for a busy machine (the figures are printed).
MARGIN = 10


def _bindir() -> str | None:
    """Where initdb, pg_ctl and postgres are, found as scripts/with-postgres.sh does."""

    def has(d: str | None) -> bool:
        return bool(d) and all(
            os.access(os.path.join(str(d), b), os.X_OK) for b in ("initdb", "pg_ctl", "postgres")
        )

    if "PG_BINDIR" in os.environ:
        return os.environ["PG_BINDIR"] if has(os.environ["PG_BINDIR"]) else None
    if shutil.which("pg_config"):
        found = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
        if has(found.stdout.strip()):
            return found.stdout.strip()
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda d: int(d.split("/")[-2] or 0)
    )
    if versions and has(versions[-1]):
        return versions[-1]
    initdb = shutil.which("initdb")
    return os.path.dirname(initdb) if initdb and has(os.path.dirname(initdb)) else None


class PrivateServer:
    """A throwaway PostgreSQL cluster on a free port of 127.0.0.1."""

    def __init__(self, bindir: str, directory: Path) -> None:
        self.bindir = bindir
        self.directory = directory
        self.data = directory / "data"
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.uri = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")

    def _run(self, program: str, *args: str) -> None:
        command = [os.path.join(self.bindir, program), *args]
        if os.geteuid() == 0:  # the server refuses to run as root
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, cwd=self.directory, capture_output=True, text=True)
        assert done.returncode == 0, (command, done.stdout, done.stderr)

    def start(self) -> None:
        options = (
            f"-h 127.0.0.1 -p {self.port} -k {self.directory} -c fsync=off -c full_page_writes=off"
        )
        log = str(self.directory / "postgres.log")
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", log, "-w", "-t", "60", "start", "-o", options
        )

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "-t", "60", "stop")


@pytest.fixture
def server() -> Iterator[PrivateServer]:
    bindir = _bindir()
    if bindir is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but no PostgreSQL server binaries were found", pytrace=False)
        pytest.skip("needs the PostgreSQL server binaries (initdb, pg_ctl, postgres)")
    # Not under pytest's tmp_path: the server's user must be able to reach its directory.
    directory = Path(tempfile.mkdtemp(prefix="sqlml-outage-"))
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres")
    try:
        found = PrivateServer(bindir, directory)
        found.start()
        try:
            yield found
        finally:
            if (found.data / "postmaster.pid").exists():
                found.stop()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def catalog_uri(server: PrivateServer) -> str:
    """A fresh, migrated catalog database on the private server (a new name each time,
    so nothing remembered of another test's catalog applies)."""
    dbname = f"sqlml_outage_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server.uri, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {dbname}")
    uri = server.uri.rsplit("/", 1)[0] + "/" + dbname
    with open_catalog(uri, migrate=True):
        pass
    return uri


def data() -> pa.Table:
    x = [float(i % 97) for i in range(2000)]
    return pa.table({"x": x, "z": [float(i % 13) for i in range(2000)], "y": [v * 2 for v in x]})


def timed(call: Callable[[], object]) -> tuple[float, object]:
    """How long ``call`` took, and what it returned or the CatalogUnavailable it raised."""
    start = time.perf_counter()
    try:
        result = call()
    except CatalogUnavailable as exc:
        result = exc
    return time.perf_counter() - start, result


def predictions(session: sqlml.Session, ref: str) -> list[float]:
    return session.sql(f"SELECT predict('{ref}', *) AS p FROM t").column("p").to_pylist()


CREATE = "CREATE MODEL {} OPTIONS (task = 'regression', target = 'y') AS SELECT * FROM t"


@pytest.mark.parametrize("engine", ["duckdb", "datafusion"])
def test_loaded_models_keep_predicting_while_the_catalog_is_down(
    engine: str,
    server: PrivateServer,
    catalog_uri: str,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(CATALOG_GRACE_ENV, raising=False)
    with sqlml.connect(engine=engine, catalog=catalog_uri) as session:
        session.register("t", data())
        session.sql(CREATE.format("m"))
        session.sql(CREATE.format("never_loaded"))
        session.sql("DEPLOY MODEL m VERSION 1 AS production")
        expected = predictions(session, "m@1")
        assert predictions(session, "m") == expected
        assert predictions(session, "m@production") == expected
        baseline, _ = timed(lambda: predictions(session, "m@1"))
        figures = [f"{engine}: predict('m@1') with the catalog up: {baseline * 1000:.1f} ms"]

        caplog.set_level(logging.DEBUG)
        server.stop()
        capfd.readouterr()

        # A pinned version that is loaded answers, the first call after the crash included.
        down, result = timed(lambda: predictions(session, "m@1"))
        figures.append(f"predict('m@1') with the catalog down: {down * 1000:.1f} ms")
        assert result == expected
        assert down < PREDICT_TARGET * MARGIN
        for _ in range(3):
            again, result = timed(lambda: predictions(session, "m@1"))
            assert result == expected
            assert again < PREDICT_TARGET * MARGIN

        # A name or an alias answers as it last resolved, within the grace period.
        assert predictions(session, "m") == expected
        assert predictions(session, "m@production") == expected

        # What was never resolved here fails fast, and so does training.
        failed, error = timed(lambda: predictions(session, "never_loaded"))
        figures.append(f"predict('never_loaded') failed in {failed * 1000:.1f} ms")
        assert isinstance(error, CatalogUnavailable)
        assert failed < FAIL_TARGET * MARGIN
        failed, error = timed(lambda: session.sql(CREATE.format("new_model")))
        figures.append(f"CREATE MODEL failed in {failed * 1000:.1f} ms")
        assert isinstance(error, CatalogUnavailable)
        assert failed < FAIL_TARGET * MARGIN

        # After the breaker's window one call probes the server, and still fails fast.
        time.sleep(2.5)
        failed, error = timed(lambda: session.catalog.get_model("m"))
        figures.append(f"a probing call failed in {failed * 1000:.1f} ms")
        assert isinstance(error, CatalogUnavailable)
        assert failed < FAIL_TARGET * MARGIN
        assert predictions(session, "m@1") == expected

        # Past the grace period a name no longer resolves from memory; a version still does.
        monkeypatch.setenv(CATALOG_GRACE_ENV, "0")
        with pytest.raises(CatalogUnavailable):
            predictions(session, "m")
        assert predictions(session, "m@1") == expected
        monkeypatch.delenv(CATALOG_GRACE_ENV)

        err = capfd.readouterr().err
        with capfd.disabled():
            print("\n" + "; ".join(figures))
        assert "psycopg" not in err, err
        assert "pool" not in err, err
        assert [r for r in caplog.records if r.name.startswith("psycopg")] == []
        sqlml_warnings = [
            r.getMessage()
            for r in caplog.records
            if r.name == "sqlml" and r.levelno >= logging.WARNING
        ]
        memory = [m for m in sqlml_warnings if "serving the models loaded" in m]
        pool = [m for m in sqlml_warnings if "connection pool" in m]
        assert len(memory) == 1, sqlml_warnings
        assert len(pool) == 1, sqlml_warnings

        # The catalog comes back: new work goes through again, without reopening anything.
        server.start()
        deadline = time.monotonic() + 60
        while True:
            try:
                session.sql(CREATE.format("after_outage"))
                break
            except CatalogUnavailable:
                assert time.monotonic() < deadline, "the catalog did not come back"
                time.sleep(0.25)
        assert len(predictions(session, "after_outage")) == 2000
        assert predictions(session, "never_loaded") == predictions(session, "never_loaded@1")
        assert predictions(session, "m") == expected


def test_calls_fail_fast_once_the_catalog_is_found_down(
    server: PrivateServer, catalog_uri: str
) -> None:
    with open_catalog(catalog_uri) as catalog:
        server.stop()
        first, error = timed(lambda: catalog.list_models())
        assert isinstance(error, CatalogUnavailable)
        times = []
        for _ in range(5):
            took, error = timed(lambda: catalog.get_model("anything"))
            assert isinstance(error, CatalogUnavailable)
            assert "failing fast" in str(error)
            times.append(took)
        print(f"first failure {first * 1000:.1f} ms, then {max(times) * 1000:.2f} ms at most")
        assert first < FAIL_TARGET * MARGIN
        assert max(times) < PREDICT_TARGET
