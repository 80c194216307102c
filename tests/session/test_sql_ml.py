"""CREATE MODEL, predict by name and the model statements through a real session, on
every engine and both catalogs."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

import sqlml
from sqlml.errors import (
    AliasNotFound,
    FeatureMissing,
    FeatureTypeMismatch,
    InvalidOption,
    ModelExists,
    ModelNotFound,
    NotAClassifier,
    QueryError,
    VersionNotFound,
)
from sqlml.session import Session

from .conftest import customers, numeric

CREATE_REG = (
    "CREATE MODEL reg OPTIONS (task = 'regression', target = 'y', exclude = ('id', 'label'))"
    " AS SELECT * FROM t"
)


def booster_of(session: Session, ref: str) -> lgb.Booster:
    """LightGBM's own Booster, read from the artifact the catalog stores."""
    version = session.catalog.resolve(ref)
    blob = session.catalog.load_artifact(version.model, version.version)
    with zipfile.ZipFile(io.BytesIO(blob)) as archive:
        return lgb.Booster(model_str=archive.read("model.txt").decode())


def test_create_model_returns_one_row_with_metrics(session: Session) -> None:
    session.register("t", numeric())
    result = session.sql(CREATE_REG)
    assert result.num_rows == 1
    row = result.to_pylist()[0]
    assert (row["model"], row["version"], row["algorithm"], row["task"]) == (
        "reg",
        1,
        "lightgbm",
        "regression",
    )
    assert row["rows"] == 3000
    assert {"rmse", "mae", "r2"} <= set(row)
    assert row["r2"] > 0.8
    version = session.catalog.get_version("reg")
    assert version.feature_names == ("x1", "x2", "x3")
    assert version.training_sql == "SELECT * FROM t"
    assert len(version.data_fingerprint) == 64


def test_predict_equals_lightgbm_own_predict(session: Session) -> None:
    data = numeric()
    session.register("t", data)
    session.sql(CREATE_REG)
    session.sql(
        "CREATE MODEL clf OPTIONS (target = 'label', exclude = ('id', 'y')) AS SELECT * FROM t"
    )
    x = np.column_stack([data[c].to_numpy() for c in ("x1", "x2", "x3")])
    got = session.sql("SELECT predict('reg', *) AS p FROM t ORDER BY id")["p"].to_numpy()
    np.testing.assert_allclose(got, booster_of(session, "reg").predict(x), rtol=0, atol=1e-12)
    proba = session.sql("SELECT predict_proba('clf', *) AS p FROM t ORDER BY id")["p"]
    p_true = np.array([dict(m)["true"] for m in proba.to_pylist()])
    np.testing.assert_allclose(p_true, booster_of(session, "clf").predict(x), rtol=0, atol=1e-12)
    labels = session.sql("SELECT predict('clf', *) AS p FROM t ORDER BY id")["p"]
    assert labels.type == pa.bool_()
    assert labels.to_pylist() == list(p_true > 0.5)


def test_column_order_and_extra_columns_do_not_matter(session: Session) -> None:
    session.register("t", numeric())
    session.sql(CREATE_REG)
    forward = session.sql("SELECT id, predict('reg', *) AS p FROM t ORDER BY id")
    session.register("r", numeric().select(["x3", "y", "x2", "id", "x1"]))
    reversed_ = session.sql(
        "SELECT id, predict('reg', *) AS p, 1 AS extra FROM (SELECT *, 'z' AS junk FROM r) "
        "ORDER BY id"
    )
    assert forward["p"].to_pylist() == reversed_["p"].to_pylist()
    listed = session.sql("SELECT predict('reg', x3, x1, x2) AS p FROM t ORDER BY id")
    assert listed["p"].to_pylist() == forward["p"].to_pylist()


