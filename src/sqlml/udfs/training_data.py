"""The training table checked against the options, and its target and rows prepared.

:func:`~sqlml.udfs.train.train` resolves the target and excluded columns here, infers and
checks the task against the target's type, checks the columns' names and values, encodes
the target (float values or class codes) and splits the rows into training and holdout sets.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sqlml.catalog.entities import Label
from sqlml.errors import (
    DuplicateColumn,
    InvalidOption,
    NonFiniteValues,
    TrainingError,
    UnsupportedColumnType,
)
from sqlml.udfs import preprocess
from sqlml.udfs.options import Options


def check_unique_names(name: str, table: pa.Table) -> None:
    """Raise :class:`DuplicateColumn` if two columns have the same name, ignoring case
    (SQL engines treat names differing only in case as one)."""
    seen: dict[str, list[str]] = {}
    for column in table.column_names:
        seen.setdefault(column.lower(), []).append(column)
    for names in seen.values():
        if len(names) > 1:
            raise DuplicateColumn(name, names[0], names)


def check_target_values(name: str, target: str, column: pa.ChunkedArray) -> None:
    """Raise :class:`NonFiniteValues` if a float target holds NaN or infinite values."""
    if pa.types.is_floating(column.type):
        bad = _non_finite(column)
        if bad:
            raise NonFiniteValues(
                name, target, bad, "target",
                "leave those rows out of the query, or make the values NULL "
                "(rows whose target is NULL are left out of training)",
            )  # fmt: skip


def check_finite_features(
    name: str, table: pa.Table, features: Sequence[str], algorithm: str
) -> None:
    """Raise :class:`NonFiniteValues` if a float feature holds infinite values, which the
    scikit-learn models cannot take (NaN is a missing value, like NULL)."""
    for feature in features:
        column = table.column(feature)
        if pa.types.is_floating(column.type):
            bad = pc.sum(pc.is_inf(column)).as_py() or 0
            if bad:
                raise NonFiniteValues(
                    name, feature, bad, "feature",
                    f"algorithm {algorithm!r} cannot use them: leave those rows "
                    "out, make them NULL (which is imputed), or use algorithm = 'lightgbm'",
                    what="infinite",
                )  # fmt: skip


def check_float32_range(name: str, target: str, y: np.ndarray) -> None:
    """Raise :class:`TrainingError` if a regression target is beyond what LightGBM takes:
    it keeps labels as float32, so larger magnitudes would become infinite."""
    limit = float(np.finfo(np.float32).max)
    if y.size and float(np.abs(y).max()) > limit:
        raise TrainingError(
            name,
            f"the target {target!r} has values beyond +/-{limit:.3g}, which LightGBM cannot "
            "take (it keeps targets as 32-bit floats); scale the target down, e.g. divide it "
            "by a power of ten, or use algorithm = 'linear' or 'random_forest'",
        )


def _non_finite(column: pa.ChunkedArray) -> int:
    bad = pc.or_(pc.is_nan(column), pc.is_inf(column))
    return int(pc.sum(bad).as_py() or 0)


def resolve_column(table: pa.Table, column: str, option: str) -> str:
    """The table's column called ``column``: exactly, else the one case-insensitive match."""
    if column in table.column_names:
        return column
    matches = [c for c in table.column_names if c.lower() == column.lower()]
    if len(matches) == 1:
        return str(matches[0])
    raise InvalidOption(
        option,
        f"there is no column {column!r}; the columns are {', '.join(table.column_names)}",
    )


def infer_task(target: str, type_: pa.DataType) -> str:
    """The task a target implies when no ``task`` option is given."""
    if pa.types.is_integer(type_):
        raise InvalidOption(
            "task",
            f"the target {target!r} is an integer column ({type_}), which can be classes or "
            "a quantity: set task = 'classification' or task = 'regression'",
        )
    if pa.types.is_floating(type_) or pa.types.is_decimal(type_):
        return "regression"
    if preprocess.kind_of(type_) in (preprocess.CATEGORY, preprocess.BOOL):
        return "classification"
    raise UnsupportedColumnType(target, str(type_), "a target must be a number, string or bool")


def check_target_type(target: str, type_: pa.DataType, task: str) -> None:
    """Raise :class:`UnsupportedColumnType` unless the target's type suits the task."""
    kind = preprocess.kind_of(type_)
    if task == "regression" and kind != preprocess.NUMERIC:
        raise UnsupportedColumnType(
            target, str(type_), "a regression target must be numeric; use task = 'classification'"
        )
    if task == "classification" and (
        kind not in (preprocess.NUMERIC, preprocess.BOOL, preprocess.CATEGORY)
        or pa.types.is_decimal(type_)
    ):
        raise UnsupportedColumnType(
            target,
            str(type_),
            "a classification target must be a string, bool, integer or float; cast it",
        )


def encode_target(column: pa.ChunkedArray, task: str) -> tuple[np.ndarray, tuple[Label, ...]]:
    """Regression: the float64 values. Classification: codes 0..k-1 and the sorted labels."""
    if task == "regression":
        # Unsafe: integers beyond 2**53 and wide decimals round to the nearest float.
        return pc.cast(column, pa.float64(), safe=False).to_numpy(), ()
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    labels = pc.unique(column).sort()
    codes = pc.index_in(column, value_set=labels).to_numpy()
    return codes.astype(np.int64), tuple(labels.to_pylist())


def split_rows(
    name: str, y: np.ndarray, k: int, task: str, opts: Options
) -> tuple[np.ndarray, np.ndarray]:
    """Row positions of the training and holdout sets (stratified when possible)."""
    from sklearn.model_selection import train_test_split

    n = len(y)
    n_test = math.ceil(opts.test_size * n)
    if n_test < 1 or n - n_test < 1:
        raise TrainingError(
            name,
            f"{n} labelled row(s) are too few to hold out test_size = {opts.test_size} and "
            "keep rows to train on; add rows or change test_size",
        )
    stratify = None
    if (
        task == "classification"
        and np.bincount(y, minlength=k).min() >= 2
        and n_test >= k
        and n - n_test >= k
    ):
        stratify = y
    try:
        train_rows, test_rows = train_test_split(
            np.arange(n), test_size=opts.test_size, random_state=opts.seed, stratify=stratify
        )
    except ValueError as exc:
        raise TrainingError(
            name, f"{n} rows are too few to hold out test_size = {opts.test_size}: {exc}"
        ) from exc
    if task == "classification" and np.unique(y[train_rows]).size < k:
        raise TrainingError(
            name, "some classes have too few rows to appear in the training split; "
            "add rows or lower test_size",
        )  # fmt: skip
    return np.sort(train_rows), np.sort(test_rows)
