"""Unaliased predict columns are named as the user wrote them, and probability keys are
the ones DESCRIBE shows."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import sqlml
from sqlml.config import ENGINES
from sqlml.errors import UnknownClass
from sqlml.session import Session
from tests.session.conftest import numeric


@pytest.fixture(params=ENGINES, scope="module")
def trained(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Session]:
    """A session on each engine with a boolean classifier ``m`` and a regressor ``r``."""
    directory: Path = tmp_path_factory.mktemp("names")
    with sqlml.connect(engine=request.param, catalog=f"sqlite:///{directory / 'c.db'}") as session:
        session.register("t", numeric(400))
        session.sql(
            "CREATE MODEL m OPTIONS (target = 'label', exclude = ('id', 'y'), "
            "num_iterations = 5) AS SELECT * FROM t"
        )
        session.sql(
            "CREATE MODEL r OPTIONS (target = 'y', exclude = ('id', 'label'), algorithm = "
            "'linear') AS SELECT * FROM t"
        )
        yield session


@pytest.mark.parametrize(
    ("select", "names"),
    [
        ("predict('m', *)", ["predict(m)"]),
        ("id, predict('m@1', *), predict('m', *) AS p", ["id", "predict(m@1)", "p"]),
        ("predict_proba('m', *)['true']", ["predict_proba(m)['true']"]),
        ("1 - predict_proba('m', *)['false']", ["1 - predict_proba(m)['false']"]),
        ("predict('r', x1, x2, x3)", ["predict(r)"]),  # compiled to SQL on the auto path
        ("round(predict('r',\n   *), 2)", ["round(predict(r), 2)"]),
    ],
)
def test_unaliased_predict_columns_are_named_as_written(
    trained: Session, select: str, names: list[str]
) -> None:
    result = trained.sql(f"SELECT {select} FROM t LIMIT 3")
    assert result.column_names == names
    assert result.num_rows == 3


def test_a_subquerys_predict_column_is_named_too(trained: Session) -> None:
    result = trained.sql("SELECT * FROM (SELECT id, predict('m', *) FROM t) AS s LIMIT 2")
    assert result.column_names == ["id", "predict(m)"]


def test_describe_shows_the_probability_keys(trained: Session) -> None:
    rows = dict(zip(*trained.sql("DESCRIBE MODEL m").to_pydict().values(), strict=True))
    assert rows["classes"] == "'false', 'true'"
    keys = trained.sql("SELECT map_keys(predict_proba('m', *)) AS k FROM t LIMIT 1")
    assert keys.column("k")[0].as_py() == ["false", "true"]


def test_a_key_that_is_not_a_class_is_an_error_that_suggests_the_right_one(
    trained: Session,
) -> None:
    with pytest.raises(UnknownClass, match=r"no class 'True'.*did you mean 'true'\?") as info:
        trained.sql("SELECT predict_proba('m', *)['True'] AS p FROM t")
    assert info.value.keys == ("false", "true")
    with pytest.raises(UnknownClass, match=r"no class 'yes'.*'false', 'true'"):
        trained.sql("SELECT id FROM t WHERE predict_proba('m', *)['yes'] > 0.5")
    # the right key reads a probability on every row
    total = trained.sql("SELECT count(predict_proba('m', *)['true']) AS n FROM t")
    assert total.column("n")[0].as_py() == 400
