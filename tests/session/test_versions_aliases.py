"""Dropping a deployed version takes FORCE, and DEPLOY MODEL ... ROLLBACK moves an alias
back to the version deployed before, on both catalog stores."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import sqlml
from sqlml.errors import AliasNotFound, NothingToRollBack, VersionDeployed, VersionNotFound
from sqlml.session import Session
from tests.session.conftest import numeric

TRAIN = (
    "CREATE OR REPLACE MODEL m OPTIONS (target = 'y', exclude = ('id', 'label'), "
    "algorithm = 'linear') AS SELECT * FROM t WHERE id % 3 <> {skip}"
)


@pytest.fixture
def session(catalog_uri: str) -> Iterator[Session]:
    """Three versions of the model ``m``."""
    with sqlml.connect(catalog=catalog_uri) as opened:
        opened.register("t", numeric(300))
        for skip in range(3):
            opened.sql(TRAIN.format(skip=skip))
        yield opened


def _deployed(session: Session, alias: str = "production") -> int:
    return next(a.version for a in session.catalog.list_aliases("m") if a.alias == alias)


def _deploy(session: Session, statement: str) -> tuple[str, int]:
    row = session.sql(statement).to_pylist()[0]
    return row["alias"], row["version"]


def test_a_deployed_version_is_dropped_only_with_force(session: Session) -> None:
    session.sql("DEPLOY MODEL m VERSION 1 AS production")
    with pytest.raises(VersionDeployed, match=r"deployed as production.*VERSION 1 FORCE"):
        session.sql("DROP MODEL m VERSION 1")
    assert session.sql("SELECT count(predict('m@production', *)) AS n FROM t").to_pylist() == [
        {"n": 300}
    ]
    # An undeployed version drops as before; an unknown one is still VersionNotFound.
    assert session.sql("DROP MODEL m VERSION 2").column("dropped").to_pylist() == ["version 2"]
    with pytest.raises(VersionNotFound):
        session.sql("DROP MODEL m VERSION 9")
    dropped = session.sql("DROP MODEL m VERSION 1 FORCE").column("dropped").to_pylist()
    assert dropped == ["version 1 and its alias production"]
    with pytest.raises(AliasNotFound):
        session.sql("SELECT predict('m@production', *) FROM t")


def test_rollback_walks_back_through_the_deployments(session: Session) -> None:
    for version in (1, 2, 3):
        session.sql(f"DEPLOY MODEL m VERSION {version}")
    session.sql("DEPLOY MODEL m VERSION 1 AS staging")
    assert _deploy(session, "DEPLOY MODEL m ROLLBACK") == ("production", 2)
    assert _deployed(session) == 2
    assert _deploy(session, "DEPLOY MODEL m ROLLBACK AS production") == ("production", 1)
    with pytest.raises(NothingToRollBack, match=r"'production' of model 'm'.*version 1"):
        session.sql("DEPLOY MODEL m ROLLBACK")
    assert _deployed(session) == 1
    assert _deployed(session, "staging") == 1  # another alias has its own history
    with pytest.raises(NothingToRollBack):
        session.sql("DEPLOY MODEL m ROLLBACK AS staging")
    with pytest.raises(AliasNotFound):
        session.sql("DEPLOY MODEL m ROLLBACK AS canary")


def test_rollback_skips_dropped_versions_and_repeats_of_one(session: Session) -> None:
    for version in (1, 2, 2, 3):
        session.sql(f"DEPLOY MODEL m VERSION {version}")
    session.sql("DROP MODEL m VERSION 2")
    assert _deploy(session, "DEPLOY MODEL m ROLLBACK") == ("production", 1)


def test_rollback_brings_back_an_alias_dropped_with_its_version(session: Session) -> None:
    session.sql("DEPLOY MODEL m VERSION 1")
    session.sql("DEPLOY MODEL m VERSION 3")
    session.sql("DROP MODEL m VERSION 3 FORCE")
    assert "production" not in [a.alias for a in session.catalog.list_aliases("m")]
    assert _deploy(session, "DEPLOY MODEL m ROLLBACK") == ("production", 1)
    predicted = session.sql("SELECT predict('m@production', *) AS p FROM t LIMIT 1")
    assert predicted.num_rows == 1
