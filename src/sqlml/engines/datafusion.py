"""DataFusion, through its Python API. The only module that imports datafusion.

DataFusion's Python scalar functions have exact signatures (no "any" argument, no
varargs), so there is no untyped ``predict``. Instead the session binds one function per
model version (:meth:`DataFusionEngine.version_function`): its arguments are the model's
features in signature order, each typed by the feature's kind, and the front end rewrites
``predict('churn', *)`` into ``__sqlml_predict_churn_3_<sha>("age", "plan", ...)``.
DataFusion's own implicit casts then carry compatible columns to those types (integers
and decimals to float64, ``Utf8View``/``LargeUtf8``/dictionaries to ``Utf8``, timestamps
of any unit and zone and dates to nanosecond UTC timestamps); a column it cannot cast (text for a
number, a timestamp for a date) is reported as :class:`~sqlml.errors.FeatureTypeMismatch`
naming the feature. DataFusion casts anything to text, and text to dates and timestamps,
so each text, date and timestamp feature's actual column type is passed along too
(``arrow_typeof(column)``, see :meth:`type_probes`) and checked against the one rule both
engines follow (:func:`sqlml.udfs.preprocess.compatible`): a number given for a text
feature, or text for a timestamp, is refused as it is on DuckDB.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import datafusion
import pyarrow as pa
from datafusion.object_store import LocalFileSystem
from sqlglot import exp

from sqlml.engines.base import (
    Engine,
    HostAccess,
    Interruptible,
    PredictKind,
    RestrictsHostAccess,
    ServesQualifiedStreams,
)
from sqlml.engines.binding import Binding, argument_call
from sqlml.errors import (
    ColumnNotFound,
    ConfigError,
    FeatureTypeMismatch,
    HostAccessDenied,
    QueryError,
    SqlmlError,
    StatementCancelled,
    TableNotFound,
)
from sqlml.udfs import preprocess

if TYPE_CHECKING:
    from sqlml.catalog import Feature, ModelVersion
    from sqlml.udfs.predict import LoadedModel

BATCH_SIZE = 65_536
"""Rows per batch (DataFusion's default is 8192). A prediction function is called once
per batch, and larger batches amortise the per-call cost of building the model's input
matrix: see ``bench/bench_predict.py`` for the measured effect."""

_PROBA_TYPE = pa.map_(pa.string(), pa.float64())

#: The feature kinds a type DataFusion reports (by the name before any parenthesis) can feed.
_KINDS_OF_TYPE: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(
        [f"{sign}Int{bits}" for sign in ("", "U") for bits in (8, 16, 32, 64)]
        + [f"Float{bits}" for bits in (16, 32, 64)]
        + [f"Decimal{bits}" for bits in (32, 64, 128, 256)],
        (preprocess.NUMERIC,),
    ),
    "Boolean": (preprocess.BOOL,),
    **dict.fromkeys(["Utf8", "LargeUtf8", "Utf8View", "Dictionary"], (preprocess.CATEGORY,)),
    **dict.fromkeys(["Date32", "Date64"], (preprocess.DATE, preprocess.TIMESTAMP)),
    "Timestamp": (preprocess.TIMESTAMP,),
    "Null": preprocess.KINDS,
}

#: The feature kinds whose columns' real types the bound functions check themselves.
_PROBED_KINDS = (preprocess.CATEGORY, preprocess.DATE, preprocess.TIMESTAMP)

#: Arrow's names for DataFusion's names of common types, for error messages.
_ARROW_NAMES = {
    **{
        f"{sign}Int{bits}": f"{sign.lower()}int{bits}"
        for sign in ("", "U")
        for bits in (8, 16, 32, 64)
    },
    "Utf8": "string",
    "LargeUtf8": "large_string",
    "Utf8View": "string_view",
    "Boolean": "bool",
    "Float64": "double",
    "Float32": "float",
    "Date32": "date32[day]",
}


def argument_type(feature: Feature) -> pa.DataType:
    """The type of a feature's argument in a bound function.

    One type per kind, so that DataFusion's implicit casts accept every column type of
    that kind: float64 for numbers (the model is fed float64 anyway), ``Utf8`` for
    categories, date32 for dates, nanosecond UTC timestamps for timestamps (DataFusion
    casts a timestamp of any unit and zone, and a naive one, to UTC; sqlml computes
    calendar parts in UTC on both engines, see :mod:`sqlml.udfs.arrow_types`).
    """
    declared = feature.arrow_type
    kind = preprocess.kind_of(declared)
    if kind == preprocess.NUMERIC:
        return pa.float64()
    if kind == preprocess.BOOL:
        return pa.bool_()
    if kind == preprocess.CATEGORY:
        return pa.string()
    if kind == preprocess.DATE:
        return pa.date32()
    if kind == preprocess.TIMESTAMP:
        return pa.timestamp("ns", tz="UTC")
    raise QueryError("datafusion", f"feature {feature.name!r} has unsupported type {declared}")


class _Bound:
    """A function registered for one model version."""

    __slots__ = ("features", "ref")

    def __init__(self, ref: str, features: tuple[Feature, ...]) -> None:
        self.ref = ref
        self.features = features


class DataFusionEngine(Engine, ServesQualifiedStreams, RestrictsHostAccess, Interruptible):
    """DataFusion through its Python API; one ``SessionContext`` per engine object.

    Data lives in memory (registered Arrow data, ``CREATE TABLE``) or in files that
    queries read (``CREATE EXTERNAL TABLE ... STORED AS PARQUET LOCATION '...'``,
    :meth:`register_file`); DataFusion has no database file.

    Args:
        batch_size: rows per batch, and so the most rows a prediction function gets
            per call.
    """

    name: ClassVar[str] = "datafusion"
    SQLGLOT_DIALECT: ClassVar[str] = "datafusion"
    # Python functions take exactly the declared argument types (no untyped native
    # ``predict('m', t)``, so predict goes through the front end): calls bind a function
    # per model version (:meth:`bind_predict`).

    def __init__(self, *, batch_size: int = BATCH_SIZE) -> None:
        config = (
            datafusion.SessionConfig()
            .with_batch_size(batch_size)
            .with_information_schema(True)  # SHOW TABLES, DESCRIBE t, information_schema
        )
        self.ctx = datafusion.SessionContext(config)
        self.batch_size = batch_size
        self._bound: dict[str, _Bound] = {}
        self._lock = threading.Lock()
        self._failure: SqlmlError | None = None
        self._options: datafusion.SQLOptions | None = None
        self._cancelled: str | None = None
        """Why statements are stopped (:meth:`interrupt`), until :meth:`resume`."""
        self._scratch: str | None = None

    def restrict_host_access(self, access: HostAccess) -> None:
        # DataFusion reaches files through its object store for file:// alone: a local
        # store rooted at the one allowed directory (or an empty private one) confines
        # every path to it, ``LOCATION '/etc/passwd'`` included; SQLOptions turn off DML
        # (INSERT, COPY) when that directory is only readable.
        directories = {*access.readable, *access.writable}
        if len(directories) > 1:
            raise QueryError(
                self.name,
                "a DataFusion server serves at most one directory (one --data-dir or "
                f"--writable-dir); got {', '.join(sorted(map(str, directories)))}",
            )
        if directories:
            root = str(next(iter(directories)))
        else:
            root = self._scratch = tempfile.mkdtemp(prefix="sqlml-datafusion-")
        try:
            self.ctx.register_object_store("file://", LocalFileSystem(prefix=root), None)
        except Exception as exc:
            raise QueryError(self.name, f"cannot restrict host access: {exc}") from exc
        read_only = bool(access.readable) and not access.writable
        self._options = datafusion.SQLOptions().with_allow_dml(not read_only)

    def interrupt(self, reason: str) -> None:
        # DataFusion's Python API cannot cancel a plan from another thread: the statement
        # stops at its next batch, or at its next call of a prediction function.
        with self._lock:
            self._cancelled = reason

    def resume(self) -> None:
        with self._lock:
            self._cancelled = None

    def _check_cancelled(self) -> None:
        with self._lock:
            cancelled = self._cancelled
        if cancelled is not None:
            raise StatementCancelled(self.name, cancelled)

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        try:
            return self._frame(sql, params).to_arrow_table()
        except Exception as exc:  # datafusion raises Exception and ValueError, unexported
            raise self._error(exc, sql) from exc

    def _frame(self, sql: str, params: Sequence[Any] | None) -> datafusion.DataFrame:
        """Start a statement: its DataFrame, run when collected or streamed."""
        with self._lock:
            self._failure = None
        self._check_cancelled()
        values = {str(i): value for i, value in enumerate(params or (), start=1)}
        return self.ctx.sql(sql, self._options, param_values=values or None)

    def _error(self, exc: Exception, sql: str) -> SqlmlError:
        """The sqlml error for a failed statement: a function's own error, a feature of
        the wrong type, else a QueryError."""
        if isinstance(exc, SqlmlError):
            return exc
        with self._lock:
            cause, cancelled = self._failure, self._cancelled
        if cancelled is not None:
            return StatementCancelled(self.name, cancelled)
        if cause is not None:
            return cause
        message = str(exc)
        return self._type_mismatch(message) or _query_error(message, sql)

    def execute_reader(self, sql: str, params: Sequence[Any] | None = None) -> pa.RecordBatchReader:
        # DataFusion runs the plan as the stream is read (its Arrow C stream export).
        try:
            reader = pa.RecordBatchReader.from_stream(self._frame(sql, params))
        except Exception as exc:
            raise self._error(exc, sql) from exc
        return pa.RecordBatchReader.from_batches(reader.schema, self._batches(reader, sql))

    def _batches(self, reader: pa.RecordBatchReader, sql: str) -> Iterator[pa.RecordBatch]:
        try:
            for batch in reader:
                self._check_cancelled()
                yield batch
        except Exception as exc:
            raise self._error(exc, sql) from exc
        finally:
            reader.close()

    def register(self, name: str, data: object) -> None:
        table = _to_arrow(data)
        self._replace(name)
        batches = table.to_batches() or [pa.RecordBatch.from_pylist([], schema=table.schema)]
        try:
            self.ctx.register_record_batches(name, [batches])
        except Exception as exc:
            raise QueryError(self.name, f"cannot register {name!r}: {exc}") from exc

    def register_file(
        self, name: str, path: str | os.PathLike[str], format: Literal["parquet", "csv"]
    ) -> None:
        self._replace(name)
        try:
            if format == "parquet":
                self.ctx.register_parquet(name, os.fspath(path))
            else:
                self.ctx.register_csv(name, os.fspath(path))
        except Exception as exc:
            raise QueryError(self.name, f"cannot read {format} {path}: {exc}") from exc

    def unregister(self, name: str) -> None:
        self.ctx.deregister_table(name)

    def register_stream(
        self, schema: str, table: str, data: pa.RecordBatchReader | pa.Table
    ) -> None:
        # The stream is read into memory: DataFusion scans a registered table per
        # partition and may plan it more than once.
        if schema in ("public", "information_schema"):
            raise QueryError(
                self.name,
                f"cannot attach a source as {schema!r}: DataFusion has a schema of that name; "
                "choose another alias",
            )
        try:
            self.ctx.sql(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        except Exception as exc:
            raise QueryError(self.name, f"cannot create schema {schema}: {exc}") from exc
        self.register(f"{schema}.{table}", data)

    def unregister_stream(self, schema: str, table: str) -> None:
        self.ctx.deregister_table(f"{schema}.{table}")

    def _replace(self, name: str) -> None:
        """Registering a name again replaces the relation, as in DuckDB."""
        if self.ctx.table_exist(name):
            self.ctx.deregister_table(name)

    def bind_predict(self, version: ModelVersion, model: LoadedModel, kind: PredictKind) -> Binding:
        """A function bound to the version, called with one argument per feature in
        signature order, then ``arrow_typeof(<column>)`` of each text feature: DataFusion
        casts any column to Utf8 for a text argument, so the function checks the real type
        itself."""
        function = self.version_function(version, model, proba=kind == "predict_proba")
        names = tuple(feature.name for feature in model.features)
        return argument_call(function, version.ref, names, _arrow_typeof, self.type_probes(model))

    def version_function(
        self, version: ModelVersion, model: LoadedModel, proba: bool = False
    ) -> str:
        kind = "predict_proba" if proba else "predict"
        # Lower case: DataFusion folds unquoted names. The SHA-256 tells apart a model
        # dropped and trained again under the same name and version number.
        name = f"__sqlml_{kind}_{version.model}_{version.version}_{version.sha256[:12]}".lower()
        if name in self._bound:
            return name
        features = model.features
        names = [feature.name for feature in features]
        probed = [f for f in features if f.name in self.type_probes(model)]
        return_type = _PROBA_TYPE if proba else model.output_type

        def predict(*columns: pa.Array) -> pa.Array:
            try:
                self._check_cancelled()
                for feature, types in zip(probed, columns[len(names) :], strict=True):
                    _check_kind(version.ref, feature, types)
                batch = pa.RecordBatch.from_arrays(list(columns[: len(names)]), names=names)
                return model.predict_proba(batch) if proba else model.predict(batch)
            except SqlmlError as exc:
                with self._lock:
                    self._failure = exc
                raise

        function = datafusion.udf(
            predict,
            [argument_type(feature) for feature in features] + [pa.string()] * len(probed),
            return_type,
            "immutable",  # a version's predictions depend only on its inputs
            name=name,
        )
        self.ctx.register_udf(function)
        self._bound[name] = _Bound(version.ref, features)
        return name

    def type_probes(self, model: LoadedModel) -> tuple[str, ...]:
        # DataFusion casts any column to Utf8 for a text argument, and Utf8 to dates and
        # timestamps: the function checks those features' real types itself.
        return tuple(
            f.name for f in model.features if preprocess.kind_of(f.arrow_type) in _PROBED_KINDS
        )

    def _type_mismatch(self, message: str) -> FeatureTypeMismatch | None:
        """The feature a "Failed to coerce arguments" planning error is about, if it is
        about a bound function: the first argument whose type is not of its kind."""
        marker = "No function matches the given name and argument types '"
        _, sep, rest = message.partition(marker)
        if not sep:
            return None
        call = rest.split("'", 1)[0]
        function, _, arguments = call.partition("(")
        bound = self._bound.get(function)
        if bound is None:
            return None
        actual = _split_types(arguments.removesuffix(")"))
        for feature, type_name in zip(bound.features, actual, strict=False):
            kind = preprocess.kind_of(feature.arrow_type)
            if kind not in _KINDS_OF_TYPE.get(type_name.split("(", 1)[0], ()):
                shown = _ARROW_NAMES.get(type_name, type_name)
                return FeatureTypeMismatch(bound.ref, feature.name, feature.type, shown)
        return None

    def close(self) -> None:
        for name in self._bound:
            self.ctx.deregister_udf(name)
        self._bound.clear()
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)


def _check_kind(ref: str, feature: Feature, types: pa.Array) -> None:
    """Refuse a column of a type the feature does not take (``types`` is its arrow_typeof)."""
    if len(types) == 0:
        return
    type_name = str(types[0])
    kind = preprocess.kind_of(feature.arrow_type)
    if kind not in _KINDS_OF_TYPE.get(type_name.split("(", 1)[0], ()):
        shown = _ARROW_NAMES.get(type_name, type_name)
        raise FeatureTypeMismatch(ref, feature.name, feature.type, shown)


def _split_types(text: str) -> list[str]:
    """Split ``Float64, Struct("a": Int64, "b": Utf8), Utf8`` at its top-level commas."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char in "([<":
            depth += 1
        elif char in ")]>":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return [part for part in parts if part]


def _to_arrow(data: object) -> pa.Table:
    """A pyarrow Table from a Table, RecordBatch, RecordBatchReader, or a pandas or polars
    DataFrame (or anything else exporting an Arrow stream)."""
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if isinstance(data, pa.RecordBatchReader):
        return data.read_all()
    module = type(data).__module__.split(".", 1)[0]
    if module == "pandas":
        return pa.Table.from_pandas(data, preserve_index=False)
    if hasattr(data, "__arrow_c_stream__"):
        return pa.table(data)
    raise QueryError(
        "datafusion",
        f"cannot register a {type(data).__name__}: expected a pyarrow Table or "
        "RecordBatchReader, or a pandas or polars DataFrame",
    )


def open_engine(database: str | None = None) -> DataFusionEngine:
    """Open a DataFusion engine; ``database`` must be None (or ``:memory:``).

    Raises:
        ConfigError: a database file was given; DataFusion has none.
    """
    if database not in (None, "", ":memory:"):
        raise ConfigError(
            "database",
            f"the datafusion engine has no database file (got {database!r}); register "
            "data (Session.register, Session.read_parquet, Session.read_csv) or use "
            "CREATE EXTERNAL TABLE ... STORED AS PARQUET LOCATION '...' instead",
        )
    return DataFusionEngine()


def _arrow_typeof(value: exp.Expr) -> exp.Expr:
    """``arrow_typeof(value)``: DataFusion's name for a value's Arrow type."""
    return exp.Anonymous(this="arrow_typeof", expressions=[value])


def _query_error(message: str, sql: str) -> QueryError:
    """A failed statement's error, typed when DataFusion's message says what is missing."""
    # Refused by the SQLOptions of a served session: DML not supported: COPY
    if "DML not supported" in message:
        return HostAccessDenied("datafusion", message, sql)
    # The planner says: table 'datafusion.public.x' not found
    _, sep, rest = message.partition("table '")
    name, quote, tail = rest.partition("'")
    if sep and quote and tail.startswith(" not found"):
        return TableNotFound("datafusion", message, sql, name.rsplit(".", 1)[-1])
    # Schema error: No field named x3. / No field named t."X3".
    _, sep, rest = message.partition("No field named ")
    column = rest.split("\n", 1)[0].removesuffix(".").split(". ", 1)[0].rsplit(".", 1)[-1]
    if sep and column.strip('"'):
        return ColumnNotFound("datafusion", message, sql, column.strip('"'))
    return QueryError("datafusion", message, sql)
