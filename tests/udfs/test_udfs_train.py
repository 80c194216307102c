from __future__ import annotations

import logging

import numpy as np
import pyarrow as pa
import pytest

from sqlml.catalog.entities import Feature, VersionSpec
from sqlml.errors import InvalidOption, TrainingError, UnknownOption, UnsupportedColumnType
from sqlml.udfs import load_model, train
from sqlml.udfs.train import data_fingerprint

from .udfs_data import options

FAST = {"random_forest": {"n_estimators": 10}, "lightgbm": {"num_iterations": 20}}

CASES = [
    ("lightgbm", "label"),
    ("lightgbm", "tier"),
    ("lightgbm", "amount"),
    ("logistic", "label"),
    ("logistic", "tier"),
    ("linear", "amount"),
    ("random_forest", "label"),
    ("random_forest", "tier"),
    ("random_forest", "amount"),
]


@pytest.mark.parametrize(("algorithm", "target"), CASES)
def test_every_algorithm_trains_and_scores(table: pa.Table, algorithm: str, target: str) -> None:
    trained = train(
        table,
        name="m",
        options=options(target, algorithm=algorithm, **FAST.get(algorithm, {})),
        training_sql="SELECT * FROM t",
    )
    spec = trained.spec
    assert isinstance(spec, VersionSpec)
    assert spec.algorithm == algorithm
    assert spec.target == target
    assert spec.artifact_format == ("lightgbm" if algorithm == "lightgbm" else "onnx")
    assert spec.training_sql == "SELECT * FROM t"
    assert spec.row_count == table.num_rows
    assert len(spec.data_fingerprint) == 64
    assert set(spec.library_versions) >= {"lightgbm", "scikit-learn", "pyarrow", "sqlml"}
    assert [f.name for f in spec.features] == [
        "x", "count", "price", "member", "city", "shade", "day", "seen"
    ]  # fmt: skip
    assert all(isinstance(v, float) for v in spec.metrics.values())
    if target == "amount":
        assert spec.task == "regression"
        assert spec.classes == ()
        assert set(spec.metrics) == {"rmse", "mae", "r2"}
        assert spec.metrics["r2"] > 0.5
    else:
        assert spec.task == "classification"
        assert set(spec.metrics) == {
            "accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"
        }  # fmt: skip
        assert spec.metrics["accuracy"] > 0.6
    predictions = load_model(trained.artifact, "m").predict(table)
    assert len(predictions) == table.num_rows


def test_signature_records_types_and_categories(table: pa.Table) -> None:
    spec = train(table, name="m", options=options("label", num_iterations=5)).spec
    by_name = {f.name: f for f in spec.features}
    assert by_name["city"] == Feature("city", "string", ("Lyon", "Nantes", "Paris"))
    assert by_name["shade"] == Feature("shade", "string", ("dark", "light"))
    assert by_name["price"].type == "double"  # decimals are fed to models as float64
    assert by_name["seen"].arrow_type == pa.timestamp("us")  # zoned: its UTC instant
    assert by_name["day"].arrow_type == pa.date32()
    assert by_name["x"].categories is None


@pytest.mark.parametrize(
    ("target", "task", "classes", "arrow_type"),
    [
        ("label", None, ("churn", "stay"), pa.string()),
        ("yes", None, (False, True), pa.bool_()),
        ("grade", "classification", (0, 1, 2), pa.int64()),
    ],
)
def test_labels_map_back_to_the_targets_type(
    table: pa.Table,
    target: str,
    task: str | None,
    classes: tuple[object, ...],
    arrow_type: pa.DataType,
) -> None:
    extra = {"task": task} if task else {}
    trained = train(table, name="m", options=options(target, num_iterations=20, **extra))
    assert trained.spec.classes == classes
    assert [type(c) for c in trained.spec.classes] == [type(c) for c in classes]
    model = load_model(trained.artifact, "m")
    assert model.output_type == arrow_type
    predicted = model.predict(table)
    assert predicted.type == arrow_type
    assert set(predicted.to_pylist()) <= set(classes)
    accuracy = np.mean(np.asarray(predicted.to_pylist()) == table.column(target).to_numpy())
    assert accuracy > 0.8


def test_a_large_string_dictionary_target_predicts_plain_strings(table: pa.Table) -> None:
    tier = table.column("tier").cast(pa.large_string()).dictionary_encode()
    data = table.set_column(table.column_names.index("tier"), "tier", tier)
    model = load_model(train(data, name="m", options=options("tier", num_iterations=5)).artifact)
    assert model.output_type == pa.string()
    assert model.predict(data).to_pylist() == model.predict(table).to_pylist()


