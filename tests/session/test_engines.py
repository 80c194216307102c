"""The engines agree: the same model predicts the same on DuckDB and DataFusion, whichever
trained it; and each engine's own SQL reaches it unchanged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import sqlml
from sqlml.catalog import open_catalog
from sqlml.config import ENGINES
from sqlml.demo import churn_data
from sqlml.engines import Engine, get_engine
from sqlml.engines.datafusion import DataFusionEngine
from sqlml.errors import ConfigError, FeatureTypeMismatch
from sqlml.session import Session
from sqlml.sql import QueryStatement, parse_statement, rewrite_query

from .conftest import customers, numeric

QUERIES = {
    "reg": "SELECT id, predict('reg', *) AS p FROM t ORDER BY id",
    "clf": "SELECT id, predict('clf', *) AS label, predict_proba('clf', *) AS p FROM t ORDER BY id",
    "churn": (
        "SELECT customer_id, predict('churn', *) AS label, predict_proba('churn', *) AS p "
        "FROM customers ORDER BY customer_id"
    ),
    "spend": ("SELECT customer_id, predict('spend', *) AS p FROM customers ORDER BY customer_id"),
}


def train_all(session: Session) -> None:
    session.sql(
        "CREATE MODEL reg OPTIONS (task = 'regression', target = 'y', "
        "exclude = ('id', 'label')) AS SELECT * FROM t"
    )
    session.sql(
        "CREATE MODEL clf OPTIONS (target = 'label', exclude = ('id', 'y')) AS SELECT * FROM t"
    )
    # Categories, booleans, dates, a timestamp and NULLs; and a scikit-learn (ONNX) model.
    session.sql(
        "CREATE MODEL churn OPTIONS (target = 'churned', exclude = 'customer_id') "
        "AS SELECT * FROM customers"
    )
    session.sql(
        "CREATE MODEL spend OPTIONS (task = 'regression', algorithm = 'linear', "
        "target = 'monthly_spend', exclude = ('customer_id', 'churned')) "
        "AS SELECT * FROM customers WHERE monthly_spend IS NOT NULL"
    )


def predictions(engine: str, catalog_uri: str) -> dict[str, pa.Table]:
    with sqlml.connect(engine=engine, catalog=catalog_uri) as session:
        session.register("t", numeric())
        session.register("customers", churn_data(3_000))
        return {name: session.sql(query) for name, query in QUERIES.items()}


def assert_same(left: pa.Table, right: pa.Table) -> None:
    assert left.column_names == right.column_names
    for name in left.column_names:
        a, b = left[name], right[name]
        assert a.type == b.type, name
        if pa.types.is_floating(a.type):
            np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), rtol=0, atol=1e-9)
        elif pa.types.is_map(a.type):
            x = np.array([[v for _, v in row] for row in a.to_pylist()])
            y = np.array([[v for _, v in row] for row in b.to_pylist()])
            assert [[k for k, _ in row] for row in a.to_pylist()] == [
                [k for k, _ in row] for row in b.to_pylist()
            ]
            np.testing.assert_allclose(x, y, rtol=0, atol=1e-9)
        else:
            assert a.to_pylist() == b.to_pylist(), name


@pytest.mark.parametrize("trained_on", ENGINES)
def test_a_model_predicts_the_same_on_every_engine_whichever_trained_it(
    trained_on: str, catalog_uri: str
) -> None:
    with sqlml.connect(engine=trained_on, catalog=catalog_uri) as session:
        session.register("t", numeric())
        session.register("customers", churn_data(3_000))
        train_all(session)
    duckdb_results = predictions("duckdb", catalog_uri)
    datafusion_results = predictions("datafusion", catalog_uri)
    for name in QUERIES:
        assert_same(duckdb_results[name], datafusion_results[name])


def test_the_engines_train_the_same_model(catalog_uri: str) -> None:
    """The training query's Arrow result is the same on both, so is the model."""
    with open_catalog(catalog_uri) as catalog:
        for engine in ENGINES:
            with Session(get_engine(engine), catalog, owns_catalog=False) as session:
                session.register("customers", churn_data(2_000))
                session.sql(
                    f"CREATE MODEL on_{engine} OPTIONS (target = 'churned', "
                    "exclude = 'customer_id') AS SELECT * FROM customers"
                )
        duckdb_version = catalog.get_version("on_duckdb")
        datafusion_version = catalog.get_version("on_datafusion")
    assert duckdb_version.features == datafusion_version.features
    assert duckdb_version.data_fingerprint == datafusion_version.data_fingerprint
    assert duckdb_version.sha256 == datafusion_version.sha256


