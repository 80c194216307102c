"""Models compiled to one SQL expression agree with predict() on DuckDB, DataFusion and
PostgreSQL: regression values and probabilities to 1e-9, identical class labels.

The test rows hold what the training rows never had: NULL in a numeric feature that had
no NULLs (LightGBM's missing type None), categories unseen at training, and NULL in
every kind of feature.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pyarrow as pa
import pytest
from psycopg import sql as pgsql

import sqlml
from sqlml.catalog import open_catalog
from sqlml.engines.datafusion import DataFusionEngine
from sqlml.errors import CompileNotSupported, ModelNotFound, NotAClassifier, UnknownDialect
from sqlml.session import Session
from sqlml.sql.compile import compile_model, dialect_names, predict_expression
from tests.conftest import with_database
from tests.test_cli import run

TOLERANCE = 1e-9
FEATURES = ("x_nulls", "x_dense", "n_int", "plan", "flag", "day", "at")
PG_TYPES = {
    "id": "bigint",
    "x_nulls": "double precision",
    "x_dense": "double precision",
    "n_int": "bigint",
    "plan": "text",
    "flag": "boolean",
    "day": "date",
    "at": "timestamp",
}

#: name -> (algorithm, task, target, extra options)
MODELS: dict[str, tuple[str, str, str, str]] = {
    "lgb_reg": ("lightgbm", "regression", "y", ""),
    "lgb_zero": ("lightgbm", "regression", "y", ", zero_as_missing = true"),
    "lgb_bin": ("lightgbm", "classification", "bin", ""),
    "lgb_multi": ("lightgbm", "classification", "cls", ""),
    "lgb_int": ("lightgbm", "classification", "grade", ""),
    "linear": ("linear", "regression", "y", ""),
    "logistic_bin": ("logistic", "classification", "bin", ""),
    "logistic_multi": ("logistic", "classification", "cls", ""),
    "logistic_int": ("logistic", "classification", "grade", ""),
}
TARGETS = ("y", "bin", "cls", "grade")
CLASSIFIERS = [name for name, spec in MODELS.items() if spec[1] == "classification"]


def table(rows: int, seed: int, *, test: bool) -> pa.Table:
    """Features of every kind; ``test`` rows add NULLs and unseen categories."""
    rng = np.random.default_rng(seed)
    x_nulls = rng.normal(size=rows)
    x_dense = rng.normal(size=rows)
    n_int = rng.integers(-5, 20, rows)
    plans = np.array(["basic", "pro", "team", "max"])
    plan = plans[rng.integers(0, 4, rows)].astype(object)
    flag = rng.random(rows) < 0.4
    day = np.datetime64("2021-01-01") + rng.integers(0, 900, rows).astype("timedelta64[D]")
    at = np.datetime64("2022-01-01T00:00:00", "us") + rng.integers(
        0, 86_400 * 400 * 10**6, rows
    ).astype("timedelta64[us]")
    score = (
        1.5 * np.where(np.isnan(x_nulls), 0.0, x_nulls)
        - x_dense
        + 0.1 * n_int
        + np.select([plan == "pro", plan == "team"], [1.0, -1.0], 0.0)
        + 0.7 * flag
        + 0.002 * (day - np.datetime64("2021-01-01")).astype(float)
        + rng.normal(0, 0.3, rows)
    )
    missing = rng.random((6, rows)) < 0.08
    if test:
        plan[rng.random(rows) < 0.1] = "enterprise"  # unseen at training
    columns: dict[str, pa.Array] = {
        "id": pa.array(np.arange(rows), pa.int64()),
        "x_nulls": pa.array(x_nulls, mask=missing[0]),
        "x_dense": pa.array(x_dense, mask=missing[1] if test else None),
        "n_int": pa.array(n_int, pa.int64(), mask=missing[2]),
        "plan": pa.array(plan, pa.string(), mask=missing[3]),
        "flag": pa.array(flag, mask=missing[4]),
        "day": pa.array(day, pa.date32(), mask=missing[5] if test else None),
        "at": pa.array(at, pa.timestamp("us")),
        "y": score,
        "bin": pa.array(score > 0.5),
        "cls": pa.array(np.where(score > 1.5, "high", np.where(score > -0.5, "mid", "low"))),
        "grade": pa.array(np.where(score > 1.5, 5, np.where(score > -0.5, 0, -1)), pa.int64()),
    }
    if test:
        for target in TARGETS:
            del columns[target]
    return pa.table(columns)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def catalog_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A catalog holding every model of MODELS, trained once for the module."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('compile') / 'catalog.db'}"
    train = table(3000, seed=1, test=False)
    with sqlml.connect(catalog=uri) as session:
        session.register("train", train)
        for name, (algorithm, task, target, extra) in MODELS.items():
            excluded = ", ".join(f"'{t}'" for t in ("id", *TARGETS) if t != target)
            trees = ", num_iterations = 8, num_leaves = 15" if algorithm == "lightgbm" else ""
            session.sql(
                f"CREATE MODEL {name} OPTIONS (algorithm = '{algorithm}', task = '{task}', "
                f"target = '{target}', exclude = ({excluded}){trees}{extra}) "
                "AS SELECT * FROM train"
            )
    return uri


@pytest.fixture(scope="module")
def test_rows() -> pa.Table:
    return table(1000, seed=2, test=True)


@pytest.fixture(scope="module")
def duckdb_session(catalog_uri: str, test_rows: pa.Table) -> Iterator[Session]:
    with sqlml.connect(engine="duckdb", catalog=catalog_uri) as session:
        session.register("test", test_rows)
        yield session


@pytest.fixture(scope="module")
def datafusion_session(catalog_uri: str, test_rows: pa.Table) -> Iterator[Session]:
    with sqlml.connect(engine="datafusion", catalog=catalog_uri) as session:
        session.register("test", test_rows)
        yield session


@pytest.fixture(scope="module")
def pg(postgres_server_uri: str, test_rows: pa.Table) -> Iterator[psycopg.Connection[Any]]:
    """A connection to a fresh database holding the test rows as table ``test``."""
    dbname = f"sqlml_test_{uuid.uuid4().hex[:16]}"
    ident = pgsql.Identifier(dbname)
    with psycopg.connect(postgres_server_uri, autocommit=True) as admin:
        admin.execute(pgsql.SQL("CREATE DATABASE {} TEMPLATE template0").format(ident))
    try:
        with psycopg.connect(with_database(postgres_server_uri, dbname), autocommit=True) as conn:
            load_postgres(conn, test_rows)
            yield conn
    finally:
        with psycopg.connect(postgres_server_uri, autocommit=True) as admin:
            admin.execute(pgsql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))


def load_postgres(conn: psycopg.Connection[Any], rows: pa.Table, name: str = "test") -> None:
    columns = pgsql.SQL(", ").join(
        pgsql.SQL("{} {}").format(pgsql.Identifier(c), pgsql.SQL(PG_TYPES[c]))
        for c in rows.column_names
    )
    conn.execute(pgsql.SQL("CREATE TABLE {} ({})").format(pgsql.Identifier(name), columns))
    copy = pgsql.SQL("COPY {} FROM STDIN").format(pgsql.Identifier(name))
    with conn.cursor() as cursor, cursor.copy(copy) as writer:
        for row in rows.to_pylist():
            writer.write_row(list(row.values()))


# --------------------------------------------------------------------------- helpers


def expected(session: Session, name: str, *, proba: bool) -> list[Any]:
    """What the predict / predict_proba function returns for the test rows, by id."""
    function = "predict_proba" if proba else "predict"
    result = session.sql(f"SELECT id, {function}('{name}', *) AS p FROM test ORDER BY id")
    values = result["p"].to_pylist()
    if proba:
        return [[probability for _, probability in row] for row in values]
    return values


def compiled_rows(
    engine: str, sessions: dict[str, Any], name: str, *, proba: bool
) -> list[list[Any]]:
    """Each test row's compiled outputs (one per expression), by id."""
    duckdb: Session = sessions["duckdb"]
    dialect = {"duckdb": "duckdb", "datafusion": "datafusion", "postgres": "postgres"}[engine]
    text = duckdb.compile_model(name, dialect, proba=proba)
    query = f"SELECT id, {text} FROM test ORDER BY id"
    if engine == "postgres":
        return [list(row[1:]) for row in sessions["postgres"].execute(query).fetchall()]
    result = sessions[engine].sql(query)
    return [list(row.values())[1:] for row in result.to_pylist()]


