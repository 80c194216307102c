"""Writing results and showing training progress on the command line."""

from __future__ import annotations

import csv
import io
import json
import logging
import sys
import time
from pathlib import PurePath
from typing import IO, TYPE_CHECKING, Any

import pyarrow as pa

from sqlml._table import format_arrow, format_value

if TYPE_CHECKING:
    from sqlml.session import Progress

#: The formats of ``sqlml sql --format``.
FORMATS = ("table", "csv", "tsv", "json", "markdown", "parquet")

#: The formats that show every statement's result; the others hold one table, the last.
DISPLAY_FORMATS = ("table", "markdown")

#: The format an ``--output`` file's extension implies (without ``--format``).
EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".json": "json",
    ".jsonl": "json",
    ".ndjson": "json",
    ".md": "markdown",
    ".markdown": "markdown",
    ".parquet": "parquet",
    ".pq": "parquet",
}


def format_for(output: str | None) -> str:
    """The format a result written to ``output`` takes when none is given: the one its
    extension names (:data:`EXTENSIONS`), else ``table``.

    >>> format_for("out.CSV"), format_for("plan.md"), format_for("notes.txt"), format_for(None)
    ('csv', 'markdown', 'table', 'table')
    """
    if not output:
        return "table"
    return EXTENSIONS.get(PurePath(output).suffix.lower(), "table")


def render(table: pa.Table, fmt: str = "table") -> str:
    """A result as text in one of the text formats (every one of :data:`FORMATS` but
    ``parquet``), ending with a newline."""
    if fmt == "csv":
        import pyarrow.csv as pacsv

        sink = pa.BufferOutputStream()
        pacsv.write_csv(_csv_safe(table), sink)
        return str(sink.getvalue().to_pybytes().decode())
    if fmt == "tsv":
        return _tsv(table)
    if fmt == "json":
        return "".join(json.dumps(row, default=_json_default) + "\n" for row in _rows(table))
    if fmt == "markdown":
        return _markdown(table)
    if fmt == "table":
        return format_arrow(table) + "\n"
    raise ValueError(f"{fmt!r} is not a text format; choose one of {', '.join(FORMATS)}")


def write_result(table: pa.Table, fmt: str = "table", output: str | None = None) -> None:
    """Write a result as a text table, CSV, TSV, JSON lines, a Markdown table or Parquet,
    to ``output`` or stdout.

    Parquet needs ``output`` (it is binary).
    """
    if fmt == "parquet":
        import pyarrow.parquet as pq

        if not output:
            raise SystemExit("error: --format parquet needs --output FILE")
        pq.write_table(table, output)
        return
    text = render(table, fmt)
    if output:
        with open(output, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)


#: Statements whose result is always shown as a table, even an empty one.
_QUERIES = frozenset(
    {"SELECT", "WITH", "VALUES", "FROM", "TABLE", "SHOW", "DESCRIBE", "EXPLAIN", "PRAGMA"}
    | {"SUMMARIZE", "CALL", "("}
)


def status_line(command: str, table: pa.Table) -> str | None:
    """What psql shows for a statement that returns no rows of its own: the command and,
    for one that changes rows, how many (``INSERT 3``, ``CREATE TABLE 100``, ``DROP
    TABLE``); None when the result is a table to show.

    ``command`` is the statement's command, e.g. ``CREATE TABLE`` (see :func:`command_tag`).

    >>> status_line("INSERT", pa.table({"Count": [3]}))
    'INSERT 3'
    >>> status_line("DROP TABLE", pa.table({"Success": pa.array([], pa.bool_())}))
    'DROP TABLE'
    >>> status_line("SELECT", pa.table({"Count": [3]})) is None
    True
    """
    if table.num_columns == 0:
        return command
    first = command.split(" ", 1)[0]
    if first in _QUERIES or table.num_columns != 1 or table.num_rows > 1:
        return None
    name, column = table.column_names[0], table.column(0)
    if name.lower() == "success" and pa.types.is_boolean(column.type):
        return command
    if name.lower() == "count" and pa.types.is_integer(column.type):
        return f"{command} {column[0].as_py()}" if table.num_rows else command
    return None


_MODIFIERS = frozenset({"OR", "REPLACE", "TEMP", "TEMPORARY", "UNIQUE", "IF", "NOT", "EXISTS"})


