"""Plain-text tables for the command line."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Render rows as an aligned text table with a header rule.

    A cell of several lines (an ``EXPLAIN`` plan) takes as many lines of the table, each
    padded to the column's width, so the borders stay aligned.

    >>> print(format_table(["name", "n"], [["a", 1], ["bb", 22]]))
    name |  n
    -----+---
    a    |  1
    bb   | 22
    >>> print(format_table(["step", "plan"], [["1", "scan\\n  filter"], ["2", "sort"]]))
    step | plan
    -----+---------
    1    | scan
         |   filter
    2    | sort
    """
    cells = [[_lines(format_value(v)) for v in row] for row in rows]
    numeric = [
        all(isinstance(row[i], int | float) and not isinstance(row[i], bool) for row in rows)
        and bool(rows)
        for i in range(len(headers))
    ]
    heads = [_lines(h) for h in headers]
    widths = [
        max(len(text) for cell in [heads[i], *(r[i] for r in cells)] for text in cell)
        for i in range(len(headers))
    ]

    def line(values: Sequence[list[str]]) -> list[str]:
        height = max((len(v) for v in values), default=1)
        return [
            " | ".join(
                (text.rjust(w) if num else text.ljust(w))
                for text, w, num in zip(
                    (v[k] if k < len(v) else "" for v in values), widths, numeric, strict=True
                )
            ).rstrip()
            for k in range(height)
        ]

    rule = "-+-".join("-" * w for w in widths)
    return "\n".join([*line(heads), rule, *(text for r in cells for text in line(r))])


def _lines(text: str) -> list[str]:
    return text.splitlines() or [""]


def format_value(value: object) -> str:
    """One value as a table shows it: NULL, floats to 6 significant digits, maps as
    ``{key: value}``, dates and times in ISO form."""
    if value is None:
        return "NULL"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list) and all(isinstance(v, tuple) and len(v) == 2 for v in value):
        return "{" + ", ".join(f"{k}: {format_value(v)}" for k, v in value) + "}"
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
