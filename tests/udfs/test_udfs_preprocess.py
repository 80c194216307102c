from __future__ import annotations

import datetime as dt
import json
import re

import numpy as np
import pyarrow as pa
import pytest

from sqlml.catalog.entities import Feature
from sqlml.errors import UnsupportedColumnType
from sqlml.udfs.preprocess import Preprocessor, compatible, fit, kind_of


def columns(table: pa.Table) -> dict[str, pa.ChunkedArray]:
    return {name: table[name] for name in table.column_names}


def roundtrip(preprocessor: Preprocessor) -> Preprocessor:
    return Preprocessor.from_json(json.loads(json.dumps(preprocessor.to_json())))


def test_dates_become_calendar_parts() -> None:
    days = pa.array([dt.date(2024, 2, 29), None, dt.date(1970, 1, 1)], pa.date32())
    table = pa.table({"d": days})
    pre = fit(table, encoding="codes")
    assert pre.output_names == [
        "d.year", "d.month", "d.day", "d.day_of_week", "d.day_of_year", "d.days_since_epoch"
    ]  # fmt: skip
    matrix = pre.transform(columns(table), 3)
    np.testing.assert_array_equal(matrix[0], [2024, 2, 29, 3, 60, 19782])
    assert np.isnan(matrix[1]).all()
    np.testing.assert_array_equal(matrix[2], [1970, 1, 1, 3, 1, 0])
    as_date64 = {"d": days.cast(pa.date64())}
    np.testing.assert_array_equal(pre.transform(as_date64, 3), matrix)


def test_zoned_timestamps_are_their_utc_instants() -> None:
    """Calendar parts are those of UTC whatever the column's zone (the engines disagree on
    zones: DuckDB hands out the session's, DataFusion the column's), and the feature is
    recorded without one."""
    moment = dt.datetime(2024, 12, 31, 23, 30, tzinfo=dt.UTC)
    for tz in ["UTC", "Asia/Tokyo"]:
        stamps = pa.array([moment, None], pa.timestamp("ms", tz))
        pre = fit(pa.table({"t": stamps}), encoding="codes")
        matrix = pre.transform({"t": stamps}, 2)
        np.testing.assert_array_equal(matrix[0], [2024, 12, 31, 23, 1, moment.timestamp()])
        assert np.isnan(matrix[1]).all()
        assert pre.features == (Feature("t", "timestamp[ms]"),)
        naive = pre.transform({"t": pa.array([moment.replace(tzinfo=None)], pa.timestamp("s"))}, 1)
        np.testing.assert_array_equal(naive[0], matrix[0])


def test_a_feature_recorded_with_a_zone_keeps_its_zones_calendar() -> None:
    """Models trained before zones were dropped recorded the zone; they still get its parts."""
    moment = dt.datetime(2024, 12, 31, 23, 30, tzinfo=dt.UTC)
    recorded = fit(pa.table({"t": pa.array([moment], pa.timestamp("ms"))}), encoding="codes")
    spec = recorded.to_json()
    spec["columns"][0]["type"] = "timestamp[ms, tz=Asia/Tokyo]"
    pre = Preprocessor.from_json(spec)
    for given in [pa.timestamp("ms", "Asia/Tokyo"), pa.timestamp("us", "UTC")]:
        matrix = pre.transform({"t": pa.array([moment], given)}, 1)
        np.testing.assert_array_equal(matrix[0], [2025, 1, 1, 8, 2, moment.timestamp()])


def test_codes_keep_nulls_and_unseen_as_nan() -> None:
    table = pa.table({"c": ["b", "a", None, "b"], "n": pa.array([1, None, 3, 4], pa.int8())})
    pre = roundtrip(fit(table, encoding="codes"))
    assert pre.features[0] == Feature("c", "string", ("a", "b"))
    assert pre.categorical_indices == [0]
    new = {"c": pa.array(["a", "zzz", None, "b"]), "n": pa.array([1.5, None, 0, 2])}
    matrix = pre.transform(new, 4)
    np.testing.assert_array_equal(matrix[:, 0], [0, np.nan, np.nan, 1])
    np.testing.assert_array_equal(matrix[:, 1], [1.5, np.nan, 0, 2])
    assert matrix.flags.f_contiguous


def test_onehot_standardises_numbers_and_zeroes_unseen_categories() -> None:
    table = pa.table(
        {"c": ["b", "a", None, "b"], "n": [1.0, None, 3.0, 5.0], "f": [True, False, True, None]}
    )
    pre = roundtrip(fit(table, encoding="onehot"))
    assert pre.output_names == ["c=a", "c=b", "n", "f"]
    assert pre.categorical_indices == []
    matrix = pre.transform(columns(table), 4)
    np.testing.assert_array_equal(matrix[:, :2], [[0, 1], [1, 0], [0, 0], [0, 1]])
    n = matrix[:, 2]
    assert n[1] == 0.0  # the NULL took the mean
    np.testing.assert_allclose(n[[0, 2, 3]], (np.array([1, 3, 5]) - 3) / np.std([1, 3, 5]))
    unseen = pre.transform({"c": pa.array(["q"]), "n": pa.array([3.0]), "f": pa.nulls(1)}, 1)
    np.testing.assert_array_equal(unseen[0, :3], [0, 0, 0])


def test_constant_and_all_null_columns_do_not_divide_by_zero() -> None:
    table = pa.table({"k": [2.0, 2.0], "z": pa.array([None, None], pa.float64())})
    matrix = fit(table, encoding="onehot").transform(columns(table), 2)
    np.testing.assert_array_equal(matrix, np.zeros((2, 2)))


@pytest.mark.parametrize(
    "type_",
    [pa.list_(pa.int64()), pa.struct([("a", pa.int64())]), pa.binary(), pa.time64("us")],
)
def test_unsupported_types_name_the_column(type_: pa.DataType) -> None:
    table = pa.table({"ok": [1.0], "bad": pa.nulls(1, type_)})
    assert kind_of(type_) is None
    with pytest.raises(UnsupportedColumnType, match=re.escape(f"'bad' has type {type_}")) as info:
        fit(table, encoding="codes")
    assert info.value.column == "bad"


def test_compatibility_groups() -> None:
    assert compatible("numeric", pa.decimal128(5, 2))
    assert compatible("numeric", pa.uint16())
    assert compatible("category", pa.dictionary(pa.int8(), pa.large_string()))
    assert not compatible("date", pa.timestamp("ns"))  # the time of day would be dropped
    assert compatible("timestamp", pa.date32())
    assert compatible("bool", pa.null())
    assert not compatible("numeric", pa.bool_())
    assert not compatible("bool", pa.int8())
    assert not compatible("category", pa.int64())
    assert not compatible("date", pa.string())


def test_a_foreign_spec_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown preprocessing spec"):
        Preprocessor.from_json({"version": 99, "encoding": "codes", "columns": []})