def assert_close(got: list[list[Any]], want: list[Any]) -> None:
    assert len(got) == len(want)
    differences = []
    for got_row, want_row in zip(got, want, strict=True):
        wanted = want_row if isinstance(want_row, list) else [want_row]
        differences += [abs(g - w) for g, w in zip(got_row, wanted, strict=True)]
    assert max(differences) < TOLERANCE


@pytest.fixture(params=["duckdb", "datafusion", "postgres"])
def sessions(
    request: pytest.FixtureRequest, duckdb_session: Session, datafusion_session: Session
) -> dict[str, Any]:
    """The engine under test (``engine``) and the DuckDB session computing expectations."""
    found: dict[str, Any] = {
        "engine": request.param,
        "duckdb": duckdb_session,
        "datafusion": datafusion_session,
    }
    if request.param == "postgres":
        found["postgres"] = request.getfixturevalue("pg")
    return found


# --------------------------------------------------------------------------- agreement


@pytest.mark.parametrize("name", list(MODELS))
def test_predict_agrees(name: str, sessions: dict[str, Any]) -> None:
    engine = sessions["engine"]
    want = expected(sessions["duckdb"], name, proba=False)
    got = compiled_rows(engine, sessions, name, proba=False)
    if MODELS[name][1] == "regression":
        assert_close(got, want)
    else:
        assert [row[0] for row in got] == want
        assert len(set(want)) > 1  # the labels are not all the same


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_proba_agrees(name: str, sessions: dict[str, Any]) -> None:
    engine = sessions["engine"]
    want = expected(sessions["duckdb"], name, proba=True)
    got = compiled_rows(engine, sessions, name, proba=True)
    if len(want[0]) == 2:
        want = [row[1] for row in want]  # the positive (second) class
    assert_close(got, want)


