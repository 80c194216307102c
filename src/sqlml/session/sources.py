"""PostgreSQL schemas attached to a session as data sources, and writes to PostgreSQL.

The session's public methods (``attach_postgres``, ``detach_postgres``,
``write_postgres``) delegate here; :mod:`sqlml.pgsource` does the reading and writing.
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import TYPE_CHECKING

from sqlml.engines import Engine
from sqlml.engines.base import ServesQualifiedStreams
from sqlml.errors import SourceError

if TYPE_CHECKING:
    from sqlml.pgsource import PostgresSource
    from sqlml.sql.statements import Statement


class PostgresSources:
    """The PostgreSQL schemas attached to one session, by alias (in any case)."""

    def __init__(self) -> None:
        self._sources: dict[str, PostgresSource] = {}

    def __bool__(self) -> bool:
        return bool(self._sources)

    def attach(self, uri: str, schema: str, alias: str) -> None:
        """Attach a schema as ``alias``, replacing what was attached as that alias.

        Raises:
            SourceError: ``alias`` is not an identifier.
            SourceUnavailable: the server cannot be reached or refuses the credentials.
        """
        from sqlml.pgsource import PostgresSource, redact

        if not alias.isidentifier():
            raise SourceError(
                redact(uri), f"invalid alias {alias!r}: use a name such as pg or sales"
            )
        source = PostgresSource(uri, schema=schema, alias=alias)
        self.detach(alias)
        self._sources[alias.casefold()] = source

    def detach(self, alias: str) -> None:
        """Forget an attached schema and close its connection (no-op if absent)."""
        source = self._sources.pop(alias.casefold(), None)
        if source is not None:
            source.close()

    def close(self) -> None:
        """Detach every schema."""
        for alias in list(self._sources):
            self.detach(alias)

    def check_write(self, mode: str, uri: str | None) -> None:
        """Refuse a write before its data is computed: a bad mode, or no database.

        Raises:
            SourceError: a bad mode, or no ``uri`` and no database attached.
        """
        from sqlml import pgsource

        if uri is None and not self._sources:
            raise SourceError(
                "(none)",
                "no PostgreSQL database is attached; call attach_postgres() or pass uri=",
            )
        shown = pgsource.redact(uri) if uri is not None else self._first().uri
        pgsource.check_write_mode(mode, shown)

    def write(
        self, table_name: str, data: object, mode: str, uri: str | None, schema: str | None
    ) -> int:
        """Write ``data`` to ``uri`` (by default the first attached database), in one
        transaction; the number of rows written."""
        from sqlml import pgsource

        if uri is not None:
            return pgsource.write_postgres(uri, table_name, data, mode, schema)
        return self._first().write(table_name, data, mode, schema)

    def attached_tables(self, statement: Statement, engine: Engine) -> ExitStack:
        """A fresh stream, registered with the engine, of each attached table a statement
        reads; closing the returned stack unregisters and closes them.

        Raises:
            SourceError: the engine cannot read attached tables.
            SourceTableNotFound: the statement names a table the schema does not have.
        """
        stack = ExitStack()
        if not self._sources:
            return stack
        from sqlml.sql.references import referenced_tables

        try:
            for source in self._sources.values():
                counts: dict[str, int] = {}
                names = referenced_tables(statement, source.alias, engine.SQLGLOT_DIALECT)
                for name, count in names.items():
                    table = source.resolve(name)
                    counts[table] = counts.get(table, 0) + count
                if not counts:
                    continue
                if not isinstance(engine, ServesQualifiedStreams):
                    raise SourceError(
                        source.uri, f"the {engine.name} engine cannot read attached tables yet"
                    )
                for table, count in counts.items():
                    # A reader can be scanned once: a table named twice is read into memory.
                    data = source.read(table, stack, materialize=count > 1)
                    engine.register_stream(source.alias, table, data)
                    stack.callback(engine.unregister_stream, source.alias, table)
        except BaseException:
            stack.close()
            raise
        return stack

    def _first(self) -> PostgresSource:
        return next(iter(self._sources.values()))
