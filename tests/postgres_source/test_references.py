"""Finding the attached tables a statement reads, with sqlglot."""

from __future__ import annotations

from collections import Counter

import pyarrow as pa
import pytest

from sqlml.pgsource import select_sql
from sqlml.sql.references import referenced_tables


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT * FROM pg.a", {"a": 1}),
        ('SELECT * FROM PG.a JOIN pg."B" USING (id) JOIN other.c USING (id)', {"a": 1, "B": 1}),
        ("SELECT * FROM pg.a x JOIN pg.a y USING (id)", {"a": 2}),
        ("CREATE OR REPLACE MODEL m OPTIONS (target = 'y') AS SELECT * FROM pg.a", {"a": 1}),
        (
            "SELECT id, predict('m', *) FROM pg.a WHERE id IN (SELECT id FROM pg.b)",
            {"a": 1, "b": 1},
        ),
        ("WITH pg AS (SELECT 1 AS x) SELECT * FROM pg", {}),
        ("WITH t AS (SELECT * FROM pg.a) SELECT * FROM t", {"a": 1}),
        ("SELECT pg.x FROM t AS pg", {}),
        ("SELECT * FROM cat.pg.a", {}),
        ("SELECT * FROM evaluate('m', 'SELECT * FROM pg.held_out')", {"held_out": 1}),
        ("FROM pg.a SELECT count(*)", {"a": 1}),
        ("SELECT * FROM pg.a WHERE (", {}),
    ],
)
def test_referenced_tables(sql: str, expected: dict[str, int]) -> None:
    assert referenced_tables(sql, "pg") == Counter(expected)


def test_other_aliases() -> None:
    sql = "SELECT * FROM pg.a JOIN sales.orders USING (id)"
    assert referenced_tables(sql, "sales") == Counter({"orders": 1})


def test_numeric_and_opaque_columns_are_cast() -> None:
    columns = pa.schema(
        [
            ("id", pa.int32()),
            ("price", pa.opaque(pa.string(), "numeric", "PostgreSQL")),
            ("mood", pa.opaque(pa.binary(), "unnamed<oid:1>", "PostgreSQL")),
        ]
    )
    assert select_sql("public", 'odd"name', columns) == (
        'SELECT "id", CAST("price" AS DOUBLE PRECISION) AS "price", '
        'CAST("mood" AS TEXT) AS "mood" FROM "public"."odd""name"'
    )