def test_null_routing_is_exercised(duckdb_session: Session) -> None:
    """The test rows reach every kind of missing-value routing the trees have."""
    kinds: set[tuple[str, str]] = set()
    for name in ("lgb_reg", "lgb_zero", "lgb_bin", "lgb_multi"):
        booster = duckdb_session.models.get(name).booster
        stack = [tree["tree_structure"] for tree in booster.dump_model()["tree_info"]]
        while stack:
            node = stack.pop()
            if "split_feature" in node:
                kinds.add((node["decision_type"], node["missing_type"]))
                stack += [node["left_child"], node["right_child"]]
    assert {("<=", "None"), ("<=", "NaN"), ("<=", "Zero"), ("==", "None")} <= kinds


def test_many_trees_parse_and_run(
    tmp_path: Path,
    test_rows: pa.Table,
    datafusion_session: Session,
    pg: psycopg.Connection[Any],
) -> None:
    """A 100-tree model fits DataFusion's and PostgreSQL's parsers as they come."""
    uri = f"sqlite:///{tmp_path / 'big.db'}"
    with sqlml.connect(catalog=uri) as session:
        session.register("train", table(3000, seed=3, test=False))
        session.sql(
            "CREATE MODEL big OPTIONS (target = 'y', exclude = ('id', 'bin', 'cls', 'grade'), "
            "num_iterations = 100, num_leaves = 31, min_data_in_leaf = 5) AS SELECT * FROM train"
        )
        session.register("test", test_rows)
        want = expected(session, "big", proba=False)
        model = session.models.get("big")
        assert len(model.booster.dump_model()["tree_info"]) == 100
        for dialect, runner in [
            ("postgres", lambda q: [list(r[1:]) for r in pg.execute(q).fetchall()]),
            ("datafusion", lambda q: [list(r.values())[1:] for r in df.sql(q).to_pylist()]),
        ]:
            with Session(DataFusionEngine(), session.catalog, owns_catalog=False) as df:
                df.register("test", test_rows)
                text = compile_model(model, dialect)
                assert_close(runner(f"SELECT id, {text} FROM test ORDER BY id"), want)