def test_targets_keep_their_type_and_categories_work(session: Session) -> None:
    session.register("c", customers())
    session.sql(
        "CREATE MODEL churn OPTIONS (target = 'churned', exclude = 'customer_id') "
        "AS SELECT * FROM c"
    )
    result = session.sql(
        "SELECT predict('churn', *) AS label, predict_proba('churn', *) AS p FROM c"
    )
    assert result["label"].type == pa.string()
    assert set(result["label"].to_pylist()) <= {"yes", "no"}
    first = dict(result["p"][0].as_py())
    assert set(first) == {"no", "yes"}
    assert sum(first.values()) == pytest.approx(1.0)
    # An unseen category and NULLs in every feature are tolerated.
    odd = session.sql(
        "SELECT predict('churn', *) AS label FROM (SELECT 30 AS age, NULL::DOUBLE AS spend, "
        "'enterprise' AS plan, NULL::BOOLEAN AS autopay, DATE '2021-05-01' AS signup)"
    )
    assert odd["label"].to_pylist()[0] in {"yes", "no"}


@pytest.mark.parametrize("algorithm", ["logistic", "random_forest"])
def test_other_algorithms_predict_through_sql(session: Session, algorithm: str) -> None:
    session.register("c", customers())
    row = session.sql(
        f"CREATE MODEL m OPTIONS (algorithm = '{algorithm}', target = 'churned', "
        "exclude = 'customer_id') AS SELECT * FROM c"
    ).to_pylist()[0]
    assert row["algorithm"] == algorithm
    assert row["accuracy"] > 0.6
    labels = session.sql("SELECT predict('m', *) AS p FROM c")["p"].to_pylist()
    assert set(labels) <= {"yes", "no"}


def test_versions_aliases_and_replace(session: Session) -> None:
    session.register("t", numeric())
    session.sql(CREATE_REG)
    v1 = session.sql("SELECT predict('reg@1', *) AS p FROM t ORDER BY id")["p"].to_pylist()
    with pytest.raises(ModelExists, match="CREATE OR REPLACE MODEL reg"):
        session.sql(CREATE_REG)
    session.sql(
        "CREATE OR REPLACE MODEL reg OPTIONS (task = 'regression', target = 'y', "
        "exclude = ('id', 'label'), num_iterations = 20) AS SELECT * FROM t"
    )
    latest = session.sql("SELECT predict('reg', *) AS p FROM t ORDER BY id")["p"].to_pylist()
    again_v1 = session.sql("SELECT predict('reg@1', *) AS p FROM t ORDER BY id")["p"].to_pylist()
    assert again_v1 == v1
    assert latest != v1
    session.sql("DEPLOY MODEL reg VERSION 1 AS production")
    prod = session.sql("SELECT predict('reg@production', *) AS p FROM t ORDER BY id")
    assert prod["p"].to_pylist() == v1
    session.sql("DEPLOY MODEL reg VERSION 2 AS production")
    moved = session.sql("SELECT predict('reg@production', *) AS p FROM t ORDER BY id")
    assert moved["p"].to_pylist() == latest


def test_a_new_session_on_the_same_catalog_predicts_the_same(engine: str, catalog_uri: str) -> None:
    data = numeric()
    with sqlml.connect(engine=engine, catalog=catalog_uri) as first:
        first.register("t", data)
        first.sql(CREATE_REG)
        before = first.sql("SELECT predict('reg', *) AS p FROM t ORDER BY id")
    with sqlml.connect(engine=engine, catalog=catalog_uri) as second:
        second.register("t", data)
        after = second.sql("SELECT predict('reg', *) AS p FROM t ORDER BY id")
    assert before.equals(after)


def test_predict_in_where_order_by_cte_subquery_and_join(session: Session) -> None:
    session.register("t", numeric())
    session.sql(CREATE_REG)
    base = session.sql("SELECT id, predict('reg', *) AS p FROM t")
    expected = {r["id"]: r["p"] for r in base.to_pylist()}
    where = session.sql("SELECT id FROM t WHERE predict('reg', *) > 1 ORDER BY id")
    assert where["id"].to_pylist() == sorted(i for i, p in expected.items() if p > 1)
    top = session.sql("SELECT id FROM t ORDER BY predict('reg', *) DESC LIMIT 3")
    assert top["id"].to_pylist() == sorted(expected, key=lambda i: -expected[i])[:3]
    cte = session.sql(
        "WITH s AS (SELECT id, predict('reg', *) AS p FROM t) SELECT sum(p) AS total FROM s"
    )
    assert cte["total"][0].as_py() == pytest.approx(sum(expected.values()))
    sub = session.sql(
        "SELECT count(*) AS n FROM (SELECT predict('reg', *) AS p FROM t) WHERE p > 0"
    )
    assert sub["n"][0].as_py() == sum(p > 0 for p in expected.values())
    session.sql("CREATE TABLE ids AS SELECT id, id % 2 AS parity FROM t")
    joined = session.sql(
        "SELECT ids.id, predict('reg', t.*) AS p FROM ids JOIN t ON ids.id = t.id "
        "WHERE parity = 0 ORDER BY ids.id"
    )
    assert joined["p"].to_pylist() == [expected[i] for i in joined["id"].to_pylist()]


