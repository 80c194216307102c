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


#: An integer target with at most this many distinct values, and no task option, is taken
#: for classes; with more, for a quantity.
MAX_INFERRED_CLASSES = 10


def infer_task(target: str, column: pa.ChunkedArray) -> tuple[str, str]:
    """The task a target implies when no ``task`` option is given, and why.

    Text and booleans are classes; floats and decimals a quantity; an integer column is
    classes when it has at most :data:`MAX_INFERRED_CLASSES` distinct values, else a
    quantity.

    Returns:
        ``(task, reason)``: the reason is ``""`` unless an integer target decided it, then
        a sentence saying so and how to choose the other task.
    """
    type_ = column.type
    if pa.types.is_integer(type_):
        distinct = int(pc.count_distinct(column, mode="only_valid").as_py())
        if distinct <= MAX_INFERRED_CLASSES:
            return "classification", (
                f"the target {target!r} is an integer column with {distinct} distinct "
                f"value(s) (at most {MAX_INFERRED_CLASSES}), so task = 'classification' was "
                "inferred; set task = 'regression' to predict it as a quantity"
            )
        return "regression", (
            f"the target {target!r} is an integer column with {distinct} distinct values "
            f"(more than {MAX_INFERRED_CLASSES}), so task = 'regression' was inferred; set "
            "task = 'classification' to predict it as classes"
        )
    if pa.types.is_floating(type_) or pa.types.is_decimal(type_):
        return "regression", ""
    if preprocess.kind_of(type_) in (preprocess.CATEGORY, preprocess.BOOL):
        return "classification", ""
    raise UnsupportedColumnType(target, str(type_), "a target must be a number, string or bool")


#: A text feature has "very many" distinct values (likely an id or free text, which as a
#: category only memorises rows) beyond this many, or when more than half of the training
#: rows (and more than :data:`_MANY_CATEGORIES_FLOOR`) have distinct values.
MANY_CATEGORIES = 1000
_MANY_CATEGORIES_FLOOR = 20


def high_cardinality(categories: int, rows: int) -> bool:
    """Whether a text feature with ``categories`` distinct values over ``rows`` training
    rows is likely an id or free text rather than a category."""
    return categories > MANY_CATEGORIES or (
        categories > _MANY_CATEGORIES_FLOOR and categories > rows / 2
    )


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
    """Row positions of the training and holdout sets (stratified when possible); with
    ``test_size = 0`` every row trains and the holdout is empty."""
    from sklearn.model_selection import train_test_split

    n = len(y)
    if opts.test_size == 0:
        return np.arange(n), np.arange(0)
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
