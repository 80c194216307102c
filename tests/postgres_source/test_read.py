"""Training and predicting on attached PostgreSQL tables, read through ADBC."""

from __future__ import annotations

from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pytest

import sqlml
from sqlml.engines import Engine
from sqlml.engines.duckdb import DuckDBEngine
from sqlml.session import Session

TRAIN = (
    "CREATE MODEL {name} OPTIONS (target = 'churned', exclude = 'id', seed = 3, "
    "n_estimators = 30) AS SELECT * FROM {source}"
)
PREDICT = "SELECT id, predict('{name}', *) AS p, predict_proba('{name}', *) AS pp FROM {source}"


def by_id(table: pa.Table) -> pa.Table:
    return table.sort_by("id")


def test_train_and_predict_on_pg_table_equal_arrow(
    session: Session, customers_data: pa.Table
) -> None:
    session.register("customers", customers_data)
    trained_pg = session.sql(TRAIN.format(name="from_pg", source="pg.customers"))
    trained_arrow = session.sql(TRAIN.format(name="from_arrow", source="customers"))
    assert trained_pg["rows"].to_pylist() == [customers_data.num_rows]
    # The same rows in the same order and types: the same model, metrics and predictions.
    assert trained_pg.drop_columns(["model"]).equals(trained_arrow.drop_columns(["model"]))

    over_pg = by_id(session.sql(PREDICT.format(name="from_pg", source="pg.customers")))
    over_arrow = by_id(session.sql(PREDICT.format(name="from_pg", source="customers")))
    assert over_pg.num_rows == customers_data.num_rows
    assert over_pg.equals(over_arrow)
    other_model = by_id(session.sql(PREDICT.format(name="from_arrow", source="pg.customers")))
    assert other_model["p"].equals(over_pg["p"])
    accuracy = pc.mean(pc.equal(over_pg["p"], by_id(customers_data)["churned"])).as_py()
    assert accuracy > 0.7


def test_each_statement_sees_the_table_as_it_is_then(session: Session, pg_uri: str) -> None:
    assert session.sql("SELECT count(*) AS n FROM pg.customers")["n"].to_pylist() == [3000]
    with psycopg.connect(pg_uri) as conn:
        conn.execute("DELETE FROM customers WHERE id > 1000")
        conn.execute("UPDATE customers SET age = 99 WHERE id = 1")
    after = session.sql("SELECT count(*) AS n, max(age) AS a FROM pg.customers")
    assert after.to_pylist() == [{"n": 1000, "a": 99}]


def test_partly_read_streams_are_released(session: Session) -> None:
    for _ in range(3):
        assert session.sql("SELECT id FROM pg.customers LIMIT 5").num_rows == 5
    assert session.sql("SELECT count(*) AS n FROM pg.customers")["n"].to_pylist() == [3000]


def test_missing_table_names_it_and_lists_the_tables(session: Session) -> None:
    with pytest.raises(sqlml.SourceTableNotFound) as info:
        session.sql("SELECT * FROM pg.nope JOIN pg.customers USING (id)")
    error = info.value
    assert (error.alias, error.table, error.schema) == ("pg", "nope", "public")
    assert error.available == ("customers",)
    assert "table pg.nope does not exist" in str(error)
    assert "its tables: customers" in str(error)
    with pytest.raises(sqlml.SourceTableNotFound, match=r"pg\.nope"):
        session.sql("CREATE MODEL m OPTIONS (target = 'churned') AS SELECT * FROM pg.nope")
    assert session.sql("SELECT count(*) AS n FROM pg.customers")["n"].to_pylist() == [3000]


def test_a_table_named_twice_and_a_join_of_two_tables(duckdb_session: Session) -> None:
    session = duckdb_session
    self_join = "SELECT count(*) AS n FROM pg.customers a JOIN pg.customers b USING (id)"
    assert session.sql(self_join)["n"].to_pylist() == [3000]
    session.write_postgres("plans", pa.table({"plan": ["basic", "pro"], "price": [10, 20]}))
    joined = session.sql(
        "SELECT p.price, count(*) AS n FROM pg.customers c JOIN pg.plans p USING (plan) "
        "GROUP BY p.price ORDER BY p.price"
    )
    assert joined["price"].to_pylist() == [10, 20]
    evaluated = session.sql(
        "CREATE MODEL m OPTIONS (target = 'churned', exclude = 'id') "
        "AS SELECT * FROM pg.customers WHERE id <= 2000;"
        "SELECT * FROM evaluate('m', 'SELECT * FROM pg.customers WHERE id > 2000')"
    )
    assert evaluated["rows"].to_pylist() == [1000]


