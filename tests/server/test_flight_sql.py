"""sqlml serve, a real process, through the ADBC Flight SQL driver."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pytest

import sqlml

from .conftest import PASSWORD, USER, Server, adbc, query

Connect = Callable[..., Any]


def test_select_42(connect: Connect) -> None:
    assert query(connect(), "SELECT 42 AS answer").to_pylist() == [{"answer": 42}]


HOUSES = (
    "CREATE TABLE houses AS SELECT CAST(value AS BIGINT) AS id, "
    "CAST(value % 7 AS BIGINT) AS rooms, CAST(value % 7 AS DOUBLE) * 10.0 + value % 3 AS price "
    "FROM generate_series(0, 299) AS t(value)"
)


PREDICT = "SELECT id, rooms, predict('price', *) AS p FROM houses ORDER BY id"


@pytest.fixture(scope="module")
def local_predictions(server: Server) -> pa.Table:
    """Trains model ``price`` on HOUSES through the server (once per cell); returns what a
    local session on the same engine and catalog then predicts with it (PREDICT)."""
    con = adbc.connect(
        server.uri, db_kwargs={"username": USER, "password": PASSWORD}, autocommit=True
    )
    try:
        query(con, HOUSES)
        query(
            con,
            "CREATE MODEL price OPTIONS (target = 'price', exclude = 'id') AS SELECT * FROM houses",
        )
    finally:
        con.close()
    with sqlml.connect(engine=server.engine, catalog=server.catalog) as local:
        local.sql(HOUSES)
        predicted: pa.Table = local.sql(PREDICT)
    return predicted


def test_create_model_and_predict_match_local(
    connect: Connect, local_predictions: pa.Table
) -> None:
    """A model trained through the server predicts, through the server, exactly what a
    local session on the same engine and catalog predicts with it."""
    con = connect()
    query(con, HOUSES)  # tables are the client session's own
    remote = query(con, PREDICT)
    assert remote.column_names == ["id", "rooms", "p"]
    assert remote["id"].to_pylist() == list(range(300))
    assert remote["p"].to_pylist() == local_predictions["p"].to_pylist()
    assert remote.equals(local_predictions)
    # and the model learnt something: price is 10 * rooms plus 0, 1 or 2
    for row in remote.to_pylist():
        assert abs(row["p"] - 10 * row["rooms"] - 1) < 1.5, row


def test_flightsql_dbapi_runs_predict(server: Server, local_predictions: pa.Table) -> None:
    """flightsql-dbapi (Superset's DataFusion client) gets the same predictions."""
    import flightsql

    con = flightsql.connect(
        flightsql.FlightSQLClient(
            host="127.0.0.1", port=server.port, user=USER, password=PASSWORD, insecure=True
        )
    )
    try:
        cursor = con.cursor()
        cursor.execute("SELECT 41 + 1 AS answer")
        assert cursor.fetchall() == [[42]]
        cursor.execute(HOUSES)
        cursor.execute(PREDICT)
        rows = cursor.fetchall()
    finally:
        con.close()
    assert [list(row) for row in rows] == [
        [row["id"], row["rooms"], row["p"]] for row in local_predictions.to_pylist()
    ]


@pytest.mark.parametrize(
    ("sql", "params", "expected"),
    [
        pytest.param(
            "SELECT ? + 1 AS x",
            [41],
            42,
            id="qmark",
            marks=pytest.mark.notimpl(
                "`?` parameters are not rewritten to DataFusion's `$1` placeholders "
                "(DataFusion: 'No value found for placeholder with name ?')",
                engines=["datafusion"],
            ),
        ),
        pytest.param("SELECT $1 + 1 AS x", [41], 42, id="numbered"),
        pytest.param(
            "SELECT $1 || $2 AS s",
            ["a", "b"],
            "ab",
            id="untyped-concat",
            marks=pytest.mark.notyet(
                "DataFusion plans `$1 || $2` before the parameters' types are known "
                "('Cannot infer common string type for string concat operation Null || Null')",
                engines=["datafusion"],
            ),
        ),
        pytest.param("SELECT CAST($1 AS VARCHAR) || $2 AS s", ["a", "b"], "ab", id="typed-concat"),
    ],
)
def test_prepared_statement_with_parameters(
    connect: Connect, sql: str, params: list[Any], expected: Any
) -> None:
    [[value]] = query(connect(), sql, params).to_pydict().values()
    assert value == expected


def test_get_objects_lists_table_with_columns(connect: Connect) -> None:
    con = connect()
    query(con, "CREATE TABLE listed (a INTEGER, b VARCHAR)")
    objects = con.adbc_get_objects(table_name_filter="listed").read_all().to_pylist()
    tables = [
        table
        for catalog in objects
        for schema in catalog["catalog_db_schemas"] or []
        for table in schema["db_schema_tables"] or []
    ]
    assert [(t["table_name"], t["table_type"]) for t in tables] == [("listed", "TABLE")]
    assert [c["column_name"] for c in tables[0]["table_columns"]] == ["a", "b"]


def test_get_info(connect: Connect) -> None:
    info = connect().adbc_get_info()
    assert info["vendor_name"] == "sqlml"
    assert info["vendor_version"] == sqlml.__version__
    assert info["vendor_arrow_version"] == pa.__version__


@pytest.mark.notyet(
    "DataFusion has no temporary tables ('Temporary tables not supported')",
    engines=["datafusion"],
)
def test_temp_table_is_per_connection(connect: Connect) -> None:
    first, second = connect(), connect()
    query(first, "CREATE TEMP TABLE scratch AS SELECT 1 AS x")
    assert query(first, "SELECT x FROM scratch").to_pylist() == [{"x": 1}]
    with pytest.raises(adbc.Error, match="scratch"):
        query(second, "SELECT x FROM scratch")


@pytest.mark.parametrize(
    ("sql", "status", "error", "text"),
    [
        ("SELECT predict('missing', *) FROM range(1)", 3, "ModelNotFound", "model 'missing'"),
        ("SELECT * FROM no_such_table", 3, "TableNotFound", "no_such_table"),
        ("SELEKT 1", 5, "QueryError", "SELEKT"),
        (
            "CREATE MODEL m OPTIONS (task = 'nonsense') AS SELECT 1 AS y",
            5,
            "InvalidOption",
            "target",
        ),
    ],
)
def test_errors_have_status_and_one_clean_line(
    connect: Connect, sql: str, status: int, error: str, text: str
) -> None:
    """NOT_FOUND (ADBC status 3) for unknown models and tables, INVALID_ARGUMENT (5) for
    bad SQL and options; the message is sqlml's one line, with no server traceback."""
    with pytest.raises(adbc.ProgrammingError) as info:
        query(connect(), sql)
    message = str(info.value)
    assert info.value.status_code == status, message
    prefix = {3: "NOT_FOUND", 5: "INVALID_ARGUMENT"}[status]
    assert message.startswith(f"{prefix}: [FlightSQL] {error}: "), message
    assert text in message
    assert "Traceback" not in message
    assert "File " not in message
    assert "\n" not in message


@pytest.mark.parametrize(("username", "password"), [("u", "wrong"), ("nobody", "p"), ("", "")])
def test_refuses_bad_credentials(connect: Connect, username: str, password: str) -> None:
    with pytest.raises(adbc.Error, match=r"(?i)unauthenticated"):
        query(connect(username, password), "SELECT 1")


def test_refuses_forged_token(server: Server) -> None:
    import pyarrow.flight as flight

    client = flight.connect(server.uri)
    options = flight.FlightCallOptions(headers=[(b"authorization", b"Bearer forged")])
    with pytest.raises(flight.FlightUnauthenticatedError):
        client.get_flight_info(flight.FlightDescriptor.for_command(b""), options)
    client.close()


def test_pyarrow_basic_auth_handshake(server: Server) -> None:
    from pyarrow import flight

    client = flight.connect(server.uri)
    header = client.authenticate_basic_token("u", "p")
    assert header[0] == b"authorization"
    assert header[1].startswith(b"Bearer ")
    client.close()
