"""A real ``sqlml serve`` process per test module and matrix cell, and ADBC connections to it.

``server`` serves ``module_cell``'s engine and catalog, so a module using it runs on every
engine x catalog cell (cell by cell: one process per module and cell). ``in_process_server``
runs the server on a thread of the test, for tests that drive its state (expiry) directly.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import adbc_driver_flightsql.dbapi as adbc
import pytest

from sqlml.server.rpc import SqlmlFlightServer
from sqlml.server.state import ServerOptions
from tests.conftest import Cell

USER, PASSWORD = "u", "p"


@dataclass
class Server:
    uri: str
    port: int
    catalog: str
    process: subprocess.Popen[str]
    engine: str = "duckdb"
    lines: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None
    """What the server wrote to stderr after it started (read by a thread, so the pipe
    never fills up)."""

    def log(self) -> str:
        return "".join(self.lines)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_server(
    tmp: Path,
    *args: str,
    env: dict[str, str] | None = None,
    engine: str = "duckdb",
    catalog: str | None = None,
) -> Server:
    """Start ``sqlml serve`` on ``engine`` and ``catalog`` (default: a SQLite catalog in
    ``tmp``), with ``args``; return once it listens."""
    catalog = catalog or f"sqlite:///{tmp / 'catalog.db'}"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SQLML_")} | (env or {})
    command = [sys.executable, "-m", "sqlml.cli", "serve", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--engine", engine, "--catalog", catalog, *args],
        cwd=tmp,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        match = re.search(r"listening on (grpc(?:\+tls)?://\S+)", line)
        if match:
            server = Server(match.group(1), port, catalog, process, engine)
            threading.Thread(
                target=_drain, args=(process.stderr, server.lines), daemon=True
            ).start()
            return server
    process.kill()
    raise RuntimeError(f"sqlml serve did not start: {process.stderr.read()}")


def _drain(stream: Any, lines: list[str]) -> None:
    for line in stream:
        lines.append(line)


def stop_server(server: Server) -> str:
    """Stop the server; return everything it wrote to stderr after it started."""
    server.process.terminate()
    server.process.wait(timeout=30)
    if server.reader is not None:
        server.reader.join(timeout=10)
    assert server.process.stderr is not None
    server.process.stderr.close()
    return server.log()


@contextmanager
def in_process_server(
    options: ServerOptions,
    users: Mapping[str, str] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[SqlmlFlightServer]:
    """The Flight SQL server on a thread of this process, on a free port of 127.0.0.1
    (``grpc://127.0.0.1:{server.port}``): its state can be swept at a chosen time, and
    its tokens and login throttling go by ``clock``."""
    running = SqlmlFlightServer("grpc://127.0.0.1:0", options, users, clock=clock)
    thread = threading.Thread(target=running.serve, daemon=True)
    thread.start()
    try:
        yield running
    finally:
        running.shutdown()
        thread.join(timeout=30)
        running.close_sessions()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, module_cell: Cell) -> Iterator[Server]:
    """``sqlml serve`` on the cell's engine and (fresh, migrated) catalog, with auth."""
    running = start_server(
        tmp_path_factory.mktemp(f"server-{module_cell}"),
        "--auth",
        f"{USER}:{PASSWORD}",
        engine=module_cell.engine,
        catalog=module_cell.catalog_uri,
    )
    yield running
    stop_server(running)


@pytest.fixture
def connect(server: Server) -> Iterator[Callable[..., Any]]:
    opened: list[Any] = []

    def open_(username: str = USER, password: str = PASSWORD) -> Any:
        con = adbc.connect(
            server.uri, db_kwargs={"username": username, "password": password}, autocommit=True
        )
        opened.append(con)
        return con

    yield open_
    for con in opened:
        con.close()


def query(con: Any, sql: str, params: Any = None) -> Any:
    with con.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetch_arrow_table()
