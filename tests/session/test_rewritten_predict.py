"""predict survives clients that regenerate SQL with sqlglot (Superset, SQLMesh): sqlglot
reads predict('m', ...) as BigQuery ML's PREDICT and writes PREDICT(MODEL 'm', ...)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlglot

import sqlml
from sqlml.config import ENGINES
from sqlml.errors import SqlSyntaxError
from sqlml.session import Session
from tests.session.conftest import numeric


@pytest.fixture(params=ENGINES, scope="module")
def session(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Session]:
    directory: Path = tmp_path_factory.mktemp("rewritten")
    with sqlml.connect(engine=request.param, catalog=f"sqlite:///{directory / 'c.db'}") as opened:
        opened.register("t", numeric(300))
        opened.sql(
            "CREATE MODEL m OPTIONS (target = 'y', exclude = ('id', 'label'), "
            "num_iterations = 10) AS SELECT * FROM t"
        )
        yield opened


USER_SQL = [
    "SELECT id, predict('m', *) AS p FROM t ORDER BY id",
    "SELECT c.id, predict('m', c) AS p FROM t AS c ORDER BY c.id",
    "SELECT c.id, predict('m', c.*) AS p FROM t AS c ORDER BY c.id",
]  # (sqlglot itself refuses predict('m', a, b, c): more than its PREDICT's arguments)


@pytest.mark.parametrize("user_sql", USER_SQL)
def test_sql_regenerated_by_sqlglot_predicts_the_same(session: Session, user_sql: str) -> None:
    client_sql = sqlglot.transpile(user_sql)[0]
    assert "PREDICT(MODEL 'm'" in client_sql  # what such a client sends
    assert session.sql(client_sql).to_pylist() == session.sql(user_sql).to_pylist()


@pytest.mark.parametrize(
    "client_sql",
    [
        "SELECT id, PREDICT(MODEL 'm', TABLE *) AS p FROM t ORDER BY id",
        "SELECT c.id, PREDICT(MODEL m, TABLE c) AS p FROM t AS c ORDER BY c.id",
        "SELECT id, PREDICT(MODEL 'm', TABLE x1, x2, x3) AS p FROM t ORDER BY id",
    ],
)
def test_other_regenerated_forms_predict_the_same(session: Session, client_sql: str) -> None:
    expected = session.sql(USER_SQL[0]).to_pylist()
    assert session.sql(client_sql).to_pylist() == expected


def test_an_unaliased_regenerated_call_is_named_for_its_model(session: Session) -> None:
    assert session.sql("SELECT PREDICT(MODEL 'm', *) FROM t LIMIT 1").column_names == ["predict(m)"]


def test_a_call_mangled_beyond_recognition_says_the_client_rewrote_it(session: Session) -> None:
    with pytest.raises(SqlSyntaxError, match=r"your client rewrote predict\(\.\.\.\)"):
        session.sql("SELECT PREDICT(MODEL 'm') FROM t")
