"""Results stream from the engine to the client in record batches; clients run in parallel."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.flight as flight
import pytest

import sqlml
from sqlml.server import protocol as pb

from .conftest import PASSWORD, USER, Server, adbc, query, start_server, stop_server

ROWS = 5_000_000
BIG = f"SELECT range AS i, range * 2 AS j FROM range({ROWS})"
RESULT_BYTES = ROWS * 2 * 8  # two int64 columns: 80 MB as Arrow


@pytest.fixture(scope="module")
def stream_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(tmp_path_factory.mktemp("stream"), "--auth", f"{USER}:{PASSWORD}")
    yield running
    stop_server(running)


def _connect(server: Server) -> Any:
    return adbc.connect(
        server.uri, db_kwargs={"username": USER, "password": PASSWORD}, autocommit=True
    )


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


class PeakRss:
    """The highest resident set size of a process while the block runs, in bytes: its
    VmHWM after resetting it (clear_refs 5), and VmRSS sampled every 5 ms."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.before = 0
        self.peak = 0
        self._done = threading.Event()

    def __enter__(self) -> PeakRss:
        self.before = _status_kb(self.pid, "VmRSS") * 1024
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._done.wait(0.005):
            self.peak = max(self.peak, _status_kb(self.pid, "VmRSS") * 1024)

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()
        self.peak = max(self.peak, _status_kb(self.pid, "VmHWM") * 1024)

    @property
    def growth(self) -> int:
        return self.peak - self.before


def _count_rows(cur: Any, sql: str) -> int:
    cur.execute(sql)
    reader = cur.fetch_record_batch()
    return sum(batch.num_rows for batch in reader)


def test_large_result_streams_in_bounded_memory(stream_server: Server) -> None:
    """An 80 MB result grows the server by far less than a materialised copy would.

    The bound is taken against a baseline measured in the same test, on the same server
    (what a loaded machine's allocator keeps is not a constant): the growth while streaming
    a result a tenth the size. A server holding the whole result would grow by most of its
    80 MB over that baseline.
    """
    con = _connect(stream_server)
    try:
        with con.cursor() as cur:
            assert _count_rows(cur, "SELECT 1 AS warm_up") == 1
            with PeakRss(stream_server.process.pid) as small:
                assert _count_rows(cur, BIG.replace(str(ROWS), str(ROWS // 10))) == ROWS // 10
            with PeakRss(stream_server.process.pid) as rss:
                assert _count_rows(cur, BIG) == ROWS
    finally:
        con.close()
    assert rss.growth < small.growth + RESULT_BYTES / 2, (
        f"server grew {rss.growth / 1e6:.0f} MB streaming {RESULT_BYTES / 1e6:.0f} MB, "
        f"{small.growth / 1e6:.0f} MB streaming a tenth of it"
    )


def test_wide_rows_go_out_in_batches_clients_accept(stream_server: Server) -> None:
    # 131,072 rows of 500 characters are a 65 MB engine batch; gRPC clients refuse
    # messages over 16 MiB, so the server sends it in slices.
    with _connect(stream_server) as con, con.cursor() as cur:
        cur.execute("SELECT range AS i, repeat('x', 500) AS s FROM range(300000)")
        batches = list(cur.fetch_record_batch())
    assert sum(batch.num_rows for batch in batches) == 300_000
    assert max(batch.nbytes for batch in batches) <= 9 * 1024 * 1024
    assert batches[-1].column("s")[-1].as_py() == "x" * 500


def test_closing_a_stream_midway_frees_the_session(stream_server: Server) -> None:
    con = _connect(stream_server)
    try:
        cur = con.cursor()
        cur.execute(BIG + " -- closed early")
        reader = cur.fetch_record_batch()
        assert reader.read_next_batch().num_rows > 0
        cur.close()
        # the session is free: the next statement runs, on the same connection
        assert query(con, "SELECT 42 AS answer").to_pylist() == [{"answer": 42}]
    finally:
        con.close()
    deadline = time.monotonic() + 10
    while "status=cancelled" not in stream_server.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    [line] = [line for line in stream_server.log().splitlines() if "-- closed early" in line]
    assert "status=cancelled" in line


def test_a_statement_during_an_open_stream_gets_the_session(stream_server: Server) -> None:
    """A second statement on a connection whose first result is still streaming runs;
    the first result is read to the end from memory."""
    con = _connect(stream_server)
    try:
        first, second = con.cursor(), con.cursor()
        first.execute("SELECT range AS i FROM range(1000000)")
        assert query(con, "SELECT 7 AS x").to_pylist() == [{"x": 7}]
        assert first.fetch_arrow_table().num_rows == 1_000_000
        first.close()
        second.close()
    finally:
        con.close()


def test_clients_are_served_in_parallel(stream_server: Server) -> None:
    """While one client's result is open mid-stream, another client's statements run."""
    slow, other = _connect(stream_server), _connect(stream_server)
    try:
        with slow.cursor() as cur:
            cur.execute(BIG)
            reader = cur.fetch_record_batch()
            reader.read_next_batch()
            assert query(other, "SELECT 1 + 1 AS two").to_pylist() == [{"two": 2}]
            assert sum(b.num_rows for b in reader) > 0
    finally:
        slow.close()
        other.close()


def test_eight_concurrent_clients_predict_correctly(stream_server: Server) -> None:
    data = (
        "SELECT range AS id, range % 7 AS rooms, (range % 7) * 10.0 + range % 3 AS price "
        "FROM range({n})"
    )
    trainer = _connect(stream_server)
    try:
        query(
            trainer,
            f"CREATE MODEL par OPTIONS (target = 'price', exclude = 'id') AS {data}".format(n=300),
        )
    finally:
        trainer.close()
    sql = f"SELECT id, predict('par', *) AS p FROM ({data}) ORDER BY id"
    sizes = [1000 + 1000 * k for k in range(8)]
    with sqlml.connect(catalog=stream_server.catalog) as local:
        expected = {n: local.sql(sql.format(n=n)) for n in sizes}
    results: dict[int, pa.Table] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(len(sizes))

    def client(n: int) -> None:
        try:
            con = _connect(stream_server)
            try:
                start.wait(timeout=30)
                for _ in range(3):
                    results[n] = query(con, sql.format(n=n))
            finally:
                con.close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(n,)) for n in sizes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    for n in sizes:
        assert results[n].equals(expected[n]), n


def test_sigterm_during_a_stream_exits_promptly(tmp_path: Path) -> None:
    server = start_server(tmp_path, "--auth", f"{USER}:{PASSWORD}")
    client = flight.connect(server.uri)
    try:
        options = flight.FlightCallOptions(
            headers=[client.authenticate_basic_token(USER, PASSWORD)]
        )
        command = pb.CommandStatementQuery(query="SELECT range AS i FROM range(50000000)")
        info = client.get_flight_info(
            flight.FlightDescriptor.for_command(pb.pack_bytes(command)), options
        )
        reader = client.do_get(info.endpoints[0].ticket, options)
        reader.read_chunk()  # the stream is open; the client reads no further
        started = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=20) == 0
        assert time.monotonic() - started < 15
    finally:
        client.close()
        log = stop_server(server)
    assert "sqlml serve: stopped" in log