def command_tag(statement: str) -> str:
    """A statement's command, as psql names it: the first keyword, and for ``CREATE``,
    ``DROP`` and ``ALTER`` the kind of object, without modifiers.

    >>> command_tag("create or replace temp table t AS SELECT 1")
    'CREATE TABLE'
    >>> command_tag("-- drop it\\nDROP MODEL IF EXISTS churn")
    'DROP MODEL'
    >>> command_tag("insert into t values (1)")
    'INSERT'
    """
    from sqlglot.errors import TokenError

    from sqlml.sql.dialect import Sqlml

    try:
        words = [token.text.upper() for token in Sqlml().tokenize(statement)[:8]]
    except TokenError:
        words = statement.upper().split()[:8]
    if not words:
        return ""
    if words[0] in ("CREATE", "DROP", "ALTER"):
        kind = next((word for word in words[1:] if word not in _MODIFIERS), "")
        return f"{words[0]} {kind}".strip()
    return words[0]


def _text(value: object) -> str:
    """A value in TSV: NULL is empty, floats keep their precision."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if hasattr(value, "isoformat"):
        return str(value.isoformat(sep=" ") if hasattr(value, "hour") else value.isoformat())
    return str(value)


def _tsv(table: pa.Table) -> str:
    """Tab-separated values: a header line, then a line per row; a value holding a tab,
    newline or quote is quoted (Python's ``excel-tab`` dialect), NULL is empty."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, dialect="excel-tab", lineterminator="\n")
    writer.writerow(table.column_names)
    for row in _csv_safe(table).to_pylist():
        writer.writerow([_text(value) for value in row.values()])
    return buffer.getvalue()


def _markdown(table: pa.Table) -> str:
    """A GitHub-flavoured Markdown table; numbers are right-aligned, ``|`` is escaped and
    a line break in a cell becomes ``<br>``."""

    def cell(value: object) -> str:
        return "<br>".join(format_value(value).splitlines()).replace("|", "\\|")

    columns = table.column_names
    rows = [list(row.values()) for row in table.to_pylist()]
    numeric = [
        pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)
        for t in table.schema.types
    ]
    lines = [
        "| " + " | ".join(name.replace("|", "\\|") for name in columns) + " |",
        "| " + " | ".join("---:" if num else "---" for num in numeric) + " |",
        *("| " + " | ".join(cell(v) for v in row) + " |" for row in rows),
    ]
    return "\n".join(lines) + "\n"


def _rows(table: pa.Table) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = table.to_pylist()
    for row in rows:
        for key, value in row.items():
            if isinstance(value, list) and all(isinstance(v, tuple) for v in value):
                row[key] = dict(value)
    return rows


def _json_default(value: object) -> object:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _csv_safe(table: pa.Table) -> pa.Table:
    """CSV has no maps, lists or structs: write those columns as JSON text."""
    columns = []
    for name in table.column_names:
        column = table[name]
        if pa.types.is_nested(column.type):
            rows = _rows(table.select([name]))
            texts = [json.dumps(row[name], default=_json_default) for row in rows]
            column = pa.chunked_array([pa.array(texts, pa.string())])
        columns.append(column)
    return pa.table(columns, names=table.column_names)


def progress_printer(stream: IO[str]) -> Progress:
    """A training progress display: a bar on a terminal, a line per stage otherwise."""
    interactive = stream.isatty()
    state: dict[str, Any] = {"stage": "", "shown": 0.0}

    def show(stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if stage != state["stage"]:
            if interactive and state["stage"]:
                stream.write("\n")
            state["stage"] = stage
            if not interactive:
                stream.write(f"{stage}...\n")
        if interactive and (done >= total or now - state["shown"] > 0.1):
            width = 30
            filled = width * done // max(total, 1)
            stream.write(f"\r{stage:<12} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
            if done >= total:
                stream.write("\n")
                state["stage"] = ""
            state["shown"] = now
        stream.flush()

    return show


class NoticeHandler(logging.Handler):
    """Prints training's notices (records logged with ``sqlml.udfs.train.NOTICE``) as
    ``note: ...`` lines on the current ``sys.stderr``: a task inferred, rows dropped, a
    feature that looks like an id."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)

    def emit(self, record: logging.LogRecord) -> None:
        if not getattr(record, "sqlml_notice", False):
            return
        try:
            sys.stderr.write(f"note: {record.getMessage()}\n")
            sys.stderr.flush()
        except Exception:
            self.handleError(record)


def show_notices() -> None:
    """Print training's notices on stderr from now on (see :class:`NoticeHandler`); the
    records still reach the logger's other handlers. Calling it again changes nothing."""
    train_logger = logging.getLogger("sqlml.train")
    if not any(isinstance(h, NoticeHandler) for h in train_logger.handlers):
        train_logger.addHandler(NoticeHandler())
    if train_logger.getEffectiveLevel() > logging.INFO:
        train_logger.setLevel(logging.INFO)
