"""PostgreSQL as a data source: tables read through ADBC as Arrow record batch streams,
results written back with ADBC ingest.

A :class:`PostgresSource` is one attached schema (``Session.attach_postgres``). Before each
statement the session asks :func:`sqlml.sql.references.referenced_tables` which
``<alias>.<table>`` names the statement reads, and hands the engine a fresh stream for each
(a RecordBatchReader is single-use), so every statement sees the table as it is when the
statement starts.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import ExitStack
from typing import TYPE_CHECKING, Literal, cast, get_args
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import adbc_driver_manager
import adbc_driver_postgresql.dbapi as pgdb
import pyarrow as pa
from sqlglot import exp

from sqlml._redact import redact_uri, scrub
from sqlml.errors import SourceError, SourceTableNotFound, SourceUnavailable

if TYPE_CHECKING:
    from adbc_driver_manager.dbapi import Connection

#: How :meth:`PostgresSource.write` / :func:`write_postgres` treat an existing table.
WriteMode = Literal["create", "append", "replace"]
WRITE_MODES: tuple[str, ...] = get_args(WriteMode)

#: Seconds to wait for the server unless the URI sets ``connect_timeout``.
CONNECT_TIMEOUT = 10

#: PostgreSQL types that ADBC hands over as opaque strings, and what to read them as.
#: ``numeric`` becomes a float (a feature, not a category); other opaque types (enums,
#: extension types) become text.
_OPAQUE_CASTS = {"numeric": "DOUBLE PRECISION"}


# --------------------------------------------------------------------------- connections


def _with_timeout(uri: str) -> str:
    """``uri`` with ``connect_timeout`` set, so an unreachable host fails instead of hanging."""
    parts = urlsplit(uri)
    if parts.scheme not in ("postgresql", "postgres"):
        return uri
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(key == "connect_timeout" for key, _ in query):
        return uri
    query.append(("connect_timeout", str(CONNECT_TIMEOUT)))
    return urlunsplit(parts._replace(query=urlencode(query)))


#: ``uri`` (a URI or a ``key=value`` conninfo) without its password, for messages (the
#: shared :func:`sqlml._redact.redact_uri`, under the name the session imports).
redact = redact_uri


def _reason(exc: BaseException, uri: str) -> str:
    """A driver error as one line, without the URI's password."""
    return scrub(" ".join(str(exc).split()), uri)


def connect(uri: str, *, autocommit: bool = False) -> Connection:
    """Open an ADBC connection to PostgreSQL.

    Raises:
        SourceUnavailable: the server cannot be reached or refuses the credentials; the
            message names the URI without its password.
    """
    try:
        conn: Connection = pgdb.connect(_with_timeout(uri), autocommit=autocommit)
        return conn
    except adbc_driver_manager.Error as exc:
        raise SourceUnavailable(uri, _reason(exc, uri)) from exc


def _quote(name: str) -> str:
    return exp.to_identifier(name, quoted=True).sql(dialect="postgres")


def select_sql(schema: str, table: str, columns: pa.Schema) -> str:
    """The query that reads a table, casting the columns ADBC would hand over as opaque
    strings (``numeric`` to double precision, others to text).

    >>> select_sql("public", "t", pa.schema([("a", pa.int32())]))
    'SELECT * FROM "public"."t"'
    """
    source = f"{_quote(schema)}.{_quote(table)}"
    if not any(isinstance(field.type, pa.OpaqueType) for field in columns):
        return f"SELECT * FROM {source}"
    items = []
    for field in columns:
        name = _quote(field.name)
        if isinstance(field.type, pa.OpaqueType):
            target = _OPAQUE_CASTS.get(field.type.type_name, "TEXT")
            items.append(f"CAST({name} AS {target}) AS {name}")
        else:
            items.append(name)
    return f"SELECT {', '.join(items)} FROM {source}"


# --------------------------------------------------------------------------- sources


