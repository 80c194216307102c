"""The training table checked against the options, and its target and rows prepared.

:func:`~sqlml.udfs.train.train` resolves the target and excluded columns here, infers and
checks the task against the target's type, encodes the target (float values or class
codes) and splits the rows into training and holdout sets.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sqlml.catalog.entities import Label
from sqlml.errors import InvalidOption, TrainingError, UnsupportedColumnType
from sqlml.udfs import preprocess
from sqlml.udfs.options import Options


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
        return pc.cast(column, pa.float64()).to_numpy(), ()
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
    stratify = None
    if task == "classification":
        n_test = math.ceil(opts.test_size * n)
        if np.bincount(y, minlength=k).min() >= 2 and n_test >= k and n - n_test >= k:
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
