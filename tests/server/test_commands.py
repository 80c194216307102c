"""Flight SQL commands beyond queries: GetSchema, type info, keys, session actions, updates,
flightsql-dbapi's SQLAlchemy URIs, and the server's configuration (--init, SQLML_AUTH, expiry).

The tests on ``server`` run on every engine x catalog cell."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.flight as flight
import pyarrow.parquet as pq
import pytest

from sqlml.server import protocol as pb
from sqlml.server import schemas
from sqlml.server.state import ServerOptions
from tests.conftest import Cell
from tests.test_cli import run

from .conftest import (
    PASSWORD,
    USER,
    Server,
    adbc,
    in_process_server,
    query,
    start_server,
    stop_server,
)

Connect = Callable[..., Any]


class Raw:
    """A pyarrow Flight client logged in as one client session."""

    def __init__(self, uri: str, user: str = USER, password: str = PASSWORD) -> None:
        self.client = flight.connect(uri)
        token = self.client.authenticate_basic_token(user, password)
        self.options = flight.FlightCallOptions(headers=[token])

    def descriptor(self, message: Any) -> flight.FlightDescriptor:
        return flight.FlightDescriptor.for_command(pb.pack_bytes(message))

    def schema(self, message: Any) -> pa.Schema:
        return self.client.get_schema(self.descriptor(message), self.options).schema

    def fetch(self, message: Any) -> tuple[pa.Schema, pa.Table]:
        info = self.client.get_flight_info(self.descriptor(message), self.options)
        table = self.client.do_get(info.endpoints[0].ticket, self.options).read_all()
        return info.schema, table

    def action(self, name: str, body: bytes = b"") -> list[bytes]:
        results = self.client.do_action(flight.Action(name, body), self.options)
        return [result.body.to_pybytes() for result in results]

    def close(self) -> None:
        self.client.close()


@pytest.fixture
def raw(server: Server) -> Iterator[Raw]:
    client = Raw(server.uri)
    yield client
    client.close()


def test_get_schema_of_queries_without_running_them(raw: Raw, server: Server) -> None:
    raw.fetch(pb.CommandStatementQuery(query="CREATE TABLE gs (a INTEGER, b VARCHAR)"))
    select = pb.CommandStatementQuery(query="SELECT a, b, 1.5::DOUBLE AS c FROM gs")
    schema = raw.schema(select)
    # Each engine's own types: DataFusion stores VARCHAR as Utf8View and knows a literal
    # is never null; DuckDB calls every result column nullable.
    expected = {
        "duckdb": pa.schema([("a", pa.int32()), ("b", pa.string()), ("c", pa.float64())]),
        "datafusion": pa.schema(
            [("a", pa.int32()), ("b", pa.string_view()), pa.field("c", pa.float64(), False)]
        ),
    }[server.engine]
    assert schema == expected
    assert raw.fetch(select)[1].schema == schema  # what running it then sends
    # a statement with effects is not run to learn its schema
    assert raw.schema(pb.CommandStatementQuery(query="DROP TABLE gs")) == pa.schema([])
    assert raw.fetch(pb.CommandStatementQuery(query="SELECT count(*) AS n FROM gs"))[1].num_rows


def test_get_schema_of_prepared_and_metadata_commands(raw: Raw, server: Server) -> None:
    request = pb.ActionCreatePreparedStatementRequest(query="SELECT 42 AS answer, 'x' AS s")
    [body] = raw.action("CreatePreparedStatement", pb.pack_bytes(request))
    created = pb.unpack(body)
    dataset = pa.ipc.read_schema(pa.py_buffer(created.dataset_schema))
    # Each engine's own types: DuckDB's integer literal is an INTEGER, DataFusion's an
    # Int64, and DataFusion knows literals are never null.
    expected = {
        "duckdb": pa.schema([("answer", pa.int32()), ("s", pa.string())]),
        "datafusion": pa.schema(
            [pa.field("answer", pa.int64(), False), pa.field("s", pa.string(), False)]
        ),
    }[server.engine]
    assert dataset == expected
    handle = created.prepared_statement_handle
    command = pb.CommandPreparedStatementQuery(prepared_statement_handle=handle)
    assert raw.schema(command) == dataset
    info_schema, table = raw.fetch(command)
    assert info_schema == table.schema == dataset
    assert table.to_pylist() == [{"answer": 42, "s": "x"}]
    for message, expected in [
        (pb.CommandGetTables(include_schema=True), schemas.TABLES_WITH_SCHEMA_SCHEMA),
        (pb.CommandGetTables(), schemas.TABLES_SCHEMA),
        (pb.CommandGetCatalogs(), schemas.CATALOGS_SCHEMA),
        (pb.CommandGetSqlInfo(), schemas.SQL_INFO_SCHEMA),
        (pb.CommandGetXdbcTypeInfo(), schemas.XDBC_TYPE_INFO_SCHEMA),
    ]:
        assert raw.schema(message) == expected
        assert raw.fetch(message)[0] == expected


def test_xdbc_type_info_and_empty_keys(raw: Raw) -> None:
    schema, types = raw.fetch(pb.CommandGetXdbcTypeInfo())
    assert schema == types.schema == schemas.XDBC_TYPE_INFO_SCHEMA
    assert {"BIGINT", "DOUBLE", "VARCHAR", "BOOLEAN", "DATE"} <= set(types["type_name"].to_pylist())
    _, bigint = raw.fetch(pb.CommandGetXdbcTypeInfo(data_type=-5))
    assert bigint["type_name"].to_pylist() == ["BIGINT"]
    for message, expected in [
        (pb.CommandGetPrimaryKeys(table="t"), schemas.PRIMARY_KEYS_SCHEMA),
        (pb.CommandGetExportedKeys(table="t"), schemas.KEYS_SCHEMA),
        (pb.CommandGetImportedKeys(table="t"), schemas.KEYS_SCHEMA),
        (pb.CommandGetCrossReference(pk_table="a", fk_table="b"), schemas.KEYS_SCHEMA),
    ]:
        schema, table = raw.fetch(message)
        assert schema == table.schema == expected
        assert table.num_rows == 0


def test_session_options_through_adbc(connect: Connect) -> None:
    from adbc_driver_flightsql import ConnectionOptions

    con = connect()
    prefix = ConnectionOptions.OPTION_SESSION_OPTION_PREFIX.value
    con.adbc_connection.set_options(**{f"{prefix}report.title": "churn"})
    options = json.loads(
        con.adbc_connection.get_option(ConnectionOptions.OPTION_SESSION_OPTIONS.value)
    )
    assert options == {"report.title": "churn"}


@pytest.mark.notyet(
    "DataFusion has no temporary tables ('Temporary tables not supported')",
    engines=["datafusion"],
)
def test_close_session_drops_temp_tables(server: Server) -> None:
    raw = Raw(server.uri)
    try:
        raw.fetch(pb.CommandStatementQuery(query="CREATE TEMP TABLE gone AS SELECT 1 AS x"))
        assert raw.fetch(pb.CommandStatementQuery(query="SELECT x FROM gone"))[1].num_rows == 1
        [body] = raw.action("CloseSession", pb.ActionCloseSessionRequest().SerializeToString())
        assert pb.ActionCloseSessionResult.FromString(body).status == pb.SESSION_CLOSED
        with pytest.raises(flight.FlightUnauthenticatedError):  # its token went with it
            raw.fetch(pb.CommandStatementQuery(query="SELECT 1"))
    finally:
        raw.close()
    again = Raw(server.uri)
    try:
        with pytest.raises(pa.ArrowKeyError, match="gone"):  # NOT_FOUND: a new session
            again.fetch(pb.CommandStatementQuery(query="SELECT x FROM gone"))
    finally:
        again.close()


@pytest.mark.parametrize(
    "placeholders",
    [
        pytest.param(
            "?, ?",
            id="qmark",
            marks=pytest.mark.notimpl(
                "`?` parameters are not rewritten to DataFusion's `$1` placeholders "
                '(DataFusion: "Can\'t parse placeholder: ?")',
                engines=["datafusion"],
            ),
        ),
        pytest.param("$1, $2", id="numbered"),
    ],
)
def test_updates_report_row_counts(connect: Connect, placeholders: str) -> None:
    con = connect()
    table = f"upd_{'qmark' if '?' in placeholders else 'numbered'}"
    with con.cursor() as cur:
        cur.adbc_statement.set_sql_query(f"CREATE TABLE {table} (a INTEGER, b VARCHAR)")
        cur.adbc_statement.execute_update()  # CommandStatementUpdate
        cur.adbc_statement.set_sql_query(f"INSERT INTO {table} VALUES (1, 'x'), (2, 'y')")
        assert cur.adbc_statement.execute_update() == 2
        # CommandPreparedStatementUpdate, its parameters sent with DoPut
        rows = [(3, "z"), (4, "w"), (5, "v")]
        cur.executemany(f"INSERT INTO {table} VALUES ({placeholders})", rows)
        assert cur.rowcount == 3
    assert query(con, f"SELECT count(*) AS n FROM {table}").to_pylist() == [{"n": 5}]


@pytest.mark.notyet(
    "DataFusion (55) inserts `$n` parameter values with their own types (Int64, Utf8), not "
    "the columns' (INTEGER, VARCHAR), so the table cannot be read back ('It is not possible "
    "to concatenate arrays of different data types (Int32, Int64)')",
    engines=["datafusion"],
)
def test_prepared_inserts_read_back(connect: Connect) -> None:
    con = connect()
    query(con, "CREATE TABLE ins (a INTEGER, b VARCHAR)")
    query(con, "INSERT INTO ins VALUES (1, 'x')")
    with con.cursor() as cur:
        cur.executemany("INSERT INTO ins VALUES ($1, $2)", [(2, "y"), (3, "z")])
    rows = query(con, "SELECT a, b FROM ins ORDER BY a").to_pylist()
    assert rows == [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}, {"a": 3, "b": "z"}]


# --- the server's configuration: --init and SQLML_AUTH (a process), expiry (in-process) -------


@pytest.fixture(scope="module")
def configured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``sqlml serve --init`` with users from SQLML_AUTH. One cell (DuckDB, SQLite): the
    flags are the server's, not an engine's, and the init file is DuckDB SQL (``read_parquet``
    of a file in an allowed ``--data-dir``)."""
    tmp = tmp_path_factory.mktemp("configured")
    data = tmp / "data"
    data.mkdir()
    pq.write_table(pa.table({"id": [1, 2, 3], "name": ["a", "b", "c"]}), data / "people.parquet")
    (tmp / "init.sql").write_text(
        f"CREATE VIEW people AS SELECT * FROM read_parquet('{data / 'people.parquet'}');"
    )
    # the view reads its file when queried, as the client: the server must allow it
    running = start_server(
        tmp,
        "--init",
        str(tmp / "init.sql"),
        "--data-dir",
        str(data),
        env={"SQLML_AUTH": "ann:one,bob:two"},
    )
    yield running
    stop_server(running)


