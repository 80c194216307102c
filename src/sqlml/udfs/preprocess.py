"""Turn Arrow feature columns into the float64 matrix a model is fed.

A :class:`Preprocessor` is fitted on the training table and stored with the model as a
plain JSON dict (:meth:`Preprocessor.to_json`), so prediction applies exactly what training
did. Two encodings:

* ``codes`` (LightGBM): categorical columns become integer codes into the sorted training
  categories (unseen or NULL -> NaN) for LightGBM's native ``categorical_feature``; NULLs
  stay NaN, nothing is scaled.
* ``onehot`` (scikit-learn models): categorical columns become one 0/1 column per training
  category (unseen or NULL -> all zeros); the other columns have NULLs replaced by their
  training mean and are standardised with the training mean and standard deviation.

Column kinds: integers, floats and decimals are numbers; booleans are 0/1; strings and
dictionary-encoded strings are categories; dates become (year, month, day, day of week, day
of year, days since epoch); timestamps become (year, month, day, hour, day of week, seconds
since epoch), with calendar parts in UTC (a zoned timestamp is its UTC instant).
Every column is first turned into its plain type (:mod:`sqlml.udfs.arrow_types`): views,
large types, dictionaries, decimals and zones are all accepted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sqlml.catalog.entities import Feature, arrow_type_from_string
from sqlml.errors import UnsupportedColumnType
from sqlml.udfs.arrow_types import plain, plain_table

ENCODINGS = ("codes", "onehot")
SPEC_VERSION = 1

NUMERIC, BOOL, CATEGORY, DATE, TIMESTAMP = "numeric", "bool", "category", "date", "timestamp"
KINDS = (NUMERIC, BOOL, CATEGORY, DATE, TIMESTAMP)

DATE_PARTS = ("year", "month", "day", "day_of_week", "day_of_year", "days_since_epoch")
TIMESTAMP_PARTS = ("year", "month", "day", "hour", "day_of_week", "seconds_since_epoch")

_UNITS_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}

ArrowColumn: TypeAlias = pa.Array | pa.ChunkedArray


def _is_string(type_: pa.DataType) -> bool:
    return bool(
        pa.types.is_string(type_) or pa.types.is_large_string(type_) or type_ == pa.string_view()
    )


def kind_of(type_: pa.DataType) -> str | None:
    """The column kind of an Arrow type, or ``None`` if sqlml cannot use it as a feature."""
    if pa.types.is_dictionary(type_):
        return CATEGORY if _is_string(type_.value_type) else None
    if pa.types.is_integer(type_) or pa.types.is_floating(type_) or pa.types.is_decimal(type_):
        return NUMERIC
    if pa.types.is_boolean(type_):
        return BOOL
    if _is_string(type_):
        return CATEGORY
    if pa.types.is_date(type_):
        return DATE
    if pa.types.is_timestamp(type_):
        return TIMESTAMP
    return None


def compatible(kind: str, type_: pa.DataType) -> bool:
    """Whether a column of ``type_`` can feed a feature of ``kind``.

    Numbers go with numbers, strings with strings, booleans with booleans; a date goes
    with a date or a timestamp feature (as that day's midnight), a timestamp only with a
    timestamp feature (for a date feature its time of day would be dropped unseen: cast
    it). A NULL-typed column (``pa.null()``) goes with anything as all NULLs. Both engines
    follow this rule (DataFusion through its bound functions' argument types).

    >>> compatible(DATE, pa.timestamp("us")), compatible(TIMESTAMP, pa.date32())
    (False, True)
    """
    if pa.types.is_null(type_):
        return True
    actual = kind_of(type_)
    if kind == TIMESTAMP:
        return actual in (DATE, TIMESTAMP)
    return actual == kind


def type_text(type_: pa.DataType) -> str:
    """How a feature's type is recorded: pyarrow's text, dictionaries as their value type."""
    return str(type_.value_type if pa.types.is_dictionary(type_) else type_)


@dataclass(frozen=True, slots=True)
class _Column:
    name: str
    type: str
    kind: str
    categories: tuple[str, ...] | None
    width: int


def _chunks(column: ArrowColumn) -> list[pa.Array]:
    return list(column.chunks) if isinstance(column, pa.ChunkedArray) else [column]


def _float(array: pa.Array) -> np.ndarray:
    """A float64-convertible NumPy view of a numeric array, NULLs as NaN."""
    if pa.types.is_decimal(array.type) or pa.types.is_boolean(array.type):
        array = pc.cast(array, pa.float64())
    # Zero-copy for numbers without NULLs; integers with NULLs come back as float64 + NaN.
    return np.asarray(array.to_numpy(zero_copy_only=False))


def _codes(array: pa.Array, categories: pa.Array) -> np.ndarray:
    """Positions of the values in ``categories`` as float64; unseen and NULL are NaN."""
    if pa.types.is_dictionary(array.type):
        codes = _codes(array.dictionary, categories)
        indices = array.indices.to_numpy(zero_copy_only=False)
        if array.indices.null_count:
            out = np.full(len(array), np.nan)
            valid = ~np.isnan(indices)
            out[valid] = codes[indices[valid].astype(np.intp)]
            return out
        return np.asarray(codes[indices])
    if array.type == pa.string_view():
        array = pc.cast(array, pa.string())
    positions = pc.index_in(array, value_set=categories.cast(array.type))
    return np.asarray(positions.to_numpy(zero_copy_only=False), dtype=np.float64)


class Preprocessor:
    """A fitted preprocessing spec: Arrow columns in, float64 matrix out.

    Build one with :func:`fit` at training time or :meth:`from_json` from a stored spec.
    """

    def __init__(self, spec: Mapping[str, Any]) -> None:
        """Load a spec written by :meth:`to_json`.

        Raises:
            ValueError: if the spec is not one this module wrote.
        """
        if spec.get("version") != SPEC_VERSION or spec.get("encoding") not in ENCODINGS:
            raise ValueError(f"unknown preprocessing spec (version {spec.get('version')!r})")
        self.encoding: str = spec["encoding"]
        columns = []
        for entry in spec["columns"]:
            kind = entry["kind"]
            if kind not in KINDS:
                raise ValueError(f"unknown column kind {kind!r}")
            categories = entry.get("categories")
            if kind == CATEGORY:
                categories = tuple(str(c) for c in categories)
                width = len(categories) if self.encoding == "onehot" else 1
            elif kind == DATE:
                width = len(DATE_PARTS)
            elif kind == TIMESTAMP:
                width = len(TIMESTAMP_PARTS)
            else:
                width = 1
            columns.append(_Column(entry["name"], entry["type"], kind, categories, width))
        self.columns = tuple(columns)
        self._categories = {
            c.name: pa.array(c.categories, pa.string()) for c in columns if c.categories is not None
        }
        self.center: np.ndarray | None = None
        self.scale: np.ndarray | None = None
        if "center" in spec:
            self.center = np.asarray(spec["center"], dtype=np.float64)
            self.scale = np.asarray(spec["scale"], dtype=np.float64)
            if self.center.shape != (self.width,) or self.scale.shape != (self.width,):
                raise ValueError("center/scale do not match the number of output columns")

    @classmethod
    def from_json(cls, spec: Mapping[str, Any]) -> Preprocessor:
        """The preprocessor a stored spec describes."""
        return cls(spec)

    def to_json(self) -> dict[str, Any]:
        """The spec as a JSON-serialisable dict (what the artifact stores)."""
        columns = []
        for c in self.columns:
            entry: dict[str, Any] = {"name": c.name, "type": c.type, "kind": c.kind}
            if c.categories is not None:
                entry["categories"] = list(c.categories)
            columns.append(entry)
        spec: dict[str, Any] = {
            "version": SPEC_VERSION,
            "encoding": self.encoding,
            "columns": columns,
        }
        if self.center is not None and self.scale is not None:
            spec["center"] = self.center.tolist()
            spec["scale"] = self.scale.tolist()
        return spec

    @property
    def width(self) -> int:
        """The number of columns of the output matrix."""
        return sum(c.width for c in self.columns)

    @property
    def features(self) -> tuple[Feature, ...]:
        """The model's input signature: one :class:`Feature` per input column."""
        return tuple(Feature(c.name, c.type, c.categories) for c in self.columns)

    @property
    def output_names(self) -> list[str]:
        """A name for every column of the output matrix (e.g. ``city=Paris``, ``d.year``)."""
        names: list[str] = []
        for c in self.columns:
            if c.kind == CATEGORY and self.encoding == "onehot":
                names.extend(f"{c.name}={cat}" for cat in c.categories or ())
            elif c.kind == DATE:
                names.extend(f"{c.name}.{part}" for part in DATE_PARTS)
            elif c.kind == TIMESTAMP:
                names.extend(f"{c.name}.{part}" for part in TIMESTAMP_PARTS)
            else:
                names.append(c.name)
        return names

    @property
    def categorical_indices(self) -> list[int]:
        """Output columns holding category codes (for LightGBM's ``categorical_feature``)."""
        if self.encoding != "codes":
            return []
        indices: list[int] = []
        position = 0
        for c in self.columns:
            if c.kind == CATEGORY:
                indices.append(position)
            position += c.width
        return indices

    def transform(self, columns: Mapping[str, ArrowColumn], num_rows: int) -> np.ndarray:
        """Build the model's float64 input matrix.

        Args:
            columns: an array per feature name, of a type :func:`compatible` with the
                feature's kind (the caller binds and checks names and types).
            num_rows: the number of rows.

        Returns:
            A Fortran-ordered ``(num_rows, width)`` float64 array.
        """
        out = self.raw(columns, num_rows)
        if self.center is not None and self.scale is not None:
            np.copyto(out, self.center, where=np.isnan(out))
            with np.errstate(over="ignore", invalid="ignore"):  # values near the limits
                out -= self.center
                out /= self.scale
        return out

    def raw(self, columns: Mapping[str, ArrowColumn], num_rows: int) -> np.ndarray:
        """The matrix before imputation and scaling (what ``codes`` models are fed)."""
        out = np.empty((num_rows, self.width), dtype=np.float64, order="F")
        position = 0
        for column in self.columns:
            block = out[:, position : position + column.width]
            start = 0
            for chunk in _chunks(columns[column.name]):
                chunk = plain(chunk, column.name)
                stop = start + len(chunk)
                self._fill(column, chunk, block[start:stop])
                start = stop
            if start != num_rows:
                raise ValueError(f"column {column.name!r} has {start} rows, expected {num_rows}")
            position += column.width
        return out

    def _fill(self, column: _Column, chunk: pa.Array, block: np.ndarray) -> None:
        onehot = column.kind == CATEGORY and self.encoding == "onehot"
        if pa.types.is_null(chunk.type):
            block[:] = 0.0 if onehot else np.nan
        elif column.kind in (NUMERIC, BOOL):
            block[:, 0] = _float(chunk)
        elif column.kind == CATEGORY:
            codes = _codes(chunk, self._categories[column.name])
            if onehot:
                block[:] = 0.0
                rows = np.flatnonzero(~np.isnan(codes))
                block[rows, codes[rows].astype(np.intp)] = 1.0
            else:
                block[:, 0] = codes
        elif column.kind == DATE:
            if not pa.types.is_date32(chunk.type):
                chunk = pc.cast(chunk, pa.date32())
            for j, part in enumerate(DATE_PARTS[:-1]):
                block[:, j] = _float(getattr(pc, part)(chunk))
            block[:, -1] = _float(chunk.view(pa.int32()))
        else:
            trained = arrow_type_from_string(column.type)
            if chunk.type != trained:
                chunk = pc.cast(chunk, trained, safe=False)
            for j, part in enumerate(TIMESTAMP_PARTS[:-1]):
                block[:, j] = _float(getattr(pc, part)(chunk))
            block[:, -1] = _float(chunk.view(pa.int64()))
            block[:, -1] /= _UNITS_PER_SECOND[trained.unit]


def _categories(column: pa.ChunkedArray) -> tuple[str, ...]:
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    if column.type != pa.string():
        column = column.cast(pa.string())
    unique = pc.unique(column).drop_null()
    return tuple(unique.sort().to_pylist())


def fit(table: pa.Table, *, encoding: str) -> Preprocessor:
    """Fit the preprocessing of every column of ``table``.

    Args:
        table: the feature columns of the training rows (no target, no excluded columns).
        encoding: ``"codes"`` for LightGBM, ``"onehot"`` for the scikit-learn models.

    Returns:
        The fitted :class:`Preprocessor`.

    Raises:
        UnsupportedColumnType: a column's type cannot be a feature.
    """
    if encoding not in ENCODINGS:
        raise ValueError(f"encoding must be one of {ENCODINGS}, got {encoding!r}")
    table = plain_table(table)
    columns: list[dict[str, Any]] = []
    for field in table.schema:
        kind = kind_of(field.type)
        if kind is None:
            raise UnsupportedColumnType(field.name, str(field.type))
        entry: dict[str, Any] = {"name": field.name, "type": type_text(field.type), "kind": kind}
        if kind == CATEGORY:
            entry["categories"] = list(_categories(table.column(field.name)))
        columns.append(entry)
    spec: dict[str, Any] = {"version": SPEC_VERSION, "encoding": encoding, "columns": columns}
    preprocessor = Preprocessor(spec)
    if encoding == "onehot":
        raw = preprocessor.raw(_by_name(table), table.num_rows)
        center, scale = np.zeros(preprocessor.width), np.ones(preprocessor.width)
        onehot = np.zeros(preprocessor.width, dtype=bool)
        onehot[_onehot_positions(preprocessor)] = True
        for j in np.flatnonzero(~onehot):
            center[j], scale[j] = _center_and_scale(raw[:, j])
        preprocessor.center, preprocessor.scale = center, scale
    return preprocessor


def _center_and_scale(column: np.ndarray) -> tuple[float, float]:
    """The mean and standard deviation of a column's finite values (NaN and infinities are
    left out), falling back to 0 and the largest magnitude where those overflow (values
    near the float64 limit) and to a scale of 1 for a constant column."""
    values = column[np.isfinite(column)]
    if not values.size:
        return 0.0, 1.0
    with np.errstate(over="ignore", invalid="ignore"):
        center, std = float(values.mean()), float(values.std())
    if not (math.isfinite(center) and math.isfinite(std)):
        return 0.0, float(np.abs(values).max())
    return center, std if std > 0 else 1.0


def _onehot_positions(preprocessor: Preprocessor) -> list[int]:
    positions: list[int] = []
    position = 0
    for c in preprocessor.columns:
        if c.kind == CATEGORY:
            positions.extend(range(position, position + c.width))
        position += c.width
    return positions


def _by_name(table: pa.Table) -> dict[str, pa.ChunkedArray]:
    return {name: table.column(i) for i, name in enumerate(table.column_names)}
