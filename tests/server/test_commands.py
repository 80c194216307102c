"""Flight SQL commands beyond queries: GetSchema, type info, keys, session actions, updates,
and the server's configuration (--init, SQLML_AUTH, expiry)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa
import pyarrow.flight as flight
import pyarrow.parquet as pq
import pytest

from sqlml.server import protocol as pb
from sqlml.server import schemas

from .conftest import PASSWORD, USER, Server, adbc, query, start_server, stop_server

Connect = Callable[..., Any]


class Raw:
    """A pyarrow Flight client logged in as one client session."""

    def __init__(self, server: Server, user: str = USER, password: str = PASSWORD) -> None:
        self.client = flight.connect(server.uri)
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
    client = Raw(server)
    yield client
    client.close()


def test_get_schema_of_queries_without_running_them(raw: Raw) -> None:
    raw.fetch(pb.CommandStatementQuery(query="CREATE TABLE gs (a INTEGER, b VARCHAR)"))
    schema = raw.schema(pb.CommandStatementQuery(query="SELECT a, b, 1.5::DOUBLE AS c FROM gs"))
    assert schema == pa.schema([("a", pa.int32()), ("b", pa.string()), ("c", pa.float64())])
    # a statement with effects is not run to learn its schema
    assert raw.schema(pb.CommandStatementQuery(query="DROP TABLE gs")) == pa.schema([])
    assert raw.fetch(pb.CommandStatementQuery(query="SELECT count(*) AS n FROM gs"))[1].num_rows


def test_get_schema_of_prepared_and_metadata_commands(raw: Raw) -> None:
    request = pb.ActionCreatePreparedStatementRequest(query="SELECT 42 AS answer, 'x' AS s")
    [body] = raw.action("CreatePreparedStatement", pb.pack_bytes(request))
    created = pb.unpack(body)
    dataset = pa.ipc.read_schema(pa.py_buffer(created.dataset_schema))
    assert dataset == pa.schema([("answer", pa.int32()), ("s", pa.string())])
    handle = created.prepared_statement_handle
    command = pb.CommandPreparedStatementQuery(prepared_statement_handle=handle)
    assert raw.schema(command) == dataset
    assert raw.fetch(command)[0] == dataset
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


def test_close_session_drops_temp_tables(server: Server) -> None:
    raw = Raw(server)
    try:
        raw.fetch(pb.CommandStatementQuery(query="CREATE TEMP TABLE gone AS SELECT 1 AS x"))
        assert raw.fetch(pb.CommandStatementQuery(query="SELECT x FROM gone"))[1].num_rows == 1
        [body] = raw.action("CloseSession", pb.ActionCloseSessionRequest().SerializeToString())
        assert pb.ActionCloseSessionResult.FromString(body).status == pb.SESSION_CLOSED
        with pytest.raises(flight.FlightUnauthenticatedError):  # its token went with it
            raw.fetch(pb.CommandStatementQuery(query="SELECT 1"))
    finally:
        raw.close()
    again = Raw(server)
    try:
        with pytest.raises(pa.ArrowKeyError, match="gone"):  # NOT_FOUND: a new session
            again.fetch(pb.CommandStatementQuery(query="SELECT x FROM gone"))
    finally:
        again.close()


def test_updates_report_row_counts(connect: Connect) -> None:
    con = connect()
    with con.cursor() as cur:
        cur.adbc_statement.set_sql_query("CREATE TABLE upd (a INTEGER, b VARCHAR)")
        cur.adbc_statement.execute_update()  # CommandStatementUpdate
        cur.adbc_statement.set_sql_query("INSERT INTO upd VALUES (1, 'x'), (2, 'y')")
        assert cur.adbc_statement.execute_update() == 2
        # CommandPreparedStatementUpdate, its parameters sent with DoPut
        cur.executemany("INSERT INTO upd VALUES (?, ?)", [(3, "z"), (4, "w"), (5, "v")])
        assert cur.rowcount == 3
    assert query(con, "SELECT count(*) AS n FROM upd").to_pylist() == [{"n": 5}]


# --- a server configured with --init, SQLML_AUTH and short expiries ---------------------------


@pytest.fixture(scope="module")
def configured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("configured")
    pq.write_table(pa.table({"id": [1, 2, 3], "name": ["a", "b", "c"]}), tmp / "people.parquet")
    (tmp / "init.sql").write_text(
        f"CREATE VIEW people AS SELECT * FROM read_parquet('{tmp / 'people.parquet'}');"
    )
    running = start_server(
        tmp,
        "--init",
        str(tmp / "init.sql"),
        "--ticket-ttl",
        "1",
        "--prepared-ttl",
        "1",
        env={"SQLML_AUTH": "ann:one,bob:two"},
    )
    yield running
    stop_server(running)


def _login(server: Server, user: str, password: str) -> Any:
    return adbc.connect(
        server.uri, db_kwargs={"username": user, "password": password}, autocommit=True
    )


def test_init_file_and_auth_from_environment(configured: Server) -> None:
    for user, password in [("ann", "one"), ("bob", "two")]:
        con = _login(configured, user, password)
        try:
            rows = query(con, "SELECT name FROM people ORDER BY id").to_pylist()
            assert rows == [{"name": "a"}, {"name": "b"}, {"name": "c"}]
        finally:
            con.close()
    with pytest.raises(adbc.Error, match=r"(?i)unauthenticated"):
        query(_login(configured, "ann", "two"), "SELECT 1")


def test_expired_ticket_and_prepared_statement(configured: Server) -> None:
    raw = Raw(configured, "ann", "one")
    try:
        descriptor = raw.descriptor(pb.CommandStatementQuery(query="SELECT 1 AS x"))
        info = raw.client.get_flight_info(descriptor, raw.options)
        time.sleep(2.5)
        with pytest.raises(pa.ArrowKeyError, match="unknown or expired ticket"):
            raw.client.do_get(info.endpoints[0].ticket, raw.options).read_all()
    finally:
        raw.close()
    con = _login(configured, "bob", "two")
    try:
        with con.cursor() as cur:
            cur.execute("SELECT 2 AS y")
            assert cur.fetchall() == [(2,)]
            time.sleep(2.5)
            with pytest.raises(adbc.ProgrammingError, match="expired prepared statement") as info:
                cur.execute("SELECT 2 AS y")  # the DB-API reuses its prepared statement
            assert info.value.status_code == 3  # NOT_FOUND
    finally:
        con.close()


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
