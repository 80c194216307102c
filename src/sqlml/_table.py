"""Plain-text tables for the command line."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Render rows as an aligned text table with a header rule.

    >>> print(format_table(["name", "n"], [["a", 1], ["bb", 22]]))
    name |  n
    -----+---
    a    |  1
    bb   | 22
    """
    cells = [[_cell(v) for v in row] for row in rows]
    numeric = [
        all(isinstance(row[i], int | float) and not isinstance(row[i], bool) for row in rows)
        and bool(rows)
        for i in range(len(headers))
    ]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ]
        return " | ".join(parts).rstrip()

    rule = "-+-".join("-" * w for w in widths)
    return "\n".join([line(list(headers)), rule, *(line(r) for r in cells)])


def _cell(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list) and all(isinstance(v, tuple) and len(v) == 2 for v in value):
        return "{" + ", ".join(f"{k}: {_cell(v)}" for k, v in value) + "}"
    if hasattr(value, "isoformat"):
        return str(value.isoformat(sep=" ") if hasattr(value, "hour") else value.isoformat())
    return str(value)


def format_arrow(table: pa.Table, max_rows: int = 50) -> str:
    """Render an Arrow table as text, showing at most ``max_rows`` rows."""
    rows = [list(row.values()) for row in table.slice(0, max_rows).to_pylist()]
    text = format_table(table.column_names, rows)
    if table.num_rows > max_rows:
        text += f"\n({table.num_rows} rows, {max_rows} shown)"
    elif table.num_rows != 1:
        text += f"\n({table.num_rows} rows)"
    return text
