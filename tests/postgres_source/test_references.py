"""Finding the attached tables a statement reads, with sqlglot."""

from __future__ import annotations

from collections import Counter

import pyarrow as pa
import pytest
from sqlglot.parser import Parser

from sqlml.pgsource import select_sql
from sqlml.sql import parse_statement
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
        ("SHOW MODELS", {}),
        ("DROP MODEL pg", {}),
    ],
)
def test_referenced_tables(sql: str, expected: dict[str, int]) -> None:
    assert referenced_tables(parse_statement(sql), "pg") == Counter(expected)


def test_other_aliases() -> None:
    sql = "SELECT * FROM pg.a JOIN sales.orders USING (id)"
    assert referenced_tables(parse_statement(sql), "sales") == Counter({"orders": 1})


@pytest.mark.parametrize(
    ("sql", "parses"),
    [
        # The front end parsed these: their tables come from that tree.
        ("SELECT predict('m', *) FROM pg.a", 0),
        ("CREATE MODEL m OPTIONS (target = 'y') AS SELECT * FROM pg.a", 0),
        # Plain SQL reaches the engine unparsed: looking for tables is its one parse.
        ("SELECT * FROM pg.a", 1),
    ],
)
def test_a_parsed_statement_is_not_parsed_again(
    sql: str, parses: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    statement = parse_statement(sql)
    calls: list[object] = []
    original = Parser.parse

    def counting(self: Parser, *args: object, **kwargs: object) -> object:
        calls.append(args)
        return original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Parser, "parse", counting)
    assert referenced_tables(statement, "pg") == Counter({"a": 1})
    assert len(calls) == parses


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
