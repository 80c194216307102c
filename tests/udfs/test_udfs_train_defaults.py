"""Training's defaults and semantics: random-forest defaults and progress, option typos,
prediction-time options, task inference, high-cardinality text features, test_size = 0."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

import sqlml
from sqlml.errors import InvalidOption, UnknownOption
from sqlml.udfs import load_model, preprocess, train
from sqlml.udfs.explain import evaluate
from sqlml.udfs.train import Progress

from .udfs_data import options

Calls = list[tuple[str, int, int]]


def recorder(calls: Calls) -> Progress:
    return lambda stage, done, total: calls.append((stage, done, total))


def learnable(n: int, seed: int = 0) -> pa.Table:
    """A regression target that depends on the features without much noise, plus noise
    features; ``cls`` is the same target split at its median."""
    rng = np.random.default_rng(seed)
    x1, x2, x3 = rng.uniform(-3, 3, n), rng.normal(size=n), rng.normal(size=n)
    kind = rng.choice(["a", "b", "c", "d"], n)
    y = 3 * np.sin(x1) + x2**2 + 2 * (kind == "a") + 0.5 * x3 + rng.normal(0, 0.5, n)
    noise = rng.normal(size=(n, 3))
    return pa.table(
        {
            "x1": x1,
            "x2": x2,
            "x3": x3,
            "kind": kind,
            **{f"z{i}": noise[:, i] for i in range(3)},
            "y": y,
            "cls": np.where(y > np.median(y), "hi", "lo"),
        }
    )


# --- random forest ----------------------------------------------------------------------


def test_random_forest_regression_learns_small_and_reports_every_stage() -> None:
    data = learnable(4000)
    calls: Calls = []
    trained = train(
        data,
        name="rf",
        options={"target": "y", "exclude": "cls", "algorithm": "random_forest"},
        progress=recorder(calls),
    )
    assert trained.spec.metrics["r2"] > 0.5
    # scikit-learn's own defaults (trees grown until their leaves are pure) store ~2.6 MB
    # here; the bounded defaults ~0.3 MB.
    assert len(trained.artifact) < 1_000_000
    stages = list(dict.fromkeys(stage for stage, _, _ in calls))
    assert stages == ["preprocess", "train", "convert", "evaluate", "package"]
    assert [c for c in calls if c[0] == "convert"] == [("convert", 0, 1), ("convert", 1, 1)]
    grown = [done for stage, done, _ in calls if stage == "train"]
    trees = trained.spec.hyperparameters["n_estimators"]
    assert isinstance(trees, int)
    assert grown[0] == 0
    assert grown[-1] == trees
    assert len(grown) > 3
    assert grown == sorted(grown)


def test_random_forest_defaults_are_recorded_and_options_win(table: pa.Table) -> None:
    regression = train(
        table, name="m", options=options("amount", algorithm="random_forest", n_estimators=5)
    ).spec.hyperparameters
    assert regression["max_features"] == pytest.approx(1 / 3)
    assert regression["max_depth"] is not None
    assert regression["min_samples_leaf"] > 1
    assert regression["n_jobs"] == -1
    assert regression["n_estimators"] == 5
    assert regression["warm_start"] is False
    classification = train(
        table,
        name="m",
        options=options("label", algorithm="random_forest", n_estimators=5, max_depth=None),
    ).spec.hyperparameters
    assert classification["max_features"] == "sqrt"
    assert classification["max_depth"] is None


def test_random_forest_grown_in_batches_predicts_as_one_fit(table: pa.Table) -> None:
    from sklearn.ensemble import RandomForestRegressor

    trained = train(
        table,
        name="m",
        options=options("amount", algorithm="random_forest", n_estimators=13, test_size=0),
    )
    model = load_model(trained.artifact)
    forest = RandomForestRegressor(**trained.spec.hyperparameters)
    fitted = preprocess.Preprocessor.from_json(model.artifact.preprocess)
    x = fitted.transform(dict(zip(table.column_names, table.columns, strict=True)), len(table))
    forest.fit(x, table.column("amount").to_numpy())
    np.testing.assert_allclose(
        model.predict(table).to_numpy(), forest.predict(x.astype(np.float32)), rtol=1e-5
    )


# --- option typos -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("algorithm", "typo", "meant"),
    [
        ("lightgbm", "learnig_rate", "learning_rate"),
        ("lightgbm", "test_sise", "test_size"),
        ("lightgbm", "exlude", "exclude"),
        ("random_forest", "n_estimator", "n_estimators"),
        ("logistic", "max_iters", "max_iter"),
    ],
)
def test_unknown_option_suggests_the_closest(
    table: pa.Table, algorithm: str, typo: str, meant: str
) -> None:
    with pytest.raises(UnknownOption, match=f"option '{typo}'") as info:
        train(table, name="m", options=options("label", algorithm=algorithm, **{typo: 1}))
    assert info.value.option == typo
    assert info.value.suggestions[0] == meant
    assert f"did you mean '{meant}'" in str(info.value)
    assert isinstance(info.value, InvalidOption)


def test_unknown_lightgbm_option_with_nothing_close_points_to_the_parameters(
    table: pa.Table,
) -> None:
    with pytest.raises(UnknownOption, match="'xyzzy'") as info:
        train(table, name="m", options=options("label", xyzzy=1))
    assert info.value.suggestions == ()
    assert "lightgbm.readthedocs.io" in str(info.value)
    assert "num_leaves" not in str(info.value)


def test_a_misspelt_target_option_is_named(table: pa.Table) -> None:
    with pytest.raises(InvalidOption, match="'tagret' a misspelling") as info:
        train(table, name="m", options={"tagret": "label"})
    assert info.value.option == "target"


# --- prediction-time options ------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("predict_contrib", True, "prediction-time"),
        ("is_predict_contrib", "true", "prediction-time"),
        ("predict_raw_score", True, "prediction-time"),
        ("predict_leaf_index", True, "prediction-time"),
        ("pred_early_stop", True, "prediction-time"),
        ("num_iteration_predict", 5, "prediction-time"),
        ("output_model", "model.txt", "input/output"),
        ("input_model", "model.txt", "input/output"),
        ("save_binary", True, "input/output"),
    ],
)
def test_options_meaning_nothing_at_training_are_refused(
    table: pa.Table, option: str, value: object, says: str
) -> None:
    with pytest.raises(InvalidOption, match=f"option '{option}': is an? {says}") as info:
        train(table, name="m", options=options("label", num_iterations=5, **{option: value}))
    assert info.value.option == option
    assert "leave it out" in str(info.value)


def test_prediction_options_are_refused_but_num_threads_is_not(table: pa.Table) -> None:
    with pytest.raises(InvalidOption, match="'predict_contrib'"):
        train(
            table,
            name="m",
            options=options("label", num_iterations=5, num_threads=1, predict_contrib=True),
        )
    spec = train(table, name="m", options=options("label", num_iterations=5, num_threads=1)).spec
    assert spec.hyperparameters["num_threads"] == 1


# --- task inference ---------------------------------------------------------------------


def test_integer_target_with_few_values_is_classification_and_says_so(
    table: pa.Table, caplog: pytest.LogCaptureFixture
) -> None:
    calls: Calls = []
    with caplog.at_level(logging.INFO, logger="sqlml.train"):
        trained = train(
            table, name="m", options=options("grade", num_iterations=20), progress=recorder(calls)
        )
    assert trained.spec.task == "classification"
    assert trained.spec.classes == (0, 1, 2)
    assert "'grade'" in caplog.text
    assert "task = 'classification' was inferred" in caplog.text
    assert ("classification_inferred", 3, table.num_rows) in calls
    assert load_model(trained.artifact).predict(table).type == pa.int64()


def test_integer_target_with_many_values_stays_regression(
    table: pa.Table, caplog: pytest.LogCaptureFixture
) -> None:
    counts = pa.array(np.round(table.column("amount").to_numpy() * 10).astype(np.int64))
    data = table.append_column("score", counts)
    calls: Calls = []
    with caplog.at_level(logging.INFO, logger="sqlml.train"):
        spec = train(
            data,
            name="m",
            options={**options("score", num_iterations=5), "exclude": ["amount", "id"]},
            progress=recorder(calls),
        ).spec
    assert spec.task == "regression"
    assert "task = 'regression' was inferred" in caplog.text
    assert "classification_inferred" not in {stage for stage, _, _ in calls}


def test_integer_target_takes_the_task_of_a_one_task_algorithm(table: pa.Table) -> None:
    spec = train(table, name="m", options=options("grade", algorithm="linear")).spec
    assert spec.task == "regression"
    assert spec.algorithm == "linear"


def test_describe_shows_the_inferred_task(tmp_path: Path, table: pa.Table) -> None:
    with sqlml.connect(catalog=f"sqlite:///{tmp_path / 'catalog.db'}") as session:
        session.register("t", table.select(["x", "count", "city", "grade"]))
        created = session.sql(
            "CREATE MODEL g OPTIONS (target = 'grade', num_iterations = 5) AS SELECT * FROM t"
        )
        described = session.sql("DESCRIBE MODEL g").to_pylist()
    assert created.column("task").to_pylist() == ["classification"]
    properties = {row["property"]: row["value"] for row in described}
    assert properties["task"] == "classification"
    assert properties["classes"] == "'0', '1', '2'"  # as predict_proba's keys


# --- high-cardinality text features -----------------------------------------------------


def test_id_like_text_feature_is_warned_about(
    table: pa.Table, caplog: pytest.LogCaptureFixture
) -> None:
    codes = pa.array([f"C{i:05d}" for i in range(table.num_rows)])
    data = table.append_column("customer_code", codes)
    calls: Calls = []
    with caplog.at_level(logging.INFO, logger="sqlml.train"):
        train(data, name="m", options=options("label", num_iterations=5), progress=recorder(calls))
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "'customer_code'" in warnings[0].getMessage()
    assert "exclude = 'customer_code'" in warnings[0].getMessage()
    assert [c[0] for c in calls].count("high_cardinality") == 1


# --- test_size = 0 ----------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["lightgbm", "random_forest", "logistic"])
def test_test_size_zero_trains_on_every_row_without_metrics(
    table: pa.Table, algorithm: str
) -> None:
    calls: Calls = []
    extra = {"num_iterations": 10} if algorithm == "lightgbm" else {}
    if algorithm == "random_forest":
        extra = {"n_estimators": 5}
    trained = train(
        table,
        name="m",
        options=options("label", algorithm=algorithm, test_size=0, **extra),
        progress=recorder(calls),
    )
    assert trained.spec.metrics == {}
    assert trained.spec.row_count == table.num_rows
    assert "evaluate" not in {stage for stage, _, _ in calls}
    scored = evaluate(load_model(trained.artifact, "m"), table).to_pylist()[0]
    assert scored["rows"] == table.num_rows
    assert scored["accuracy"] > 0.6


def test_test_size_zero_uses_the_rows_a_holdout_would_keep(table: pa.Table) -> None:
    every = train(table, name="m", options=options("amount", num_iterations=10, test_size=0))
    held = train(table, name="m", options=options("amount", num_iterations=10))
    assert every.artifact != held.artifact
    assert every.spec.metrics == {}
    assert set(held.spec.metrics) == {"rmse", "mae", "r2"}


@pytest.mark.parametrize("bad", [-0.1, 1, 1.0, 1.5, float("nan")])
def test_test_size_out_of_range_is_refused(table: pa.Table, bad: float) -> None:
    with pytest.raises(InvalidOption, match=r"from 0 \(no holdout.*up to but not including 1"):
        train(table, name="m", options=options("label", test_size=bad))


def test_test_size_zero_through_sql_describe_and_evaluate(tmp_path: Path, table: pa.Table) -> None:
    with sqlml.connect(catalog=f"sqlite:///{tmp_path / 'catalog.db'}") as session:
        session.register("t", table.select(["x", "count", "city", "label"]))
        created = session.sql(
            "CREATE MODEL c OPTIONS (target = 'label', test_size = 0, num_iterations = 5) "
            "AS SELECT * FROM t"
        )
        described = session.sql("DESCRIBE MODEL c")
        scored = session.sql("SELECT * FROM evaluate('c', 'SELECT * FROM t')")
    assert created.column("rows").to_pylist() == [table.num_rows]
    assert "accuracy" not in created.column_names
    assert not [p for p in described.column("property").to_pylist() if p.startswith("metric")]
    assert scored.column("accuracy").to_pylist()[0] > 0.6