def test_compiled_sql_mentions_features_by_quoted_name(duckdb_session: Session) -> None:
    text = duckdb_session.compile_model("lgb_reg", "postgres")
    assert '"x_nulls"' in text
    assert "DOUBLE PRECISION" in text


def test_balanced_sum_is_shallow(duckdb_session: Session) -> None:
    from sqlglot import exp

    expression = predict_expression(duckdb_session.models.get("lgb_reg"))
    additions = [node for node in expression.walk() if isinstance(node, exp.Add)]
    assert len(additions) == 7  # 8 trees

    def depth(node: exp.Expression) -> int:
        return 0 if node.parent is None else 1 + depth(node.parent)

    levels = {depth(node) for node in additions}
    assert max(levels) - min(levels) <= 4  # Paren + Add per level: log2(8) = 3 levels


# --------------------------------------------------------------------------- CLI


def test_cli_output_runs_in_postgres(
    catalog_uri: str, tmp_path: Path, pg: psycopg.Connection[Any], duckdb_session: Session
) -> None:
    result = run("compile", "lgb_multi@1", "--dialect", "postgres", "--catalog", catalog_uri,
                 cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    query = f"SELECT {result.stdout} FROM test ORDER BY id"
    labels = [row[0] for row in pg.execute(query).fetchall()]
    assert labels == expected(duckdb_session, "lgb_multi", proba=False)

    proba = run("compile", "lgb_multi", "--dialect", "postgres", "--proba", "--catalog",
                catalog_uri, cwd=tmp_path)  # fmt: skip
    assert proba.returncode == 0, proba.stderr
    cursor = pg.execute(f"SELECT {proba.stdout} FROM test ORDER BY id")
    assert [column.name for column in cursor.description or []] == ["high", "low", "mid"]
    assert_close([list(row) for row in cursor.fetchall()],
                 expected(duckdb_session, "lgb_multi", proba=True))  # fmt: skip


def test_cli_unknown_dialect(catalog_uri: str, tmp_path: Path) -> None:
    result = run("compile", "lgb_reg", "--dialect", "postgress", "--catalog", catalog_uri,
                 cwd=tmp_path)  # fmt: skip
    assert result.returncode == 1
    assert "unknown SQL dialect 'postgress'; did you mean 'postgres'?" in result.stderr


# --------------------------------------------------------------------------- errors


def test_random_forest_is_not_supported(tmp_path: Path) -> None:
    with sqlml.connect(catalog=f"sqlite:///{tmp_path / 'rf.db'}") as session:
        session.register("train", table(300, seed=4, test=False))
        session.sql(
            "CREATE MODEL forest OPTIONS (algorithm = 'random_forest', target = 'y', "
            "exclude = ('id', 'bin', 'cls', 'grade'), n_estimators = 3) AS SELECT * FROM train"
        )
        with pytest.raises(CompileNotSupported, match="random_forest algorithm") as info:
            session.compile_model("forest")
        assert info.value.model == "forest@1"


def test_unknown_dialect_lists_the_valid_ones(duckdb_session: Session) -> None:
    with pytest.raises(UnknownDialect) as info:
        duckdb_session.compile_model("lgb_reg", "duckdbb")
    assert "did you mean 'duckdb'?" in str(info.value)
    assert {"duckdb", "postgres", "datafusion"} <= set(info.value.choices)
    assert info.value.choices == dialect_names()


def test_unknown_model(duckdb_session: Session) -> None:
    with pytest.raises(ModelNotFound, match="'nope' does not exist"):
        duckdb_session.compile_model("nope", "postgres")
    with pytest.raises(ModelNotFound, match="no version 9"):
        duckdb_session.compile_model("lgb_reg@9", "postgres")


def test_proba_of_a_regression_model(duckdb_session: Session) -> None:
    with pytest.raises(NotAClassifier):
        duckdb_session.compile_model("linear", proba=True)


def test_artifact_bytes_compile_too(catalog_uri: str) -> None:
    with open_catalog(catalog_uri) as catalog:
        version = catalog.resolve("logistic_bin")
        blob = catalog.load_artifact(version.model, version.version)
    text = compile_model(blob, "duckdb")
    assert text.startswith("CASE WHEN")