def test_numeric_quoted_names_other_schemas_and_late_tables(pg_uri: str) -> None:
    with psycopg.connect(pg_uri) as conn:
        conn.execute("CREATE TYPE mood AS ENUM ('sad', 'ok')")
        conn.execute('CREATE TABLE "Prices" (item text, price numeric(10, 2), m mood)')
        conn.execute("""INSERT INTO "Prices" VALUES ('a', 1.25, 'ok'), ('b', NULL, NULL)""")
        conn.execute("CREATE SCHEMA sales")
        conn.execute("CREATE TABLE sales.orders AS SELECT g AS id FROM generate_series(1, 5) g")
    with sqlml.connect(catalog="sqlite:///:memory:") as session:
        session.attach_postgres(pg_uri)
        session.attach_postgres(pg_uri, schema="sales", alias="s")
        prices = session.sql('SELECT * FROM pg."Prices" ORDER BY item')
        assert prices.schema.field("price").type == pa.float64()
        assert prices["price"].to_pylist() == [1.25, None]
        assert prices["m"].to_pylist() == ["ok", None]
        assert session.sql("SELECT count(*) AS n FROM pg.prices")["n"].to_pylist() == [2]
        assert session.sql("SELECT sum(id) AS n FROM s.orders")["n"].to_pylist() == [15]
        with pytest.raises(sqlml.SourceTableNotFound, match="its tables: orders"):
            session.sql("SELECT * FROM s.customers")
        with psycopg.connect(pg_uri) as conn:
            conn.execute("CREATE TABLE later AS SELECT 1 AS x")
        assert session.sql("SELECT x FROM pg.later")["x"].to_pylist() == [1]
        session.detach_postgres("s")
        with pytest.raises(sqlml.QueryError):
            session.sql("SELECT * FROM s.orders")


def test_unreachable_server_and_bad_credentials_hide_the_password(pg_uri: str) -> None:
    unreachable = "postgresql://ada:s3cret@127.0.0.1:1/shop"
    with sqlml.connect(catalog="sqlite:///:memory:") as session:
        with pytest.raises(sqlml.SourceUnavailable) as info:
            session.attach_postgres(unreachable)
        message = str(info.value)
        assert "s3cret" not in message
        assert "postgresql://ada:***@127.0.0.1:1/shop" in message
        assert info.value.uri == "postgresql://ada:***@127.0.0.1:1/shop"
        assert isinstance(info.value.__cause__, Exception)
        conninfo = "host=127.0.0.1 port=1 user=ada password=s3cret dbname=shop"
        with pytest.raises(sqlml.SourceUnavailable, match=r"password=\*\*\*") as keyvalue:
            session.attach_postgres(conninfo)
        assert "s3cret" not in str(keyvalue.value)

        host = pg_uri.split("@", 1)[1]
        bad_role = f"postgresql://nobody_here:s3cret@{host}"
        with pytest.raises(
            sqlml.SourceUnavailable, match='role "nobody_here" does not exist'
        ) as bad:
            session.attach_postgres(bad_role)
        assert "s3cret" not in str(bad.value)
        assert "nobody_here:***@" in str(bad.value)


def test_an_engine_without_streams_says_so(pg_uri: str) -> None:
    class NoStreams(Engine):
        """DuckDB behind an engine without the ServesQualifiedStreams capability."""

        name = "duckdb"
        SQLGLOT_DIALECT = "duckdb"

        def __init__(self) -> None:
            self.inner = DuckDBEngine()

        def execute(self, sql: str, params: Any = None) -> Any:
            return self.inner.execute(sql, params)

        def register(self, name: str, data: object) -> None:
            self.inner.register(name, data)

        def unregister(self, name: str) -> None:
            self.inner.unregister(name)

        def register_file(self, name: str, path: Any, format: Any) -> None:
            self.inner.register_file(name, path, format)

        def bind_predict(self, version: Any, model: Any, kind: Any) -> Any:
            return self.inner.bind_predict(version, model, kind)

        def close(self) -> None:
            self.inner.close()

    with Session(NoStreams(), sqlml.open_catalog("sqlite:///:memory:")) as session:
        session.attach_postgres(pg_uri)
        with pytest.raises(sqlml.SourceError, match="cannot read attached tables yet"):
            session.sql("SELECT * FROM pg.customers")
