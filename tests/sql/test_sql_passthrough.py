"""Plain DuckDB SQL passes through the front end byte for byte, and scripts split right."""

from __future__ import annotations

from pathlib import Path

import duckdb  # noqa: TID251
import pytest
import sqlglot
from hypothesis import given
from hypothesis import strategies as st

from sqlml.sql import (
    QueryStatement,
    parse_statement,
    replace_table_functions,
    rewrite_query,
    split_statements,
)

# Run in order in one DuckDB connection: each is real DuckDB SQL, none is sqlml.
SCRIPT = [
    'CREATE TABLE t (id INTEGER, age INTEGER, plan VARCHAR, "predict" DOUBLE)',
    "INSERT INTO t VALUES (1, 30, 'basic', 0.5), (2, 40, 'pro', 0.7), (3, 50, 'pro', 0.1)",
    "INSERT INTO t BY NAME SELECT 4 AS id, 60 AS age",
    "CREATE VIEW v AS FROM t",
    "CREATE OR REPLACE VIEW pro AS SELECT * FROM t WHERE plan = 'pro'",
    'SELECT predict, "predict" + 1 AS p1 FROM t',
    "SELECT t.predict FROM t AS t WHERE predict > 0.2",
    "SELECT model, models FROM (SELECT 1 AS model, 2 AS models)",
    "CREATE TABLE predict (a INTEGER)",
    "INSERT INTO predict (a) VALUES (1)",
    "SELECT predict.a FROM predict",
    "CREATE TABLE model (evaluate INTEGER)",
    "DESCRIBE model",
    "CREATE SCHEMA model",
    "CREATE TABLE model.t (a INTEGER)",
    "DESCRIBE model.t",
    "DROP TABLE model.t",
    "FROM t SELECT id, age WHERE age > 30",
    "FROM t",
    "SUMMARIZE t",
    "DESCRIBE t",
    "DESCRIBE SELECT 1 AS model",
    "SHOW TABLES",
    "SHOW ALL TABLES",
    "EXPLAIN SELECT * FROM t",
    "EXPLAIN ANALYZE SELECT count(*) FROM t",
    "PIVOT t ON plan USING sum(age) GROUP BY id",
    "UNPIVOT (SELECT id, age, age * 2 AS age2 FROM t) ON age, age2 INTO NAME k VALUE v",
    "SELECT id, rank() OVER (PARTITION BY plan ORDER BY age DESC) AS r FROM t",
    "SELECT id FROM t QUALIFY row_number() OVER (PARTITION BY plan ORDER BY age) = 1",
    "SELECT [1, 2, 3] AS l, {'a': 1, 'b': 'x'} AS s, MAP {'k': 1} AS m",
    "SELECT list_transform([1, 2, 3], lambda x: x * 2), list_filter([1, 2], lambda x: x > 1)",
    "SELECT [x * 2 FOR x IN range(3)] AS l",
    "SELECT * EXCLUDE (predict) REPLACE (age + 1 AS age) FROM t",
    "SELECT COLUMNS('a.*') FROM t",
    "SELECT plan, count(*) FROM t GROUP BY ALL ORDER BY ALL",
    "SELECT 10 // 3 AS q, 2 ** 3 AS p, 'abc'[1:2] AS s, 1::VARCHAR AS c",
    "CREATE MACRO add2(a, b) AS a + b",
    "SELECT add2(1, 2)",
    "CREATE MACRO tm(x) AS TABLE SELECT x AS y",
    "SELECT * FROM tm(3)",
    "CREATE OR REPLACE TEMP MACRO m2(a := 1) AS a",
    "COPY t TO 'out.parquet' (FORMAT parquet)",
    "COPY (SELECT id, age FROM t) TO 'out.csv' (HEADER, DELIMITER ';')",
    "SELECT count(*) FROM read_parquet('out.parquet')",
    "SELECT * FROM read_csv('out.csv', header = true, delim = ';')",
    "SELECT * FROM 'out.parquet' LIMIT 1",
    "ATTACH ':memory:' AS db2",
    "CREATE TABLE db2.main.u AS SELECT 1 AS id",
    "SELECT * FROM t POSITIONAL JOIN db2.u",
    "DETACH db2",
    "PRAGMA table_info('t')",
    "CALL pragma_version()",
    "SET threads = 2",
    "RESET threads",
    "SET VARIABLE x = 42",
    "SELECT getvariable('x') AS x",
    "SELECT $$a;b$$ AS s, 'c;d' AS t -- e;f",
    "/* a; comment */ SELECT 1 AS one",
    "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT * FROM r",
    "SELECT * FROM generate_series(1, 3) AS g(i) ASOF JOIN (SELECT 2 AS i) AS h ON g.i >= h.i",
    "SELECT 1 AS a UNION BY NAME SELECT 2 AS a",
    "SELECT * FROM t USING SAMPLE 50 PERCENT (bernoulli, 42)",
    "CREATE TYPE mood AS ENUM ('sad', 'ok')",
    "CREATE SEQUENCE seq START 1",
    "SELECT nextval('seq')",
    "ALTER TABLE t ADD COLUMN z INTEGER DEFAULT 0",
    "UPDATE t SET z = 1 WHERE id = 1",
    "DELETE FROM t WHERE id = 4",
    "CREATE INDEX idx ON t (id)",
    "BEGIN TRANSACTION",
    "CREATE TABLE t7 (a INTEGER, predict INTEGER GENERATED ALWAYS AS (a * 2) VIRTUAL)",
    "ROLLBACK",
    "  select   *\n  from t\twhere id=1  ",
    "EXPORT DATABASE 'dump'",
    "CHECKPOINT",
    "DROP VIEW pro",
    "DROP TABLE IF EXISTS t CASCADE",
]

