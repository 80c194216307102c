"""Writing Arrow data and query results to PostgreSQL through ADBC ingest."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pyarrow as pa
import pytest

import sqlml
from sqlml.session import Session


def rows(uri: str, query: str) -> list[tuple[object, ...]]:
    with psycopg.connect(uri) as conn:
        return conn.execute(query).fetchall()


def test_write_modes(duckdb_session: Session, pg_uri: str) -> None:
    session = duckdb_session
    data = pa.table({"k": [1, 2, 3], "label": ["a", None, "c"], "flag": [True, False, None]})
    assert session.write_postgres("written", data) == 3
    assert rows(pg_uri, "SELECT k, label, flag FROM written ORDER BY k") == [
        (1, "a", True),
        (2, None, False),
        (3, "c", None),
    ]
    with pytest.raises(
        sqlml.SourceError, match=r"cannot write table public\.written \(mode 'create'\)"
    ):
        session.write_postgres("written", data)

    reader = pa.RecordBatchReader.from_batches(data.schema, data.to_batches())
    assert session.write_postgres("written", reader, mode="append") == 3
    assert rows(pg_uri, "SELECT count(*) FROM written") == [(6,)]

    assert session.write_postgres("written", "SELECT 10 AS k, 'z' AS label", mode="replace") == 1
    assert rows(pg_uri, "SELECT * FROM written") == [(10, "z")]
    # The new table is readable at once through the attached alias.
    assert session.sql("SELECT k FROM pg.written")["k"].to_pylist() == [10]

    with pytest.raises(sqlml.SourceError, match="unknown write mode 'upsert'; choose one of"):
        session.write_postgres("written", data, mode="upsert")
    with pytest.raises(sqlml.SourceError, match="mode 'append'"):
        session.write_postgres("nowhere", data, mode="append")


def test_a_failed_write_leaves_the_table_as_it_was(duckdb_session: Session, pg_uri: str) -> None:
    session = duckdb_session
    session.write_postgres("kept", pa.table({"k": [1, 2]}))
    with pytest.raises(sqlml.SourceError):
        session.write_postgres("kept", pa.table({"other": ["x"]}), mode="append")

    def batches() -> Iterator[pa.RecordBatch]:
        yield pa.record_batch({"k": [7, 8, 9]})
        raise RuntimeError("the source broke")

    broken = pa.RecordBatchReader.from_batches(pa.schema({"k": pa.int64()}), batches())
    with pytest.raises(sqlml.SourceError, match="the source broke"):
        # replace drops and re-creates the table, then the rows fail: all is rolled back
        session.write_postgres("kept", broken, mode="replace")
    assert rows(pg_uri, "SELECT k FROM kept ORDER BY k") == [(1,), (2,)]


def test_write_predictions_back(session: Session, pg_uri: str) -> None:
    session.sql(
        "CREATE MODEL churn OPTIONS (target = 'churned', exclude = 'id') "
        "AS SELECT * FROM pg.customers"
    )
    query = "SELECT id, predict('churn', *) AS p FROM pg.customers"
    written = session.write_postgres("scores", query, mode="replace")
    assert written == 3000
    expected = session.sql(query).sort_by("id")
    stored = rows(pg_uri, "SELECT id, p FROM scores ORDER BY id")
    assert stored == list(zip(expected["id"].to_pylist(), expected["p"].to_pylist(), strict=True))
    joined = session.sql(
        "SELECT count(*) AS n FROM pg.customers c JOIN pg.scores s USING (id) "
        "WHERE s.p = predict('churn', c.*)"
    )
    assert joined["n"].to_pylist() == [3000]


def test_write_to_a_uri_and_schema_without_attaching(pg_uri: str) -> None:
    with psycopg.connect(pg_uri) as conn:
        conn.execute("CREATE SCHEMA out")
    with sqlml.connect(catalog="sqlite:///:memory:") as session:
        with pytest.raises(sqlml.SourceError, match="no PostgreSQL database is attached"):
            session.write_postgres("t", pa.table({"x": [1]}))
        count = session.write_postgres(
            "t", "SELECT range AS x FROM range(5)", uri=pg_uri, schema="out"
        )
        assert count == 5
    assert rows(pg_uri, "SELECT sum(x) FROM out.t") == [(10,)]
