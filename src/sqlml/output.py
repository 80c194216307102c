"""Writing results and showing training progress on the command line."""

from __future__ import annotations

import json
import sys
import time
from typing import IO, TYPE_CHECKING, Any

import pyarrow as pa

from sqlml._table import format_arrow

if TYPE_CHECKING:
    from sqlml.session import Progress

FORMATS = ("table", "csv", "json", "parquet")


def write_result(table: pa.Table, fmt: str = "table", output: str | None = None) -> None:
    """Write a result as a text table, CSV, JSON lines or Parquet, to ``output`` or stdout.

    Parquet needs ``output`` (it is binary).
    """
    if fmt == "parquet":
        import pyarrow.parquet as pq

        if not output:
            raise SystemExit("error: --format parquet needs --output FILE")
        pq.write_table(table, output)
        return
    if fmt == "csv":
        import pyarrow.csv as pacsv

        sink = pa.BufferOutputStream()
        pacsv.write_csv(_csv_safe(table), sink)
        text = sink.getvalue().to_pybytes().decode()
    elif fmt == "json":
        text = "".join(json.dumps(row, default=_json_default) + "\n" for row in _rows(table))
    else:
        text = format_arrow(table) + "\n"
    if output:
        with open(output, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)


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