# sqlglot cannot parse these; they must pass through all the same.
UNPARSABLE_BY_SQLGLOT = [
    "CREATE OR REPLACE TEMP MACRO m2(a := 1) AS a",
    "CREATE TABLE t7 (a INTEGER, predict INTEGER GENERATED ALWAYS AS (a * 2) VIRTUAL)",
    "EXPORT DATABASE 'dump'",
]


def _never_bind(ref: str, kind: str) -> object:
    raise AssertionError(f"bind must not be called for plain SQL (got {ref!r}, {kind})")


def test_script_is_long_and_varied_enough() -> None:
    assert len(SCRIPT) >= 30
    assert set(UNPARSABLE_BY_SQLGLOT) <= set(SCRIPT)


@pytest.mark.parametrize("sql", UNPARSABLE_BY_SQLGLOT)
def test_the_unparsable_ones_really_are(sql: str) -> None:
    with pytest.raises(sqlglot.errors.ParseError):
        sqlglot.parse_one(sql, read="duckdb")


def test_every_plain_statement_passes_through_byte_for_byte_and_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    con = duckdb.connect()
    for sql in SCRIPT:
        statement = parse_statement(sql)
        assert statement == QueryStatement(sql, ())
        assert statement.sql is sql
        assert rewrite_query(sql, _never_bind) is sql  # type: ignore[arg-type]
        assert replace_table_functions(sql, _never_bind) is sql  # type: ignore[arg-type]
        con.execute(statement.sql)


def test_split_statements_ignores_semicolons_in_strings_and_comments() -> None:
    script = (
        "-- setup; of the demo\n"
        "CREATE TABLE t (a VARCHAR);\n"
        "INSERT INTO t VALUES ('x;y'), ($$p;q$$), (e'\\';');\n"
        '/* two; statements */ SELECT a AS "semi;colon" FROM t;;\n'
        "SELECT predict('m;1', *) FROM t -- trailing; comment\n"
        ";  -- nothing after the last one;\n"
    )
    assert split_statements(script) == [
        "-- setup; of the demo\nCREATE TABLE t (a VARCHAR)",
        "INSERT INTO t VALUES ('x;y'), ($$p;q$$), (e'\\';')",
        '/* two; statements */ SELECT a AS "semi;colon" FROM t',
        "SELECT predict('m;1', *) FROM t -- trailing; comment",
    ]


def test_split_statements_of_the_whole_script_gives_it_back() -> None:
    assert split_statements("\n;\n".join(SCRIPT)) == [sql.strip() for sql in SCRIPT]
    assert split_statements("") == []
    assert split_statements(" ; -- only a comment\n") == []


@given(st.lists(st.text(alphabet="ab;' -\n", max_size=8), min_size=1, max_size=4))
def test_split_statements_keeps_string_literals_whole(parts: list[str]) -> None:
    literals = ["'" + part.replace("'", "''") + "'" for part in parts]
    script = "; ".join(f"SELECT {literal} AS s" for literal in literals)
    assert split_statements(script) == [f"SELECT {literal} AS s" for literal in literals]