def test_show_describe_drop(session: Session) -> None:
    session.register("t", numeric())
    session.sql(CREATE_REG)
    session.sql(
        "CREATE OR REPLACE MODEL reg OPTIONS (task = 'regression', target = 'y', "
        "exclude = ('id', 'label')) AS SELECT * FROM t"
    )
    shown = session.sql("SHOW MODELS").to_pylist()
    assert [(r["model"], r["versions"], r["latest"]) for r in shown] == [("reg", 2, 2)]
    described = dict(zip(*session.sql("DESCRIBE MODEL reg").to_pydict().values(), strict=True))
    assert described["version"] == "2"
    assert described["target"] == "y"
    assert described["feature x1"] == "double"
    assert "metric rmse" in described
    session.sql("DROP MODEL reg VERSION 1")
    with pytest.raises(VersionNotFound, match="no version 1; its versions: 2"):
        session.sql("SELECT predict('reg@1', *) FROM t")
    session.sql("DROP MODEL reg")
    assert session.sql("SHOW MODELS").num_rows == 0
    assert session.sql("DROP MODEL IF EXISTS reg").num_rows == 1
    with pytest.raises(ModelNotFound):
        session.sql("DROP MODEL reg")


def test_evaluate_and_feature_importance(session: Session) -> None:
    session.register("t", numeric())
    session.sql(CREATE_REG)
    evaluated = session.sql(
        "SELECT rows, rmse, r2 FROM evaluate('reg', 'SELECT * FROM t WHERE id < 500')"
    ).to_pylist()[0]
    assert evaluated["rows"] == 500
    assert evaluated["r2"] > 0.8
    importance = session.sql("SELECT feature, gain FROM feature_importance('reg')")
    assert sorted(importance["feature"].to_pylist()) == ["x1", "x2", "x3"]
    assert importance["feature"][0].as_py() == "x1"


def test_errors_name_the_model_feature_and_types(session: Session) -> None:
    session.register("t", numeric())
    session.sql(CREATE_REG)
    with pytest.raises(ModelNotFound, match="'nope' does not exist; models in the catalog: reg"):
        session.sql("SELECT predict('nope', *) FROM t")
    with pytest.raises(VersionNotFound, match="no version 7"):
        session.sql("SELECT predict('reg@7', *) FROM t")
    with pytest.raises(AliasNotFound, match="no alias 'staging'"):
        session.sql("SELECT predict('reg@staging', *) FROM t")
    with pytest.raises(FeatureMissing) as missing:
        session.sql("SELECT predict('reg', *) FROM (SELECT x1, x2 FROM t)")
    assert missing.value.column == "x3"
    assert "'reg@1'" in str(missing.value)
    assert "x3" in str(missing.value)
    with pytest.raises(FeatureMissing, match="x3"):
        session.sql("SELECT predict('reg', x1, x2) FROM t")
    with pytest.raises(FeatureTypeMismatch) as mismatch:
        session.sql("SELECT predict('reg', *) FROM (SELECT x1, x2, 'oops' AS x3 FROM t)")
    assert (mismatch.value.column, mismatch.value.expected) == ("x3", "double")
    assert "string" in str(mismatch.value) or "VARCHAR" in str(mismatch.value)
    with pytest.raises(NotAClassifier):
        session.sql("SELECT predict_proba('reg', *) FROM t")
    with pytest.raises(InvalidOption, match="target"):
        session.sql("CREATE MODEL bad OPTIONS (task = 'regression') AS SELECT * FROM t")
    with pytest.raises(QueryError, match="no_such_table"):
        session.sql("SELECT * FROM no_such_table")
    assert [m.name for m in session.catalog.list_models()] == ["reg"]