class PostgresSource:
    """One attached PostgreSQL schema: an ADBC connection and the schema's tables.

    Args:
        uri: a ``postgresql://`` URI (a libpq conninfo string works too).
        schema: the schema whose tables (and views) are attached.
        alias: the name the tables are qualified with in SQL, e.g. ``pg.customers``.

    Raises:
        SourceUnavailable: the server cannot be reached or refuses the credentials.
    """

    def __init__(self, uri: str, schema: str = "public", alias: str = "pg") -> None:
        self.alias = alias
        self.schema = schema
        self.uri = redact_uri(uri)
        self._conninfo = uri
        self._conn = connect(uri, autocommit=True)
        try:
            self._tables = self._list_tables()
        except BaseException:
            self._conn.close()
            raise

    @contextlib.contextmanager
    def _translate(self, doing: str) -> Iterator[None]:
        try:
            yield
        except adbc_driver_manager.Error as exc:
            raise SourceError(self.uri, f"{doing}: {_reason(exc, self._conninfo)}") from exc

    def _list_tables(self) -> tuple[str, ...]:
        with self._translate(f"cannot list the tables of schema {self.schema!r}"):
            database = self._conn.adbc_current_catalog
            objects = self._conn.adbc_get_objects(
                depth="tables", catalog_filter=database, db_schema_filter=self.schema
            ).read_all()
        names = {
            table["table_name"]
            for catalog in objects.to_pylist()
            if catalog["catalog_name"] == database
            for schema in catalog["catalog_db_schemas"] or ()
            if schema["db_schema_name"] == self.schema
            for table in schema["db_schema_tables"] or ()
        }
        return tuple(sorted(names))

    def tables(self, refresh: bool = False) -> tuple[str, ...]:
        """The names of the schema's tables and views (as listed on attach, unless
        ``refresh``)."""
        if refresh:
            self._tables = self._list_tables()
        return self._tables

    def resolve(self, name: str) -> str:
        """The table a name in SQL means: an exact match, else the only case-insensitive
        one (unquoted names are case-insensitive in SQL). The list is re-read on a miss, so
        tables created after attaching are found.

        Raises:
            SourceTableNotFound: no such table; the message lists the tables there are.
        """
        for refresh in (False, True):
            tables = self.tables(refresh=refresh)
            if name in tables:
                return name
            folded = [table for table in tables if table.casefold() == name.casefold()]
            if len(folded) == 1:
                return folded[0]
        raise SourceTableNotFound(self.uri, self.alias, name, self.schema, tables)

    def read(
        self, table: str, stack: ExitStack, *, materialize: bool = False
    ) -> pa.RecordBatchReader | pa.Table:
        """A fresh stream of the table's rows, on a connection of its own (so several
        tables can stream at once); ``stack`` closes reader, cursor and connection.

        Args:
            table: a name from :meth:`tables`.
            stack: where the reader's resources are released.
            materialize: read the whole table into an Arrow table (for a statement that
                scans it more than once).
        """
        with self._translate(f"cannot read table {self.schema}.{table}"):
            conn = self._conn.adbc_clone()
            stack.callback(conn.close)
            cursor = conn.cursor()
            stack.callback(cursor.close)
            columns = conn.adbc_get_table_schema(table, db_schema_filter=self.schema)
            cursor.execute(select_sql(self.schema, table, columns))
            reader = cursor.fetch_record_batch()
            stack.callback(reader.close)
            return reader.read_all() if materialize else reader

    def write(
        self, table: str, data: object, mode: str = "create", schema: str | None = None
    ) -> int:
        """Write Arrow data to ``schema.table`` (the attached schema by default) in one
        transaction; returns the number of rows written. See :func:`write_postgres`."""
        with contextlib.closing(self._conn.adbc_clone()) as conn:
            return _ingest(conn, self.uri, self._conninfo, table, data, mode, schema or self.schema)

    def close(self) -> None:
        """Close the source's connection."""
        self._conn.close()


def write_postgres(
    uri: str, table: str, data: object, mode: str = "create", schema: str | None = None
) -> int:
    """Write Arrow data to a PostgreSQL table through ADBC ingest (COPY), in one transaction.

    Args:
        uri: the database.
        table: the table's name.
        data: a pyarrow Table, RecordBatch or RecordBatchReader, or any object with
            ``__arrow_c_stream__`` (e.g. a polars DataFrame).
        mode: ``create`` (the table must not exist), ``append`` (it must exist) or
            ``replace`` (drop it if it exists, then create it).
        schema: the table's schema; the connection's search path (``public``) when None.

    Returns:
        The number of rows written.

    Raises:
        SourceUnavailable: the server cannot be reached.
        SourceError: a bad mode, or the write failed (nothing is written then).
    """
    with contextlib.closing(connect(uri)) as conn:
        return _ingest(conn, redact_uri(uri), uri, table, data, mode, schema)


def check_write_mode(mode: str, uri: str) -> None:
    """Raise :class:`SourceError` unless ``mode`` is one of :data:`WRITE_MODES`."""
    if mode not in WRITE_MODES:
        raise SourceError(
            uri, f"unknown write mode {mode!r}; choose one of {', '.join(WRITE_MODES)}"
        )


def _ingest(
    conn: Connection,
    shown_uri: str,
    conninfo: str,
    table: str,
    data: object,
    mode: str,
    schema: str | None,
) -> int:
    check_write_mode(mode, shown_uri)
    stream = _arrow(data, shown_uri)
    target = f"{schema}.{table}" if schema else table
    rows = stream.num_rows if isinstance(stream, pa.Table | pa.RecordBatch) else None
    try:
        with contextlib.closing(conn.cursor()) as cursor:
            written = cursor.adbc_ingest(
                table, stream, mode=cast(WriteMode, mode), db_schema_name=schema
            )
        conn.commit()
    except adbc_driver_manager.Error as exc:
        with contextlib.suppress(adbc_driver_manager.Error):
            conn.rollback()
        hint = {
            "create": "; use mode='append' or mode='replace' for a table that exists",
            "append": "; mode='append' needs an existing table with matching columns",
        }.get(mode, "")
        raise SourceError(
            shown_uri,
            f"cannot write table {target} (mode {mode!r}): {_reason(exc, conninfo)}{hint}",
        ) from exc
    return rows if rows is not None and written < 0 else int(written)


def _arrow(data: object, uri: str) -> pa.Table | pa.RecordBatch | pa.RecordBatchReader:
    if isinstance(data, pa.Table | pa.RecordBatch | pa.RecordBatchReader):
        return data
    if hasattr(data, "__arrow_c_stream__"):
        return pa.RecordBatchReader.from_stream(data)
    raise SourceError(
        uri,
        f"cannot write a {type(data).__name__}; pass a pyarrow Table or RecordBatchReader, "
        "a DataFrame with __arrow_c_stream__, or a query",
    )
