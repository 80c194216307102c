"""DuckDB, the default embedded engine. The only module that imports duckdb."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from duckdb.func import FunctionNullHandling, PythonUDFType

from sqlml.engines.base import Engine, ModelLoader
from sqlml.errors import QueryError, SqlmlError

if TYPE_CHECKING:
    from sqlml.catalog import Catalog

#: DuckDB's names for the Arrow types a prediction can have.
_DUCKDB_TYPES = {
    pa.string(): "VARCHAR",
    pa.large_string(): "VARCHAR",
    pa.bool_(): "BOOLEAN",
    pa.float64(): "DOUBLE",
    pa.float32(): "FLOAT",
    pa.int8(): "TINYINT",
    pa.int16(): "SMALLINT",
    pa.int32(): "INTEGER",
    pa.int64(): "BIGINT",
    pa.uint8(): "UTINYINT",
    pa.uint16(): "USMALLINT",
    pa.uint32(): "UINTEGER",
    pa.uint64(): "UBIGINT",
}
_PROBA_TYPE = "MAP(VARCHAR, DOUBLE)"


def duckdb_type(type_: pa.DataType) -> str:
    """DuckDB's name for an Arrow type a prediction can have."""
    try:
        return _DUCKDB_TYPES[type_]
    except KeyError:
        raise QueryError("duckdb", f"predictions of type {type_} are not supported") from None


class DuckDBEngine(Engine):
    """DuckDB through its Python API; one connection per engine object.

    A DuckDB connection serves one call at a time; open one engine per client session.
    """

    name: ClassVar[str] = "duckdb"
    SQLGLOT_DIALECT: ClassVar[str] = "duckdb"
    SUPPORTS_PYTHON_TABLE_FUNCTIONS: ClassVar[bool] = False
    """DuckDB's Python API cannot register table functions."""

    def __init__(
        self,
        database: str | None = None,
        *,
        connection: duckdb.DuckDBPyConnection | None = None,
    ) -> None:
        self.database = database
        try:
            self.con = connection or duckdb.connect(database or ":memory:")
        except duckdb.Error as exc:
            raise QueryError(self.name, f"cannot open database {database}: {exc}") from exc
        self._loader: ModelLoader | None = None
        self._functions: set[str] = set()
        self._failure = threading.local()

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        self._failure.error = None
        try:
            relation = self.con.sql(sql, params=params) if params else self.con.sql(sql)
            if relation is None:
                return pa.table({})
            return relation.to_arrow_table()
        except duckdb.Error as exc:
            cause: SqlmlError | None = getattr(self._failure, "error", None)
            if cause is not None:
                raise cause from exc
            raise QueryError(self.name, str(exc), sql) from exc

    def register(self, name: str, data: object) -> None:
        try:
            self.con.register(name, data)
        except duckdb.Error as exc:
            raise QueryError(self.name, f"cannot register {name!r}: {exc}") from exc

    def missing_column(self, error: QueryError) -> str | None:
        # DuckDB's binder says: Referenced column "x" not found in FROM clause!
        head, sep, rest = error.message.partition('Referenced column "')
        if not sep or "Binder Error" not in head:
            return None
        column, sep, _ = rest.partition('" not found')
        return column if sep else None

    def unregister(self, name: str) -> None:
        self.con.unregister(name)

    def install(self, loader: ModelLoader) -> None:
        self._loader = loader
        self._create("predict", "VARIANT", proba=False)
        self._create("predict_proba", _PROBA_TYPE, proba=True)

    def predict_function(self, output_type: pa.DataType, proba: bool = False) -> str:
        return_type = _PROBA_TYPE if proba else duckdb_type(output_type)
        name = "__sqlml_predict_proba" if proba else f"__sqlml_predict_{return_type.lower()}"
        if name not in self._functions:
            self._create(name, return_type, proba=proba)
        return name

    def _create(self, name: str, return_type: str, *, proba: bool) -> None:
        def udf(ref: pa.ChunkedArray, row: pa.ChunkedArray) -> pa.Array:
            try:
                return self._predict(ref, row, proba)
            except SqlmlError as exc:
                self._failure.error = exc
                raise

        if name in self._functions:
            self.con.remove_function(name)
        self.con.create_function(
            name,
            udf,
            parameters=None,
            return_type=return_type,
            type=PythonUDFType.ARROW,
            null_handling=FunctionNullHandling.SPECIAL,
            side_effects=False,
        )
        self._functions.add(name)

    def _predict(self, ref: pa.ChunkedArray, row: pa.ChunkedArray, proba: bool) -> pa.Array:
        if self._loader is None:
            raise QueryError(self.name, "sqlml's functions are not installed")
        refs = ref.combine_chunks() if isinstance(ref, pa.ChunkedArray) else ref
        distinct = pc.unique(refs)
        if len(distinct) == 1 and refs.null_count == 0:
            model = self._loader(str(distinct[0]))
            return model.predict_proba(row) if proba else model.predict(row)
        return self._predict_mixed(refs, row, proba)

    def _predict_mixed(self, refs: pa.Array, row: pa.ChunkedArray, proba: bool) -> pa.Array:
        """Rows that name different models: predict each group, put rows back in order."""
        assert self._loader is not None
        rows = row.combine_chunks() if isinstance(row, pa.ChunkedArray) else row
        parts: list[pa.Array] = []
        order: list[pa.Array] = []
        for value in pc.unique(refs).drop_null():
            positions = pc.indices_nonzero(pc.equal(refs, value))
            model = self._loader(str(value))
            subset = rows.take(positions)
            parts.append(model.predict_proba(subset) if proba else model.predict(subset))
            order.append(positions)
        nulls = pc.indices_nonzero(pc.is_null(refs))
        if len(nulls):
            parts.append(pa.nulls(len(nulls), type=parts[0].type if parts else pa.null()))
            order.append(nulls)
        combined = pa.concat_arrays([p.cast(parts[0].type) for p in parts])
        inverse = pc.array_sort_indices(pa.concat_arrays(order))
        return combined.take(inverse)

    def close(self) -> None:
        self.con.close()


def install(con: duckdb.DuckDBPyConnection, catalog: Catalog) -> DuckDBEngine:
    """Install ``predict`` and ``predict_proba`` on a plain DuckDB connection.

    The native forms take the model reference and the row as a struct, e.g.
    ``SELECT predict('churn', c) FROM customers c``; ``predict`` returns a VARIANT holding
    the prediction in the target's own type (cast it, e.g. ``::BOOLEAN``, for a typed
    column) and ``predict_proba`` a ``MAP(VARCHAR, DOUBLE)``.

    Args:
        con: the connection to install on (e.g. the one dbt-duckdb opens).
        catalog: where models are found.

    Returns:
        The engine wrapping ``con``; keep it alive as long as the connection is used.
    """
    from sqlml.session import ModelCache

    engine = DuckDBEngine(connection=con)
    engine.install(ModelCache(catalog).get)
    return engine
