"""The ``Engine`` interface: one adapter per query engine."""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import pyarrow as pa

    from sqlml.errors import QueryError
    from sqlml.udfs.predict import LoadedModel

#: Finds the loaded model for a reference (``name``, ``name@3``, ``name@alias``).
ModelLoader = Callable[[str], "LoadedModel"]


class Engine(abc.ABC):
    """Runs SQL over Arrow data and calls sqlml's functions from it.

    Engines declare what they can do with class-level flags rather than being told apart
    by name.
    """

    name: ClassVar[str]

    SUPPORTS_PYTHON_TABLE_FUNCTIONS: ClassVar[bool] = False
    """Whether Python code can be registered as a table function."""

    SQLGLOT_DIALECT: ClassVar[str]
    """The sqlglot dialect the front end generates for this engine."""

    @abc.abstractmethod
    def execute(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        """Run one statement and return its result as an Arrow table."""

    @abc.abstractmethod
    def register(self, name: str, data: object) -> None:
        """Make ``data`` (a pyarrow Table or RecordBatchReader, a pandas or polars
        DataFrame) queryable as ``name``."""

    @abc.abstractmethod
    def unregister(self, name: str) -> None:
        """Remove a relation made by :meth:`register`."""

    @abc.abstractmethod
    def install(self, loader: ModelLoader) -> None:
        """Install ``predict`` and ``predict_proba`` in their native, untyped form; they
        find models through ``loader``."""

    @abc.abstractmethod
    def predict_function(self, output_type: pa.DataType, proba: bool = False) -> str:
        """The name of a typed prediction function returning ``output_type`` (creating it
        on first use); the front end rewrites ``predict(...)`` calls to it."""

    def missing_column(self, error: QueryError) -> str | None:
        """The column an error says was not found, if it says so."""
        return None

    @abc.abstractmethod
    def close(self) -> None:
        """Release the engine's connection."""

    def __enter__(self) -> Engine:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