def test_integer_target_can_be_regression(table: pa.Table) -> None:
    trained = train(table, name="m", options=options("grade", task="regression"))
    assert trained.spec.task == "regression"
    assert load_model(trained.artifact).predict(table).type == pa.float64()


def test_training_is_reproducible(table: pa.Table) -> None:
    for algorithm, target in [
        ("lightgbm", "tier"),
        ("logistic", "label"),
        ("random_forest", "amount"),
    ]:
        opts = options(target, algorithm=algorithm, **FAST.get(algorithm, {}))
        first = train(table, name="m", options=opts)
        second = train(table, name="m", options=opts)
        assert first.artifact == second.artifact, algorithm
        assert first.spec == second.spec
    other_seed = train(table, name="m", options=options("tier", seed=7, **FAST["lightgbm"]))
    assert other_seed.artifact != first.artifact


def test_linear_regression_through_onnx_is_exact_in_float64() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=200)
    data = pa.table({"x": x, "y": 2.5 * x + 1.0})
    model = load_model(
        train(data, name="lin", options={"target": "y", "algorithm": "linear"}).artifact
    )
    np.testing.assert_allclose(model.predict(data).to_numpy(), 2.5 * x + 1.0, rtol=0, atol=1e-12)


def test_hyperparameters_by_lightgbm_names_and_aliases(table: pa.Table) -> None:
    trained = train(
        table,
        name="m",
        options=options("amount", N_ESTIMATORS=7, learning_rate=0.2, min_child_samples=5),
    )
    hyper = trained.spec.hyperparameters
    assert hyper["num_iterations"] == 7
    assert hyper["learning_rate"] == 0.2
    assert hyper["min_data_in_leaf"] == 5
    assert hyper["seed"] == 42
    assert load_model(trained.artifact).booster.num_trees() == 7


def test_sklearn_hyperparameters_are_case_insensitive(table: pa.Table) -> None:
    trained = train(table, name="m", options=options("label", algorithm="logistic", c=0.5))
    assert trained.spec.hyperparameters["C"] == 0.5
    assert trained.spec.hyperparameters["random_state"] == 42


def test_progress_reports_every_stage(table: pa.Table) -> None:
    calls: list[tuple[str, int, int]] = []
    train(table, name="m", options=options("label", num_iterations=8), progress=
          lambda stage, done, total: calls.append((stage, done, total)))  # fmt: skip
    stages = list(dict.fromkeys(stage for stage, _, _ in calls))
    assert stages == ["preprocess", "train", "evaluate", "package"]
    assert [c for c in calls if c[0] == "train"][-1] == ("train", 8, 8)
    assert len([c for c in calls if c[0] == "train"]) == 9


def test_null_target_rows_are_dropped_and_reported(
    table: pa.Table, caplog: pytest.LogCaptureFixture
) -> None:
    amount = pa.array(table.column("amount").to_numpy(), mask=np.arange(table.num_rows) < 30)
    data = table.set_column(table.column_names.index("amount"), "amount", amount)
    calls: list[tuple[str, int, int]] = []
    with caplog.at_level(logging.INFO, logger="sqlml.train"):
        trained = train(
            data,
            name="m",
            options=options("amount", num_iterations=5),
            progress=lambda stage, done, total: calls.append((stage, done, total)),
        )
    assert trained.spec.row_count == table.num_rows - 30
    assert ("drop_null_target", 30, table.num_rows) in calls
    assert "dropped 30 rows" in caplog.text


def test_fingerprint_ignores_chunking_but_not_data(table: pa.Table) -> None:
    rechunked = pa.Table.from_batches(table.to_batches(max_chunksize=37))
    assert data_fingerprint(rechunked) == data_fingerprint(table)
    assert data_fingerprint(table.slice(1)) != data_fingerprint(table)


# --- errors -------------------------------------------------------------------------------


def test_missing_target_option(table: pa.Table) -> None:
    with pytest.raises(InvalidOption, match="target") as info:
        train(table, name="m", options={"algorithm": "lightgbm"})
    assert info.value.option == "target"


def test_unknown_target_column_lists_the_columns(table: pa.Table) -> None:
    with pytest.raises(InvalidOption, match="'nope'") as info:
        train(table, name="m", options={"target": "nope"})
    assert "amount" in str(info.value)
    assert info.value.option == "target"


def test_target_matches_case_insensitively(table: pa.Table) -> None:
    spec = train(table, name="m", options={**options("amount"), "target": "AMOUNT"}).spec
    assert spec.target == "amount"