def test_register_accepts_arrow_pandas_polars(session: Session) -> None:
    import pandas as pd
    import polars as pl

    data = numeric(500)
    session.register("arrow_t", data)
    session.register("reader_t", pa.RecordBatchReader.from_batches(data.schema, data.to_batches()))
    session.register("pandas_t", data.to_pandas())
    session.register("polars_t", pl.from_arrow(data))
    assert isinstance(data.to_pandas(), pd.DataFrame)
    for name in ("arrow_t", "reader_t", "pandas_t", "polars_t"):
        assert session.sql(f"SELECT count(*) AS n FROM {name}")["n"][0].as_py() == 500
    session.sql(CREATE_REG.replace("FROM t", "FROM polars_t"))
    expected = session.sql("SELECT predict('reg', *) AS p FROM arrow_t ORDER BY id")
    for name in ("pandas_t", "polars_t"):  # a RecordBatchReader is scanned once on DuckDB
        got = session.sql(f"SELECT predict('reg', *) AS p FROM {name} ORDER BY id")
        assert got["p"].to_pylist() == expected["p"].to_pylist()
    session.register("arrow_t", data.slice(0, 10))  # registering a name again replaces it
    assert session.sql("SELECT count(*) AS n FROM arrow_t")["n"][0].as_py() == 10


def test_read_parquet_and_csv_files(session: Session, tmp_path: Path) -> None:
    data = numeric(500)
    pq.write_table(data, tmp_path / "t.parquet")
    pa_csv.write_csv(data, tmp_path / "t.csv")
    session.read_parquet("pq_t", tmp_path / "t.parquet")
    session.read_csv("csv_t", str(tmp_path / "t.csv"))
    session.sql(CREATE_REG.replace("FROM t", "FROM pq_t"))
    from_parquet = session.sql("SELECT id, predict('reg', *) AS p FROM pq_t ORDER BY id")
    from_csv = session.sql("SELECT id, predict('reg', *) AS p FROM csv_t ORDER BY id")
    assert from_parquet.num_rows == 500
    np.testing.assert_allclose(from_csv["p"].to_numpy(), from_parquet["p"].to_numpy(), atol=1e-9)
    with pytest.raises(QueryError, match=r"nowhere\.parquet"):
        session.read_parquet("missing", tmp_path / "nowhere.parquet")


def test_duckdb_reads_files_in_sql(catalog_uri: str, tmp_path: Path) -> None:
    path = f"{tmp_path}/t.parquet"
    pq.write_table(numeric(500), path)
    with sqlml.connect(engine="duckdb", catalog=catalog_uri) as session:
        session.sql(
            "CREATE MODEL pq_model OPTIONS (task = 'regression', target = 'y', "
            f"exclude = ('id', 'label')) AS SELECT * FROM read_parquet('{path}')"
        )
        scored = session.sql(f"SELECT predict('pq_model', *) AS p FROM read_parquet('{path}')")
    assert scored.num_rows == 500


def test_native_form_on_a_plain_duckdb_connection(catalog_uri: str) -> None:
    import duckdb  # noqa: TID251 - the plain connection a dbt-duckdb user has

    from sqlml.catalog import open_catalog
    from sqlml.engines.duckdb import install

    data = numeric()
    with sqlml.connect(catalog=catalog_uri) as session:
        session.register("t", data)
        session.sql(CREATE_REG)
        expected = session.sql("SELECT predict('reg', *) AS p FROM t ORDER BY id")
    con = duckdb.connect()
    with open_catalog(catalog_uri) as catalog:
        install(con, catalog)
        con.register("t", data)
        got = con.sql(
            "SELECT predict('reg', t)::DOUBLE AS p, predict_proba IS NULL AS unused "
            "FROM t, (SELECT NULL AS predict_proba) ORDER BY id"
        ).to_arrow_table()
    con.close()
    assert got["p"].to_pylist() == expected["p"].to_pylist()
