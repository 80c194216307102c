"""Syntax errors in statements that call sqlml's functions say where the mistake is, in
the engines' words, with a caret under the statement; DESCRIBE MODEL takes a version."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import sqlml
from sqlml.config import ENGINES
from sqlml.errors import AliasNotFound, SqlSyntaxError, VersionNotFound
from sqlml.session import Session
from sqlml.sql import DescribeModelStatement, Sqlml, parse_statement
from tests.session.conftest import numeric

#: (statement, what the message says, line, column): a misspelled keyword before a predict
#: call, a trailing WHERE, an unclosed parenthesis in predict, a missing FROM table, stray
#: commas.
MISTAKES = [
    ("SELEC predict('churn', *) FROM customers", 'syntax error at or near "SELEC"', 1, 1),
    (
        "SELECT predict('churn', *) FROM customers WHERE",
        "syntax error at end of input: WHERE needs a condition",
        1,
        48,
    ),
    (
        "SELECT predict('churn', * FROM customers",
        "Expected ')' to close predict(...), e.g. predict('churn', *) (near \"FROM\"",
        1,
        27,
    ),
    (
        "SELECT predict('churn', *) FROM",
        "syntax error at end of input: FROM needs a table",
        1,
        32,
    ),
    (
        "SELECT id, predict('churn', *)\nFROM\nWHERE id > 1",
        'syntax error at or near "WHERE"',
        3,
        1,
    ),
    ("SELECT id,, predict('churn', *) FROM customers", 'syntax error at or near ","', 1, 11),
    ("SELECT , predict('churn', *) FROM customers", 'syntax error at or near ","', 1, 8),
]

MISTAKE_IDS = ["misspelled", "trailing-where", "unclosed", "no-table", "multiline", "comma", "lead"]


def _check(message: str, sql: str, says: str, line: int, column: int) -> None:
    first, shown, caret = message.split("\n")
    assert first.startswith(says)
    assert first.endswith(f"line {line}, column {column})")
    assert ("end of input" in first) == ("end of input" in says)
    prefix = f"LINE {line}: "
    assert shown == prefix + sql.split("\n")[line - 1]
    assert caret == " " * (len(prefix) + column - 1) + "^"
    for word in ("sqlglot", "<class", "Required keyword", "Invalid expression"):
        assert word not in message


@pytest.mark.parametrize(("sql", "says", "line", "column"), MISTAKES, ids=MISTAKE_IDS)
def test_the_front_end_says_where_the_mistake_is(
    sql: str, says: str, line: int, column: int
) -> None:
    with pytest.raises(SqlSyntaxError) as info:
        parse_statement(sql)
    _check(str(info.value), sql, says, line, column)
    assert info.value.sql == sql


@pytest.fixture(params=ENGINES, scope="module")
def session(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Session]:
    """A session on each engine with a table ``customers`` and a regressor ``churn`` trained
    twice (versions 1 and 2), version 1 deployed as ``production``."""
    directory: Path = tmp_path_factory.mktemp("syntax")
    with sqlml.connect(engine=request.param, catalog=f"sqlite:///{directory / 'c.db'}") as s:
        s.register("customers", numeric(200))
        for replace in ("", "OR REPLACE "):
            s.sql(
                f"CREATE {replace}MODEL churn OPTIONS (target = 'y', exclude = ('id', 'label'), "
                "num_iterations = 3) AS SELECT * FROM customers"
            )
        s.sql("DEPLOY MODEL churn VERSION 1 AS production")
        yield s


@pytest.mark.parametrize(("sql", "says", "line", "column"), MISTAKES, ids=MISTAKE_IDS)
def test_a_session_says_where_the_mistake_is(
    session: Session, sql: str, says: str, line: int, column: int
) -> None:
    with pytest.raises(SqlSyntaxError) as info:
        session.sql(sql)
    _check(str(info.value), sql, says, line, column)


def test_sqlmls_own_messages_are_kept() -> None:
    with pytest.raises(SqlSyntaxError) as info:
        parse_statement("SELECT predict('churn') FROM customers")
    assert str(info.value).startswith(
        "predict() needs its input columns after the model name, e.g. predict('churn', *) "
        '(near ")", line 1, column 23)\n'
    )


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("DESCRIBE MODEL churn@1", ("churn", 1, None)),
        ("describe model churn version 12", ("churn", 12, None)),
        ("DESCRIBE MODEL churn@production", ("churn", None, "production")),
        ("DESCRIBE MODEL churn@latest", ("churn", None, None)),
    ],
)
def test_describe_model_parses_a_version(
    sql: str, expected: tuple[str, int | None, str | None]
) -> None:
    name, version, alias = expected
    assert parse_statement(sql) == DescribeModelStatement(name, version=version, alias=alias)


@pytest.mark.parametrize("sql", ["DESCRIBE MODEL m@production", "DESCRIBE MODEL m VERSION 2"])
def test_the_dialect_generates_describe_as_parsed(sql: str) -> None:
    import sqlglot

    assert sqlglot.parse_one(sql, dialect=Sqlml).sql(dialect=Sqlml) == sql


@pytest.mark.parametrize(
    ("sql", "says"),
    [
        ("DESCRIBE MODEL churn@0", "Expected a version number (1, 2, ...) after @"),
        ("DESCRIBE MODEL churn@", "Expected a version number or an alias after @"),
        ("DESCRIBE MODEL churn VERSION", "Expected a version number (1, 2, ...) after VERSION"),
        ("DESCRIBE MODEL churn@1 VERSION 1", 'syntax error at or near "VERSION"'),
    ],
)
def test_describe_model_version_mistakes(sql: str, says: str) -> None:
    with pytest.raises(SqlSyntaxError, match="line 1, column") as info:
        parse_statement(sql)
    assert str(info.value).startswith(says)


def _described(session: Session, sql: str) -> dict[str, str]:
    table = session.sql(sql).to_pydict()
    return dict(zip(table["property"], table["value"], strict=True))


@pytest.mark.parametrize(
    ("sql", "version", "aliases"),
    [
        ("DESCRIBE MODEL churn@1", "1", "production"),
        ("DESCRIBE MODEL churn VERSION 1", "1", "production"),
        ("DESCRIBE MODEL churn@production", "1", "production"),
        ("DESCRIBE MODEL churn@2", "2", ""),
    ],
)
def test_describe_model_describes_the_version_given(
    session: Session, sql: str, version: str, aliases: str
) -> None:
    described = _described(session, sql)
    assert (described["model"], described["version"], described["aliases"]) == (
        "churn",
        version,
        aliases,
    )


def test_describing_an_unknown_version_or_alias_says_so(session: Session) -> None:
    with pytest.raises(VersionNotFound, match="no version 7"):
        session.sql("DESCRIBE MODEL churn@7")
    with pytest.raises(VersionNotFound, match="no version 9"):
        session.sql("DESCRIBE MODEL churn VERSION 9")
    with pytest.raises(AliasNotFound, match="no alias 'staging'"):
        session.sql("DESCRIBE MODEL churn@staging")