def test_datafusion_casts_compatible_columns_to_the_signature(catalog_uri: str) -> None:
    """Columns of other widths, string views and other timestamp units bind, as on DuckDB."""
    with sqlml.connect(engine="datafusion", catalog=catalog_uri) as session:
        session.register("customers", churn_data(2_000))
        session.sql(
            "CREATE MODEL churn OPTIONS (target = 'churned', exclude = 'customer_id') "
            "AS SELECT * FROM customers"
        )
        plain = session.sql(
            "SELECT predict_proba('churn', *)['true'] AS p FROM customers ORDER BY customer_id"
        )
        cast = session.sql(
            "SELECT predict_proba('churn', *)['true'] AS p FROM (SELECT customer_id, "
            "arrow_cast(tenure_months, 'Int32') AS tenure_months, "
            "arrow_cast(monthly_spend, 'Float32') AS monthly_spend, "
            "CAST(plan AS VARCHAR) AS plan, arrow_cast(region, 'LargeUtf8') AS region, "
            "arrow_cast(support_tickets, 'UInt8') AS support_tickets, autopay, signup_date, "
            "arrow_cast(last_login, 'Timestamp(Microsecond, None)') AS last_login "
            "FROM customers) ORDER BY customer_id"
        )
    # float32 spend rounds, so compare loosely; everything else is exact.
    np.testing.assert_allclose(cast["p"].to_numpy(), plain["p"].to_numpy(), atol=0.05)
    assert np.mean(np.abs(cast["p"].to_numpy() - plain["p"].to_numpy()) < 1e-12) > 0.9


def test_datafusion_predicts_across_many_batches(catalog_uri: str) -> None:
    """A function is called once per batch; small batches give the same predictions."""
    data = customers(5_000)
    results = []
    with open_catalog(catalog_uri) as catalog:
        for engine in (get_engine("duckdb"), DataFusionEngine(batch_size=700)):
            with Session(engine, catalog, owns_catalog=False) as session:
                session.register("c", data)
                if engine.name == "duckdb":
                    session.sql(
                        "CREATE MODEL churn OPTIONS (target = 'churned', "
                        "exclude = 'customer_id') AS SELECT * FROM c"
                    )
                results.append(
                    session.sql(
                        "SELECT customer_id, predict('churn', *) AS label, "
                        "predict_proba('churn', *)['yes'] AS p FROM c "
                        "WHERE predict_proba('churn', *)['yes'] > 0.2 ORDER BY customer_id"
                    )
                )
    assert results[0].num_rows > 1_000
    assert_same(results[0], results[1])


def test_a_number_for_a_text_feature_is_a_type_mismatch(session: Session) -> None:
    session.register("c", customers(500))
    session.sql(
        "CREATE MODEL churn OPTIONS (target = 'churned', exclude = 'customer_id') "
        "AS SELECT * FROM c"
    )
    with pytest.raises(FeatureTypeMismatch) as mismatch:
        session.sql(
            "SELECT predict('churn', *) FROM (SELECT age, spend, 1 AS plan, autopay, signup FROM c)"
        )
    assert mismatch.value.column == "plan"
    assert mismatch.value.expected == "string"
    assert mismatch.value.actual in ("int32", "int64")  # the literal's type on each engine
    # NULL text and other text types are fine.
    fine = session.sql(
        "SELECT predict('churn', *) AS p FROM (SELECT age, spend, NULL AS plan, autopay, "
        "signup FROM c)"
    )
    assert fine.num_rows == 500


def test_the_row_form_and_parameters_work_on_every_engine(session: Session) -> None:
    session.register("t", numeric())
    session.sql(
        "CREATE MODEL reg OPTIONS (task = 'regression', target = 'y', "
        "exclude = ('id', 'label')) AS SELECT * FROM t"
    )
    star = session.sql("SELECT id, predict('reg', *) AS p FROM t WHERE id < 10 ORDER BY id")
    row = session.sql("SELECT id, predict('reg', t) AS p FROM t WHERE id < $1 ORDER BY id", [10])
    assert row.to_pylist() == star.to_pylist()
    plain = session.sql("SELECT count(*) AS n FROM t WHERE id < $1 AND x1 > $2", [100, 0.0])
    assert plain["n"][0].as_py() == sum(
        1 for r in numeric().to_pylist() if r["id"] < 100 and r["x1"] > 0.0
    )


def test_capabilities_are_declared() -> None:
    from sqlml.engines.base import HasNativePredict, ServesQualifiedStreams
    from sqlml.engines.duckdb import DuckDBEngine

    assert issubclass(DuckDBEngine, HasNativePredict)
    assert not issubclass(DataFusionEngine, HasNativePredict)
    assert issubclass(DuckDBEngine, ServesQualifiedStreams)
    assert issubclass(DataFusionEngine, ServesQualifiedStreams)
    assert issubclass(DataFusionEngine, Engine)


def test_datafusion_has_no_database_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no database file.*CREATE EXTERNAL TABLE"):
        get_engine("datafusion", str(tmp_path / "data.db"))
    with pytest.raises(ConfigError, match="database"):
        sqlml.connect(engine="datafusion", catalog="sqlite:///:memory:", database="x.duckdb")
    assert get_engine("datafusion", ":memory:").name == "datafusion"


