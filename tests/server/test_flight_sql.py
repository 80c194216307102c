"""sqlml serve, a real process, through the ADBC Flight SQL driver."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pytest

import sqlml

from .conftest import Server, adbc, query

Connect = Callable[..., Any]


def test_select_42(connect: Connect) -> None:
    assert query(connect(), "SELECT 42 AS answer").to_pylist() == [{"answer": 42}]


def test_create_model_and_predict_match_local(connect: Connect, server: Server) -> None:
    con = connect()
    query(
        con,
        "CREATE TABLE houses AS SELECT range AS id, range % 7 AS rooms, "
        "(range % 7) * 10.0 + range % 3 AS price FROM range(300)",
    )
    query(
        con, "CREATE MODEL price OPTIONS (target = 'price', exclude = 'id') AS SELECT * FROM houses"
    )
    sql = "SELECT id, predict('price', *) AS p FROM houses ORDER BY id"
    remote = query(con, sql)
    with sqlml.connect(catalog=server.catalog) as local:
        local.sql(
            "CREATE TABLE houses AS SELECT range AS id, range % 7 AS rooms, "
            "(range % 7) * 10.0 + range % 3 AS price FROM range(300)"
        )
        expected = local.sql(sql)
    assert remote.equals(expected)


def test_prepared_statement_with_parameters(connect: Connect) -> None:
    con = connect()
    assert query(con, "SELECT ? + 1 AS x", [41]).to_pylist() == [{"x": 42}]
    assert query(con, "SELECT $1 || $2 AS s", ["a", "b"]).to_pylist() == [{"s": "ab"}]


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