@pytest.mark.parametrize(("algorithm", "target"), [("linear", "label"), ("logistic", "amount")])
def test_algorithm_must_fit_the_task(table: pa.Table, algorithm: str, target: str) -> None:
    with pytest.raises(InvalidOption, match=algorithm) as info:
        train(table, name="m", options=options(target, algorithm=algorithm))
    assert info.value.option == "algorithm"


def test_unknown_algorithm_lists_the_choices(table: pa.Table) -> None:
    with pytest.raises(InvalidOption, match="random_forest"):
        train(table, name="m", options=options("label", algorithm="xgboost"))


def test_empty_table(table: pa.Table) -> None:
    with pytest.raises(TrainingError, match="no rows"):
        train(table.slice(0, 0), name="m", options=options("label"))


def test_all_null_target(table: pa.Table) -> None:
    empty = pa.nulls(table.num_rows, pa.string())
    data = table.set_column(table.column_names.index("label"), "label", empty)
    with pytest.raises(TrainingError, match="'label' is NULL in every row") as info:
        train(data, name="churn", options=options("label"))
    assert info.value.model == "churn"


def test_single_class_target(table: pa.Table) -> None:
    one = pa.array(["stay"] * table.num_rows)
    data = table.set_column(table.column_names.index("label"), "label", one)
    with pytest.raises(TrainingError, match=r"single class.*'stay'"):
        train(data, name="m", options=options("label"))


def test_no_features_left(table: pa.Table) -> None:
    everything = [c for c in table.column_names if c != "label"]
    with pytest.raises(TrainingError, match="no feature columns"):
        train(table, name="m", options={"target": "label", "exclude": ",".join(everything)})


def test_unsupported_feature_type_names_column_and_type(table: pa.Table) -> None:
    tags = pa.array([["a"]] * table.num_rows)
    with pytest.raises(UnsupportedColumnType, match=r"'tags'.*list<item: string>") as info:
        train(table.append_column("tags", tags), name="m", options=options("label"))
    assert info.value.column == "tags"


def test_unsupported_target_type(table: pa.Table) -> None:
    with pytest.raises(UnsupportedColumnType, match="'day'"):
        train(table, name="m", options={"target": "day"})
    with pytest.raises(UnsupportedColumnType, match="'label'"):
        train(table, name="m", options=options("label", task="regression"))


def test_unknown_exclude_column(table: pa.Table) -> None:
    with pytest.raises(InvalidOption, match="'ghost'") as info:
        train(table, name="m", options={"target": "label", "exclude": ["ghost"]})
    assert info.value.option == "exclude"


def test_unknown_lightgbm_hyperparameter_suggests_the_close_ones(table: pa.Table) -> None:
    with pytest.raises(UnknownOption, match="'num_leafs'") as info:
        train(table, name="m", options=options("label", num_leafs=8))
    assert info.value.option == "num_leafs"
    assert info.value.suggestions == ("num_leaves",)
    assert "did you mean 'num_leaves'?" in str(info.value)
    # Only the close names, not LightGBM's ~150 parameters.
    assert "learning_rate" not in str(info.value)
    assert len(str(info.value)) < 200


def test_unknown_sklearn_hyperparameter_with_no_close_name_lists_the_parameters(
    table: pa.Table,
) -> None:
    with pytest.raises(UnknownOption, match="'alpha'") as info:
        train(table, name="m", options=options("label", algorithm="logistic", alpha=1.0))
    assert info.value.suggestions == ()
    assert "LogisticRegression's parameters are" in str(info.value)
    assert "max_iter" in str(info.value)


@pytest.mark.parametrize(
    ("extra", "option"),
    [
        ({"objective": "regression"}, "objective"),
        ({"random_state": 1}, "random_state"),
        ({"num_iterations": 5, "n_estimators": 6}, "n_estimators"),
        ({"test_size": 1.5}, "test_size"),
        ({"test_size": "half"}, "test_size"),
        ({"seed": -1}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"task": "ranking"}, "task"),
    ],
)
def test_bad_options(table: pa.Table, extra: dict[str, object], option: str) -> None:
    with pytest.raises(InvalidOption, match=f"'{option}'") as info:
        train(table, name="m", options=options("label", **extra))
    assert info.value.option == option


def test_bad_hyperparameter_value_is_an_invalid_option(table: pa.Table) -> None:
    with pytest.raises(InvalidOption, match=r"must be an integer in \(1, 131072\], got 1") as info:
        train(table, name="m", options=options("label", num_leaves=1))
    assert info.value.option == "num_leaves"


def test_too_few_rows_for_the_holdout() -> None:
    tiny = pa.table({"x": [1.0, 2.0], "y": ["a", "b"]})
    with pytest.raises(TrainingError, match="too few"):
        train(tiny, name="m", options={"target": "y"})