def _login(uri: str, user: str, password: str) -> Any:
    return adbc.connect(uri, db_kwargs={"username": user, "password": password}, autocommit=True)


def test_init_file_and_auth_from_environment(configured: Server) -> None:
    for user, password in [("ann", "one"), ("bob", "two")]:
        con = _login(configured.uri, user, password)
        try:
            rows = query(con, "SELECT name FROM people ORDER BY id").to_pylist()
            assert rows == [{"name": "a"}, {"name": "b"}, {"name": "c"}]
        finally:
            con.close()
    with pytest.raises(adbc.Error, match=r"(?i)unauthenticated"):
        query(_login(configured.uri, "ann", "two"), "SELECT 1")


def test_expiry_flags_are_checked(tmp_path: Path) -> None:
    result = run("serve", "--port", "0", "--prepared-ttl", "0", cwd=tmp_path)
    assert result.returncode == 1
    assert "--prepared-ttl: expected a positive number of seconds, got 0.0" in result.stderr


TTL = 60.0


def test_expired_ticket_and_prepared_statement(cell: Cell) -> None:
    """A result not fetched within the ticket TTL, and a prepared statement unused for the
    prepared TTL, are gone once the server sweeps (at a time past both); the client's
    session is not (the session TTL is longer), so the errors are about them alone."""
    options = ServerOptions(
        engine=cell.engine, catalog=cell.catalog_uri, ticket_ttl=TTL, prepared_ttl=TTL
    )
    with in_process_server(options, {"ann": "one", "bob": "two"}) as server:
        uri = f"grpc://127.0.0.1:{server.port}"
        raw = Raw(uri, "ann", "one")
        con = _login(uri, "bob", "two")
        try:
            descriptor = raw.descriptor(pb.CommandStatementQuery(query="SELECT 1 AS x"))
            fetched = raw.client.get_flight_info(descriptor, raw.options)
            left = raw.client.get_flight_info(descriptor, raw.options)
            with con.cursor() as cur:
                cur.execute("SELECT 2 AS y")
                assert cur.fetchall() == [(2,)]
                cur.execute("SELECT 2 AS y")  # the DB-API reuses its prepared statement
                assert cur.fetchall() == [(2,)]
                server.sweep(now=time.monotonic() + TTL / 2)  # not yet expired
                table = raw.client.do_get(fetched.endpoints[0].ticket, raw.options).read_all()
                assert table.to_pylist() == [{"x": 1}]
                server.sweep(now=time.monotonic() + TTL + 1)
                with pytest.raises(pa.ArrowKeyError, match="unknown or expired ticket"):
                    raw.client.do_get(left.endpoints[0].ticket, raw.options).read_all()
                with pytest.raises(
                    adbc.ProgrammingError, match="expired prepared statement"
                ) as info:
                    cur.execute("SELECT 2 AS y")
                assert info.value.status_code == 3  # NOT_FOUND
            # the sessions live on: new statements run
            assert raw.fetch(pb.CommandStatementQuery(query="SELECT 3 AS z"))[1].to_pylist() == [
                {"z": 3}
            ]
            assert query(con, "SELECT 4 AS w").to_pylist() == [{"w": 4}]
        finally:
            con.close()
            raw.close()


def test_sqlalchemy_uris_of_flightsql_dbapi(server: Server) -> None:
    """``datafusion://`` finds flightsql-dbapi's dialect through its entry point; once the
    dialect is loaded (Superset loads every installed one), ``datafusion+flightsql://`` too."""
    import flightsql  # noqa: F401  (its dialects register on import)
    import sqlalchemy

    for scheme in ("datafusion", "datafusion+flightsql"):
        engine = sqlalchemy.create_engine(
            f"{scheme}://{USER}:{PASSWORD}@127.0.0.1:{server.port}?insecure=true"
        )
        try:
            with engine.connect() as con:
                rows = con.execute(sqlalchemy.text("SELECT 41 + 1 AS answer")).fetchall()
            assert [tuple(row) for row in rows] == [(42,)]
        finally:
            engine.dispose()
