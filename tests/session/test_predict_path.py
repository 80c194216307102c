"""How predict runs: the prediction function, or the model compiled to SQL and inlined."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pytest

import sqlml
from sqlml.errors import CompileNotSupported, ConfigError, FeatureTypeMismatch
from sqlml.session import Session

from .conftest import customers

LOGISTIC = (
    "CREATE MODEL b OPTIONS (algorithm = 'logistic', target = 'churned', "
    "exclude = 'customer_id') AS SELECT * FROM c"
)
FOREST = (
    "CREATE MODEL f OPTIONS (algorithm = 'random_forest', target = 'churned', "
    "exclude = 'customer_id', n_estimators = 5) AS SELECT * FROM c"
)
LIGHTGBM = (
    "CREATE MODEL g OPTIONS (target = 'churned', exclude = 'customer_id', "
    "num_iterations = 5) AS SELECT * FROM c"
)


@pytest.fixture
def trained(engine: str) -> Iterator[Session]:
    """A session on each engine with a logistic, a LightGBM and a random forest model."""
    with sqlml.connect(engine=engine, catalog="sqlite:///:memory:") as session:
        session.register("c", customers(600))
        for statement in (LOGISTIC, FOREST, LIGHTGBM):
            session.sql(statement)
        yield session


def explained(session: Session, query: str) -> list[str]:
    keys, texts = session.sql(f"EXPLAIN {query}").columns
    return [
        text
        for key, text in zip(keys.to_pylist(), texts.to_pylist(), strict=True)
        if key == "sqlml"
    ]


def predictions(session: Session, path: str, query: str) -> pa.Table:
    session.predict_path = path
    return session.sql(query)


QUERY = "SELECT customer_id, predict('b', *) AS p FROM c ORDER BY customer_id"


def test_auto_inlines_a_logistic_model_with_the_same_answers(trained: Session) -> None:
    udf = predictions(trained, "udf", QUERY)
    assert [str(step) for step in trained.plan] == [
        "predict('b@1') runs as the prediction function: predict_path = udf"
    ]
    auto = predictions(trained, "auto", QUERY)
    assert [step.path for step in trained.plan] == ["sql"]
    assert auto.to_pylist() == udf.to_pylist()
    assert auto.schema.field("p").type == pa.string()
    assert set(auto["p"].to_pylist()) == {"yes", "no"}


def test_the_struct_and_listed_forms_inline_too(trained: Session) -> None:
    star = predictions(trained, "udf", QUERY)["p"]
    query = (
        "SELECT predict('b', x) AS p FROM c AS x ORDER BY customer_id",
        "SELECT predict('b', age, spend, plan, autopay, signup) AS p FROM c ORDER BY customer_id",
    )
    for text in query:
        assert predictions(trained, "sql", text)["p"].to_pylist() == star.to_pylist()
        assert [step.path for step in trained.plan] == ["sql"]


def test_explain_names_the_path_of_every_call(trained: Session) -> None:
    trained.predict_path = "auto"
    lines = explained(
        trained,
        "SELECT predict('b', *), predict('g', *), predict('f', *), predict_proba('b', *) FROM c",
    )
    assert sorted(lines) == sorted(
        [
            "predict('b@1') runs as compiled SQL: predict_path = auto, and a logistic model "
            "runs faster so",
            "predict('g@1') runs as the prediction function: predict_path = auto, and a "
            "lightgbm model runs faster so",
            "predict('f@1') runs as the prediction function: predict_path = auto, and a "
            "random_forest model runs faster so",
            "predict_proba('b@1') runs as the prediction function: predict_proba always does",
        ]
    )
    # The engine's own plan follows.
    assert trained.sql("EXPLAIN SELECT predict('b', *) FROM c").num_rows > 1
    # A stream (what the Flight SQL server sends) shows the same rows.
    streamed = trained.sql_reader("EXPLAIN SELECT predict('b', *) FROM c").read_all()
    assert streamed.column(0).to_pylist()[0] == "sqlml"


def test_sql_path_compiles_lightgbm_and_refuses_a_forest(trained: Session) -> None:
    query = "SELECT predict('g', *) AS p FROM c ORDER BY customer_id"
    compiled = predictions(trained, "sql", query).to_pylist()
    assert compiled == predictions(trained, "udf", query).to_pylist()
    trained.predict_path = "sql"
    with pytest.raises(CompileNotSupported, match="'f@1' cannot be compiled"):
        trained.sql("SELECT predict('f', *) FROM c")


def test_a_column_of_the_wrong_type_is_named_on_the_auto_path(trained: Session) -> None:
    trained.predict_path = "auto"
    with pytest.raises(FeatureTypeMismatch, match="feature 'plan' was trained as string"):
        trained.sql("SELECT predict('b', *) FROM (SELECT * REPLACE (length(plan) AS plan) FROM c)")
    assert [step.path for step in trained.plan] == ["udf"]
    assert "the engine refused the compiled SQL" in trained.plan[0].reason


def test_the_setting_comes_from_the_environment_and_is_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SQLML_PREDICT_PATH", "udf")
    with sqlml.connect(catalog="sqlite:///:memory:") as session:
        assert session.predict_path == "udf"
    with (
        pytest.raises(ConfigError, match="expected one of auto, udf, sql; got 'fast'"),
        sqlml.connect(catalog="sqlite:///:memory:", predict_path="fast"),
    ):
        pass