# Run in order on one DataFusion engine: each is real DataFusion SQL, none is sqlml.
DATAFUSION_SCRIPT = [
    'CREATE TABLE t (id INT, age INT, plan VARCHAR, "predict" DOUBLE)',
    "INSERT INTO t VALUES (1, 30, 'basic', 0.5), (2, 40, 'pro', 0.7), (3, 50, 'pro', 0.1)",
    "CREATE VIEW v AS SELECT * FROM t WHERE plan = 'pro'",
    'SELECT predict, "predict" + 1 AS p1 FROM t',
    "SELECT arrow_cast(age, 'Int8') AS a, arrow_typeof(plan) AS ty FROM t",
    "SELECT named_struct('a', 1, 'b', 'x') AS s, make_array(1, 2) AS l, [1, 2][1] AS first",
    "SELECT 1::DOUBLE AS d, CAST('2021-01-01' AS DATE) AS dt, interval '1 day' AS i",
    "SELECT id FROM t WHERE plan ~ '^p' ORDER BY id",
    "SELECT * EXCLUDE (predict) FROM t",
    "SELECT id, rank() OVER (PARTITION BY plan ORDER BY age DESC) AS r FROM t",
    "SELECT * FROM generate_series(1, 3)",
    "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT * FROM r",
    "COPY t TO 'out.parquet' STORED AS PARQUET",
    "COPY (SELECT id, age FROM t) TO 'out.csv' STORED AS CSV",
    "CREATE EXTERNAL TABLE ext STORED AS PARQUET LOCATION 'out.parquet'",
    "CREATE EXTERNAL TABLE ext_csv STORED AS CSV LOCATION 'out.csv' "
    "OPTIONS ('format.has_header' 'true')",
    "SELECT count(*) AS n FROM ext JOIN ext_csv USING (id)",
    "SHOW TABLES",
    "SHOW COLUMNS FROM t",
    "DESCRIBE t",
    "EXPLAIN SELECT * FROM v",
    "SET datafusion.execution.target_partitions = 2",
    "  select   *\n  from t\twhere id=1  ",
    "DROP VIEW v",
    "DROP TABLE ext",
    "DROP TABLE IF EXISTS t",
]


def test_datafusion_sql_passes_through_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    def never_bind(ref: str, kind: str) -> object:
        raise AssertionError(f"bind must not be called for plain SQL (got {ref!r})")

    with sqlml.connect(engine="datafusion", catalog="sqlite:///:memory:") as session:
        for sql in DATAFUSION_SCRIPT:
            statement = parse_statement(sql, "datafusion")
            assert statement == QueryStatement(sql, ())
            assert rewrite_query(sql, never_bind, dialect="datafusion") is sql  # type: ignore[arg-type]
            session.sql(sql)
    assert pq.read_table(tmp_path / "out.parquet").num_rows == 3


def test_datafusion_sql_around_predict(catalog_uri: str, tmp_path: Path) -> None:
    """External tables, DataFusion functions and casts around sqlml's calls."""
    pq.write_table(numeric(), tmp_path / "t.parquet")
    with sqlml.connect(engine="datafusion", catalog=catalog_uri) as session:
        session.sql(
            f"CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '{tmp_path / 't.parquet'}'"
        )
        session.sql(
            "CREATE MODEL reg OPTIONS (task = 'regression', target = 'y', "
            "exclude = ('id', 'label')) AS SELECT * FROM t WHERE arrow_cast(id, 'Int32') >= 0"
        )
        result = session.sql(
            "SELECT arrow_typeof(predict('reg', *)) AS ty, "
            "named_struct('p', predict('reg', x1, x2, x3)) AS s, "
            "predict('reg', *)::VARCHAR AS text "
            "FROM t WHERE id::INT < 5 ORDER BY id"
        )
        evaluated = session.sql(
            "SELECT e.rows FROM evaluate('reg', "
            "'SELECT * FROM t WHERE CAST(id AS VARCHAR) ~ ''^1''') AS e"
        )
    assert result["ty"].to_pylist() == ["Float64"] * 5
    first = result["s"].to_pylist()[0]["p"]
    assert result["text"].to_pylist()[0] == str(first)
    assert evaluated["rows"][0].as_py() > 0


@pytest.mark.parametrize("name", ENGINES)
def test_engines_raise_typed_errors_naming_what_is_missing(name: str) -> None:
    from sqlml.errors import ColumnNotFound, TableNotFound

    with get_engine(name) as engine:
        engine.register("t", pa.table({"a": [1, 2]}))
        with pytest.raises(TableNotFound) as table:
            engine.execute("SELECT * FROM no_such_table")
        assert table.value.table == "no_such_table"
        with pytest.raises(ColumnNotFound) as column:
            engine.execute("SELECT no_such_column FROM t")
        assert column.value.column == "no_such_column"
        assert column.value.engine == name
