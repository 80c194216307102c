"""Users, roles and rights on a served catalog: a real ``sqlml serve`` with a users file of
Argon2 hashes, the ADBC client, on both engines. Every right is checked by the server."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import adbc_driver_flightsql.dbapi as adbc
import pytest

from sqlml.server.users import hash_password

from .conftest import Server, query, start_server, stop_server

DENIED = r"UNAUTHORIZED: .*PermissionDenied: user '{user}' \({role}\) may not {action} '{model}'"
PASSWORDS = {"alice": "alice-pw", "carol": "carol-pw", "bob": "bob-pw"}
ROLES = {"alice": "admin", "carol": "trainer", "bob": "reader"}


def _users_file(path: Path) -> Path:
    lines = []
    for user, role in ROLES.items():
        lines += [f"[users.{user}]", f'password_hash = "{hash_password(PASSWORDS[user])}"']
        lines += [f'role = "{role}"', ""]
    path.write_text("\n".join(lines))
    return path


@pytest.fixture(scope="module", params=["duckdb", "datafusion"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp(f"roles-{request.param}")
    users = _users_file(tmp / "users.toml")
    running = start_server(tmp, "--users", str(users), engine=request.param)
    yield running
    stop_server(running)


def _as(server: Server, user: str) -> Any:
    return adbc.connect(
        server.uri,
        db_kwargs={"username": user, "password": PASSWORDS[user]},
        autocommit=True,
    )


def _denied(user: str, action: str, model: str) -> str:
    return DENIED.format(user=user, role=ROLES[user], action=action, model=model)


TRAIN = (
    "CREATE {replace}MODEL {name} OPTIONS (target = 'y', algorithm = 'linear') "
    "AS SELECT x, y FROM (SELECT CAST(value AS DOUBLE) AS x, value * 3.0 AS y "
    "FROM generate_series(1, 100) AS t(value))"
)


def test_each_role_runs_what_it_may_and_is_refused_the_rest(served: Server) -> None:
    alice, carol, bob = _as(served, "alice"), _as(served, "carol"), _as(served, "bob")
    try:
        # A trainer creates a model; a reader may not.
        assert query(carol, TRAIN.format(replace="", name="carols")).column(
            "version"
        ).to_pylist() == [1]
        with pytest.raises(adbc.Error, match=_denied("bob", "create model", "bobs")):
            query(bob, TRAIN.format(replace="", name="bobs"))
        # Everyone predicts, lists and describes.
        for con in (alice, carol, bob):
            rows = query(con, "SELECT predict('carols', x) AS p FROM (SELECT 2.0::DOUBLE AS x)")
            assert rows.column("p").to_pylist() == pytest.approx([6.0])
            assert "carols" in query(con, "SHOW MODELS").column("model").to_pylist()
        # The creator owns the model: a trainer replaces their own, not someone else's.
        described = query(carol, "DESCRIBE MODEL carols").to_pylist()
        assert {"property": "owner", "value": "carol"} in described
        replaced = query(carol, TRAIN.format(replace="OR REPLACE ", name="carols"))
        assert replaced.column("version").to_pylist() == [2]
        assert query(alice, TRAIN.format(replace="", name="alices")).num_rows == 1
        with pytest.raises(adbc.Error, match=_denied("carol", "replace model", "alices")) as info:
            query(carol, TRAIN.format(replace="OR REPLACE ", name="alices"))
        assert "(or owning the model; user 'alice' owns it)" in str(info.value)
        # Dropping and deploying take the admin role.
        with pytest.raises(adbc.Error, match=_denied("carol", "deploy model", "carols")):
            query(carol, "DEPLOY MODEL carols VERSION 1 AS hijacked")
        for statement in (
            "DEPLOY MODEL carols VERSION 1 AS hijacked",
            "DEPLOY MODEL carols ROLLBACK",
            "DROP MODEL carols",
            "DROP MODEL carols VERSION 1 FORCE",
        ):
            action = statement.split()[0].lower() + " model"
            for user, con in (("bob", bob), ("carol", carol)):
                with pytest.raises(adbc.Error, match=_denied(user, action, "carols")):
                    query(con, statement)
        replaced = query(alice, TRAIN.format(replace="OR REPLACE ", name="carols"))
        assert replaced.column("version").to_pylist() == [3]
        assert query(alice, "DEPLOY MODEL carols VERSION 1 AS production").num_rows == 1
        dropped = query(alice, "DROP MODEL carols").column("dropped").to_pylist()
        assert dropped == ["all versions and its alias production"]
        # A new model under CREATE OR REPLACE is a creation: a trainer's right.
        assert query(carol, TRAIN.format(replace="OR REPLACE ", name="fresh")).column(
            "version"
        ).to_pylist() == [1]
    finally:
        for con in (alice, carol, bob):
            con.close()


def test_a_reader_runs_plain_sql_that_only_reads(served: Server) -> None:
    carol, bob = _as(served, "carol"), _as(served, "bob")
    try:
        # A reader queries, and keeps temporary tables of their own session (DataFusion
        # has none).
        if served.engine == "duckdb":
            query(bob, "CREATE TEMP TABLE mine AS SELECT 1 AS a")
            assert query(bob, "SELECT a FROM mine").to_pylist() == [{"a": 1}]
        assert query(bob, "EXPLAIN SELECT 1 AS a").num_rows >= 1
        # Writing to the database takes the trainer role, however it is spelt.
        for statement, effect in (
            ("CREATE TABLE shared AS SELECT 1 AS a", "CREATE TABLE"),
            ("INSERT INTO mine VALUES (2)", "INSERT"),
            ("CREATE VIEW v AS SELECT 1 AS a", "CREATE VIEW"),
            ("DROP TABLE mine", "DROP"),
            ("EXPLAIN ANALYZE INSERT INTO mine VALUES (3)", "EXPLAIN ANALYZE INSERT"),
        ):
            with pytest.raises(
                adbc.Error, match=_denied("bob", "write to the database with", effect)
            ):
                query(bob, statement)
        if served.engine == "duckdb":
            assert query(bob, "SELECT count(*) AS n FROM mine").to_pylist() == [{"n": 1}]
        query(carol, "CREATE TABLE shared AS SELECT 1 AS a")
        query(carol, "INSERT INTO shared VALUES (2)")
        assert query(carol, "SELECT count(*) AS n FROM shared").to_pylist() == [{"n": 2}]
    finally:
        carol.close()
        bob.close()


def test_a_wrong_password_is_refused_with_hashes(served: Server) -> None:
    with pytest.raises(adbc.Error, match=r"UNAUTHENTICATED: .*invalid user or password"):
        adbc.connect(
            served.uri, db_kwargs={"username": "alice", "password": "bob-pw"}, autocommit=True
        ).close()
    right = _as(served, "alice")
    try:
        assert query(right, "SELECT 42 AS a").to_pylist() == [{"a": 42}]
    finally:
        right.close()


def test_bad_users_files_stop_the_server_with_one_line(tmp_path: Path) -> None:
    good = hash_password("x")
    cases = {
        "missing.toml": None,
        "role.toml": f'[users.ann]\npassword_hash = "{good}"\nrole = "root"\n',
        "plain.toml": '[users.ann]\npassword_hash = "hunter2"\nrole = "reader"\n',
        "key.toml": f'[users.ann]\npassword_hash = "{good}"\npassword = "x"\n',
        "toml.toml": "[users.ann\n",
    }
    expected = {
        "missing.toml": "cannot read",
        "role.toml": "user 'ann': role 'root' is not one of reader, trainer, admin",
        "plain.toml": "password_hash must be an Argon2 hash (sqlml hash-password)",
        "key.toml": "unknown key 'password'",
        "toml.toml": "is not valid TOML",
    }
    for name, text in cases.items():
        if text is not None:
            (tmp_path / name).write_text(text)
        result = subprocess.run(
            [sys.executable, "-m", "sqlml.cli", "serve", "--port", "0", "--users", name,
             "--catalog", f"sqlite:///{tmp_path / 'catalog.db'}"],
            cwd=tmp_path, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert result.returncode == 1, result.stderr
        assert result.stderr.startswith("error: --users: "), result.stderr
        assert expected[name] in result.stderr
        assert result.stderr.count("\n") == 1, result.stderr


def test_hash_password_prints_a_hash_the_server_accepts(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sqlml.cli", "hash-password"],
        input="pa:ss word\n", capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    hashed = result.stdout.strip()
    assert hashed.startswith("$argon2id$")
    assert "pa:ss word" not in result.stdout
    from sqlml.server.users import User

    assert User("ann", "reader", password_hash=hashed).check("pa:ss word")
    assert not User("ann", "reader", password_hash=hashed).check("pa:ss")
