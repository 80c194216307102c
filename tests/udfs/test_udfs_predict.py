from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from sqlml.errors import FeatureMissing, FeatureTypeMismatch, NotAClassifier
from sqlml.udfs import LoadedModel, load_model, train
from sqlml.udfs.artifact import unpack

from .udfs_data import CITIES, features_of, options


def simple_table(n: int = 600, seed: int = 1) -> pa.Table:
    """A table whose LightGBM matrix the test can build independently of sqlml."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    x[::17] = np.nan
    k = rng.integers(0, 5, n)
    c = rng.choice(CITIES, n)
    days = rng.integers(0, 20_000, n)
    seconds = rng.integers(0, 2_000_000_000, n)
    y = np.nan_to_num(x) + k / 2 + (c == "Paris") + (days % 7) / 10 + rng.normal(0, 0.1, n)
    return pa.table(
        {
            "x": x,
            "k": pa.array(k, mask=np.arange(n) % 11 == 0),
            "flag": pa.array(k > 2, mask=np.arange(n) % 13 == 0),
            "c": pa.array(c, mask=np.arange(n) % 19 == 0),
            "d": pa.array(days.astype(np.int32)).cast(pa.date32()),
            "t": pa.array(seconds, pa.timestamp("s")),
            "y": y,
            "cls": np.digitize(y, [1.0, 2.0]).astype(np.int64),
        }
    )


def nan_floats(array: pa.ChunkedArray) -> np.ndarray:
    return np.asarray(pc.cast(array, pa.float64()).to_pylist(), dtype=float)


def expected_matrix(table: pa.Table) -> np.ndarray:
    """The LightGBM matrix of simple_table, built with NumPy only."""
    codes = {city: i for i, city in enumerate(sorted(CITIES))}
    c = np.array([np.nan if v is None else codes.get(v, np.nan) for v in table["c"].to_pylist()])
    days = table["d"].cast(pa.int32()).to_numpy().astype("datetime64[D]")
    seconds = table["t"].cast(pa.int64()).to_numpy()

    def parts(dates: np.ndarray) -> list[np.ndarray]:
        year = dates.astype("datetime64[Y]")
        month = dates.astype("datetime64[M]")
        return [
            year.astype(int) + 1970.0,
            month.astype(int) % 12 + 1.0,
            (dates - month.astype("datetime64[D]")).astype(int) + 1.0,
            (dates.astype(int) + 3) % 7 + 0.0,  # 1970-01-01 was a Thursday; Monday is 0
        ]

    day_parts = parts(days)
    day_of_year = (days - days.astype("datetime64[Y]").astype("datetime64[D]")).astype(int) + 1.0
    stamp = seconds.astype("datetime64[s]").astype("datetime64[D]")
    stamp_parts = parts(stamp)
    columns = [
        nan_floats(table["x"]),
        nan_floats(table["k"]),
        nan_floats(table["flag"]),
        c,
        *day_parts,
        day_of_year,
        days.astype(int) + 0.0,
        *stamp_parts[:3],
        (seconds // 3600) % 24 + 0.0,
        stamp_parts[3],
        seconds + 0.0,
    ]
    return np.column_stack(columns)


@pytest.fixture(scope="module")
def simple() -> pa.Table:
    return simple_table()


@pytest.fixture(scope="module")
def regressor(simple: pa.Table) -> LoadedModel:
    blob = train(simple, name="reg", options={"target": "y", "exclude": "cls"}).artifact
    return load_model(blob, "reg")


@pytest.fixture(scope="module")
def multiclass(simple: pa.Table) -> tuple[LoadedModel, lgb.Booster]:
    blob = train(
        simple, name="multi", options={"target": "cls", "task": "classification", "exclude": "y"}
    ).artifact
    return load_model(blob, "multi"), lgb.Booster(model_str=unpack(blob).model.decode())


def test_regression_equals_lightgbms_own_predict(simple: pa.Table, regressor: LoadedModel) -> None:
    booster = lgb.Booster(model_str=regressor.booster.model_to_string())
    expected = booster.predict(expected_matrix(simple))
    got = regressor.predict(simple)
    assert got.type == pa.float64()
    np.testing.assert_allclose(got.to_numpy(), expected, rtol=0, atol=1e-12)


def test_multiclass_equals_lightgbms_own_predict(
    simple: pa.Table, multiclass: tuple[LoadedModel, lgb.Booster]
) -> None:
    model, booster = multiclass
    expected = booster.predict(expected_matrix(simple))
    proba = model.predict_proba(simple)
    got = np.asarray(proba.items.to_numpy()).reshape(-1, 3)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    assert model.predict(simple).to_pylist() == expected.argmax(axis=1).tolist()


def test_predict_proba_is_a_map_from_label_text(
    simple: pa.Table, multiclass: tuple[LoadedModel, lgb.Booster]
) -> None:
    model, _ = multiclass
    proba = model.predict_proba(simple)
    assert proba.type == pa.map_(pa.string(), pa.float64())
    assert [key for key, _ in proba[0].as_py()] == ["0", "1", "2"]
    assert set(np.diff(proba.offsets.to_numpy())) == {3}
    totals = np.asarray(proba.items.to_numpy()).reshape(-1, 3).sum(axis=1)
    np.testing.assert_allclose(totals, 1.0, atol=1e-12)


def test_bool_labels_are_keyed_as_text(table: pa.Table) -> None:
    model = load_model(train(table, name="m", options=options("yes", num_iterations=5)).artifact)
    proba = model.predict_proba(table)
    assert [key for key, _ in proba[0].as_py()] == ["false", "true"]
    assert model.predict(table).type == pa.bool_()


def test_column_order_never_matters(simple: pa.Table, regressor: LoadedModel) -> None:
    reversed_ = simple.select(simple.column_names[::-1])
    assert regressor.predict(reversed_).equals(regressor.predict(simple))


def test_extra_columns_are_ignored(simple: pa.Table, regressor: LoadedModel) -> None:
    wider = simple.append_column("extra", pa.array(np.ones(simple.num_rows)))
    wider = wider.append_column("more", pa.array([["x"]] * simple.num_rows))
    assert regressor.predict(wider).equals(regressor.predict(simple))


def test_record_batches_and_structs_predict_alike(simple: pa.Table, regressor: LoadedModel) -> None:
    expected = regressor.predict(simple)
    batch = simple.to_batches()[0]
    assert regressor.predict(batch).equals(expected)
    arrays = [c.combine_chunks() for c in simple.columns]
    struct = pa.StructArray.from_arrays(arrays, names=simple.column_names)
    assert regressor.predict(struct).equals(expected)


def test_null_struct_rows_give_null(
    simple: pa.Table, regressor: LoadedModel, multiclass: tuple[LoadedModel, lgb.Booster]
) -> None:
    model, _ = multiclass
    mask = pa.array(np.arange(simple.num_rows) % 5 == 0)
    arrays = [c.combine_chunks() for c in simple.columns]
    struct = pa.StructArray.from_arrays(arrays, names=simple.column_names, mask=mask)
    plain = regressor.predict(simple)
    got = regressor.predict(struct)
    assert got.null_count == pc.sum(mask).as_py()
    assert pc.is_null(got).equals(mask)
    valid = pc.invert(mask)
    assert got.filter(valid).equals(plain.filter(valid))
    assert pc.is_null(model.predict(struct)).equals(mask)
    assert pc.is_null(model.predict_proba(struct)).equals(mask)


def test_a_sliced_struct_predicts_its_own_rows(simple: pa.Table, regressor: LoadedModel) -> None:
    arrays = [c.combine_chunks() for c in simple.columns]
    struct = pa.StructArray.from_arrays(arrays, names=simple.column_names)
    assert regressor.predict(struct.slice(100, 50)).equals(regressor.predict(simple).slice(100, 50))


def test_chunked_tables_predict_alike(simple: pa.Table, regressor: LoadedModel) -> None:
    chunked = pa.Table.from_batches(simple.to_batches(max_chunksize=64))
    assert chunked["x"].num_chunks > 1
    assert regressor.predict(chunked).equals(regressor.predict(simple))


def test_empty_batch(simple: pa.Table, regressor: LoadedModel) -> None:
    assert len(regressor.predict(simple.slice(0, 0))) == 0


@pytest.mark.parametrize("algorithm", ["lightgbm", "logistic", "random_forest"])
def test_unseen_categories_predict_like_null(table: pa.Table, algorithm: str) -> None:
    extra = {"n_estimators": 10} if algorithm == "random_forest" else {}
    trained = train(table, name="m", options=options("label", algorithm=algorithm, **extra))
    model = load_model(trained.artifact)
    rows = features_of(table).slice(0, 50)
    unseen = rows.set_column(rows.column_names.index("city"), "city", pa.array(["Nice"] * 50))
    null = rows.set_column(rows.column_names.index("city"), "city", pa.nulls(50, pa.string()))
    typed_null = rows.set_column(rows.column_names.index("city"), "city", pa.nulls(50))
    expected = model.predict_proba(null)
    assert model.predict_proba(unseen).equals(expected)
    assert model.predict_proba(typed_null).equals(expected)


def test_string_types_are_interchangeable(table: pa.Table) -> None:
    model = load_model(train(table, name="m", options=options("tier", num_iterations=10)).artifact)
    expected = model.predict_proba(table)
    index = table.column_names.index("city")
    for variant in (
        table["city"].cast(pa.large_string()),
        table["city"].cast(pa.string_view()),
        table["city"].dictionary_encode(),
    ):
        assert model.predict_proba(table.set_column(index, "city", variant)).equals(expected)
    shade = table.column_names.index("shade")
    plain = table.set_column(shade, "shade", table["shade"].cast(pa.string()))
    assert model.predict_proba(plain).equals(expected)


def test_numbers_and_temporal_types_of_one_kind_are_interchangeable(table: pa.Table) -> None:
    model = load_model(
        train(table, name="m", options=options("amount", num_iterations=10)).artifact
    )
    expected = model.predict(table)
    variants = {
        "count": table["count"].cast(pa.float32()),
        "id": table["count"].cast(pa.decimal128(19, 0)),
        "price": table["price"].cast(pa.float64()),
        "day": table["day"].cast(pa.date64()),
        "seen": table["seen"].cast(pa.timestamp("ns", "UTC")),
    }
    for name, variant in variants.items():
        column = "count" if name == "id" else name
        data = table.set_column(table.column_names.index(column), column, variant)
        assert model.predict(data).equals(expected), name
    # A timestamp for a date feature would lose its time of day unseen: refused, as on
    # every engine (preprocess.compatible); a date for a timestamp feature is its midnight.
    as_timestamp = table["day"].cast(pa.timestamp("s"))
    data = table.set_column(table.column_names.index("day"), "day", as_timestamp)
    with pytest.raises(FeatureTypeMismatch, match="feature 'day' was trained as date32"):
        model.predict(data)
    as_date = pc.cast(table["seen"], pa.timestamp("s")).cast(pa.date32())
    data = table.set_column(table.column_names.index("seen"), "seen", as_date)
    assert len(model.predict(data)) == table.num_rows


def test_columns_bind_case_insensitively(simple: pa.Table, regressor: LoadedModel) -> None:
    upper = simple.rename_columns([c.upper() for c in simple.column_names])
    assert regressor.predict(upper).equals(regressor.predict(simple))


def test_missing_feature_names_model_and_column(simple: pa.Table, regressor: LoadedModel) -> None:
    with pytest.raises(FeatureMissing, match=r"'reg'.*'flag'") as info:
        regressor.predict(simple.drop_columns(["flag"]))
    assert info.value.column == "flag"
    assert "x" in info.value.available


def test_mistyped_feature_names_column_and_types(simple: pa.Table, regressor: LoadedModel) -> None:
    data = simple.set_column(0, "x", simple["x"].cast(pa.string()))
    with pytest.raises(FeatureTypeMismatch, match=r"'x'.*double.*string") as info:
        regressor.predict(data)
    assert info.value.column == "x"
    bad_flag = simple.set_column(2, "flag", pa.array(np.zeros(simple.num_rows)))
    with pytest.raises(FeatureTypeMismatch, match="'flag'"):
        regressor.predict(bad_flag)


def test_predict_proba_on_regression_is_an_error(simple: pa.Table, regressor: LoadedModel) -> None:
    with pytest.raises(NotAClassifier, match="'reg'"):
        regressor.predict_proba(simple)


@pytest.mark.parametrize("algorithm", ["logistic", "random_forest"])
def test_onnx_probabilities_sum_to_one(table: pa.Table, algorithm: str) -> None:
    extra = {"n_estimators": 10} if algorithm == "random_forest" else {}
    model = load_model(
        train(table, name="m", options=options("tier", algorithm=algorithm, **extra)).artifact
    )
    proba = model.predict_proba(table)
    assert [key for key, _ in proba[0].as_py()] == ["bronze", "gold", "silver"]
    totals = np.asarray(proba.items.to_numpy()).reshape(-1, 3).sum(axis=1)
    np.testing.assert_allclose(totals, 1.0, atol=1e-9)
    labels = model.predict(table).to_pylist()
    best = np.asarray(proba.items.to_numpy()).reshape(-1, 3).argmax(axis=1)
    assert labels == [model.classes[i] for i in best]


def test_scores_expose_the_raw_outputs(
    simple: pa.Table, regressor: LoadedModel, multiclass: tuple[LoadedModel, lgb.Booster]
) -> None:
    np.testing.assert_array_equal(regressor.scores(simple), regressor.predict(simple).to_numpy())
    model, _ = multiclass
    proba = model.scores(simple)
    assert proba.shape == (simple.num_rows, 3)
    assert isinstance(model.booster, lgb.Booster)
    assert model.preprocessor.width == 16  # x, k, flag, c, 6 date parts, 6 timestamp parts
