"""The ``Engine`` interface: one adapter per query engine."""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from sqlml._closing import Closing

if TYPE_CHECKING:
    import os

    import pyarrow as pa

    from sqlml.catalog import ModelVersion
    from sqlml.engines.binding import Binding
    from sqlml.udfs.predict import LoadedModel

#: The kinds of prediction call.
PredictKind = Literal["predict", "predict_proba"]

#: Finds the loaded model for a reference (``name``, ``name@3``, ``name@alias``).
ModelLoader = Callable[[str], "LoadedModel"]


class Engine(Closing, abc.ABC):
    """Runs SQL over Arrow data and calls sqlml's functions from it.

    What only some engines can do is a capability: a small abstract class an engine also
    derives from, checked with ``isinstance`` (:class:`HasNativePredict`,
    :class:`ServesQualifiedStreams`), rather than a flag or a method that raises.
    """

    name: ClassVar[str]

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

    def schemata(self) -> list[tuple[str, str]]:
        """Every (catalog, schema) the engine has, from its information_schema."""
        rows = self.execute(
            "SELECT catalog_name, schema_name FROM information_schema.schemata"
        ).to_pylist()
        return [(row["catalog_name"], row["schema_name"]) for row in rows]

    def relations(self) -> list[tuple[str, str, str, str]]:
        """Every (catalog, schema, name, type) of table or view, type as the SQL standard's
        information_schema says it (``BASE TABLE``, ``VIEW``, ``LOCAL TEMPORARY``)."""
        rows = self.execute(
            "SELECT table_catalog, table_schema, table_name, table_type "
            "FROM information_schema.tables"
        ).to_pylist()
        return [
            (row["table_catalog"], row["table_schema"], row["table_name"], row["table_type"])
            for row in rows
        ]

    def relation_schema(self, catalog: str, schema: str, name: str) -> pa.Schema:
        """The Arrow schema of one relation, reading no row."""
        qualified = ".".join(
            '"' + part.replace('"', '""') + '"' for part in (catalog, schema, name)
        )
        return self.execute(f"SELECT * FROM {qualified} LIMIT 0").schema

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
    def bind_predict(self, version: ModelVersion, model: LoadedModel, kind: PredictKind) -> Binding:
        """How a ``predict``/``predict_proba`` call of ``version`` is written for this
        engine (creating the function it calls on first use)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the engine's connection."""


class HasNativePredict(abc.ABC):
    """An engine whose SQL, run without sqlml's front end (a plain connection, dbt),
    can call ``predict('m', t)`` and ``predict_proba('m', t)`` itself."""

    @abc.abstractmethod
    def install(self, loader: ModelLoader) -> None:
        """Install ``predict`` and ``predict_proba`` in their native, untyped form; they
        find models through ``loader``."""


class ServesQualifiedStreams(abc.ABC):
    """An engine that can make Arrow data queryable under a schema of its own, as
    ``schema.table``: what attached sources (``Session.attach_postgres``) need."""

    @abc.abstractmethod
    def register_stream(
        self, schema: str, table: str, data: pa.RecordBatchReader | pa.Table
    ) -> None:
        """Make ``data`` queryable as ``schema.table`` (e.g. ``pg.customers``) until
        :meth:`unregister_stream`.

        The session calls it before each statement that reads an attached source, with a
        fresh reader each time: a RecordBatchReader can be scanned once, so a statement
        that names the table more than once gets a Table instead. ``schema`` never names
        one of the engine's own schemas.
        """

    @abc.abstractmethod
    def unregister_stream(self, schema: str, table: str) -> None:
        """Remove a relation made by :meth:`register_stream`."""


@dataclass(frozen=True)
class HostAccess:
    """What SQL run by a served session may reach on the host: by default, nothing.

    Attributes:
        readable: directories whose files queries may read (and nothing else of the host).
        writable: directories files may also be written to (``COPY ... TO``).
    """

    readable: tuple[Path, ...] = ()
    writable: tuple[Path, ...] = ()

    def allows_write(self, path: str) -> bool:
        """Whether ``path`` (as SQL names it) lies under a writable directory."""
        target = Path(path).expanduser()
        if not target.is_absolute() or ".." in target.parts:
            return False
        return any(target.is_relative_to(directory) for directory in self.writable)


class RestrictsHostAccess(abc.ABC):
    """An engine that can be shut off from the host's files, other databases and the
    network, with the engine's own switches, for good."""

    @abc.abstractmethod
    def restrict_host_access(self, access: HostAccess) -> None:
        """From now on reach only what ``access`` allows; no statement can undo it.

        Raises:
            QueryError: the engine cannot be restricted as asked.
        """


class Interruptible(abc.ABC):
    """An engine whose running statement can be stopped from another thread."""

    @abc.abstractmethod
    def interrupt(self, reason: str) -> None:
        """Stop the statement running now: it fails with
        :class:`~sqlml.errors.StatementCancelled` saying ``reason``. Without a running
        statement nothing happens (the next one runs as usual).

        Until :meth:`resume`, every statement started fails the same way, so a statement
        of several steps stops at its next one.

        Safe to call from any thread while another runs the statement.
        """

    @abc.abstractmethod
    def resume(self) -> None:
        """Let statements run again after :meth:`interrupt`."""
