"""The ``Engine`` interface: one adapter per query engine."""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from sqlml._closing import Closing

if TYPE_CHECKING:
    import os

    import pyarrow as pa

    from sqlml.catalog import ModelVersion
    from sqlml.engines.binding import Binding
    from sqlml.errors import QueryError
    from sqlml.udfs.predict import LoadedModel

#: The kinds of prediction call.
PredictKind = Literal["predict", "predict_proba"]

#: Finds the loaded model for a reference (``name``, ``name@3``, ``name@alias``).
ModelLoader = Callable[[str], "LoadedModel"]


class Engine(Closing, abc.ABC):
    """Runs SQL over Arrow data and calls sqlml's functions from it.

    Engines declare what they can do with class-level flags rather than being told apart
    by name.
    """

    name: ClassVar[str]

    SUPPORTS_PYTHON_TABLE_FUNCTIONS: ClassVar[bool] = False
    """Whether Python code can be registered as a table function."""

    EXACT_FUNCTION_SIGNATURES: ClassVar[bool] = False
    """Whether Python functions need exact argument types (no "any", no varargs). Then the
    session binds a function per model version (:meth:`version_function`) whose arguments
    are the model's features; otherwise one untyped function per output type
    (:meth:`predict_function`) takes the model reference and the row as a struct."""

    HAS_NATIVE_PREDICT: ClassVar[bool] = False
    """Whether :meth:`install` gives SQL run without the front end (a plain connection)
    ``predict('m', t)`` and ``predict_proba('m', t)``."""

    SQLGLOT_DIALECT: ClassVar[str]
    """The sqlglot dialect the front end generates for this engine."""

    @abc.abstractmethod
    def execute(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        """Run one statement and return its result as an Arrow table."""

    def execute_reader(self, sql: str, params: Sequence[Any] | None = None) -> pa.RecordBatchReader:
        """Run one statement and return its result as a stream of record batches.

        Until the reader is exhausted or closed the engine is busy: run nothing else on
        it meanwhile. Errors found while reading are raised by the reader as sqlml errors.
        By default the result is computed whole (:meth:`execute`) and then read back.
        """
        return self.execute(sql, params).to_reader()

    def result_schema(self, sql: str, params: Sequence[Any] | None = None) -> pa.Schema | None:
        """The schema of a query's result, without producing a row.

        The query runs as ``SELECT * FROM (<sql>) LIMIT 0``, which engines refuse for
        anything but a query, so a statement with effects (``CREATE``, ``INSERT``) never
        runs here.

        Returns:
            The schema, or None when it cannot be known this way (not a query, parameters
            missing, or the query fails: running it reports why).
        """
        from sqlml.errors import SqlmlError

        body = sql.strip().rstrip(";")
        try:
            return self.execute(
                f"SELECT * FROM (\n{body}\n) AS __sqlml_schema LIMIT 0", params
            ).schema
        except SqlmlError:
            return None

    @abc.abstractmethod
    def register(self, name: str, data: object) -> None:
        """Make ``data`` (a pyarrow Table or RecordBatchReader, a pandas or polars
        DataFrame) queryable as ``name``."""

    @abc.abstractmethod
    def unregister(self, name: str) -> None:
        """Remove a relation made by :meth:`register` or :meth:`register_file`."""

    @abc.abstractmethod
    def register_file(
        self, name: str, path: str | os.PathLike[str], format: Literal["parquet", "csv"]
    ) -> None:
        """Make a Parquet or CSV file (or a directory or glob of them) queryable as
        ``name``; the file is read by each query, not copied."""

    @abc.abstractmethod
    def install(self, loader: ModelLoader) -> None:
        """Install ``predict`` and ``predict_proba`` in their native, untyped form; they
        find models through ``loader``."""

    @abc.abstractmethod
    def bind_predict(self, version: ModelVersion, model: LoadedModel, kind: PredictKind) -> Binding:
        """How a ``predict``/``predict_proba`` call of ``version`` is written for this
        engine (creating the function it calls on first use)."""

    @abc.abstractmethod
    def predict_function(self, output_type: pa.DataType, proba: bool = False) -> str:
        """The name of a typed prediction function returning ``output_type`` (creating it
        on first use); the front end rewrites ``predict(...)`` calls to it as
        ``function('name@3', <struct of the features>)``."""

    def version_function(
        self, version: ModelVersion, model: LoadedModel, proba: bool = False
    ) -> str:
        """The name of a function bound to one model version (created on first use), for
        engines with :attr:`EXACT_FUNCTION_SIGNATURES`: it takes the model's features as its
        arguments, in signature order, and returns predictions (or, with ``proba``,
        class probabilities)."""
        raise NotImplementedError(f"{self.name} binds functions by output type")

    def type_probes(self, model: LoadedModel) -> tuple[str, ...]:
        """Features whose actual column types a bound function must also be given
        (see :attr:`sqlml.sql.Binding.type_probes`); none by default."""
        return ()

    def missing_column(self, error: QueryError) -> str | None:
        """The column an error says was not found, if it says so."""
        from sqlml.errors import ColumnNotFound

        return error.column if isinstance(error, ColumnNotFound) else None

    def missing_table(self, error: QueryError) -> str | None:
        """The table an error says does not exist, if it says so."""
        from sqlml.errors import TableNotFound

        return error.table if isinstance(error, TableNotFound) else None

    def register_stream(
        self, schema: str, table: str, data: pa.RecordBatchReader | pa.Table
    ) -> None:
        """Make ``data`` queryable as ``schema.table`` (e.g. ``pg.customers``) until
        :meth:`unregister_stream`.

        The session calls it before each statement that reads an attached source (see
        ``Session.attach_postgres``), with a fresh reader each time: a RecordBatchReader
        can be scanned once, so a statement that names the table more than once gets a
        Table instead. ``schema`` never names one of the engine's own schemas.

        Raises:
            NotImplementedError: the engine cannot (yet) serve qualified Arrow relations.
        """
        raise NotImplementedError(f"engine {self.name!r} cannot register {schema}.{table}")

    def unregister_stream(self, schema: str, table: str) -> None:
        """Remove a relation made by :meth:`register_stream`."""
        raise NotImplementedError(f"engine {self.name!r} cannot unregister {schema}.{table}")

    @abc.abstractmethod
    def close(self) -> None:
        """Release the engine's connection."""
