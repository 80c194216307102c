"""Bad input is an sqlml error naming the culprit, on every engine, the CLI and Flight SQL.

Each case was once a raw Python or native error (``ValueError: Input contains NaN``, a
``KeyError`` from pyarrow, LightGBM's ``Unknown token abc in data file``), a LightGBM
``[Fatal]`` line on stderr, or silently accepted.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import adbc_driver_flightsql.dbapi as adbc
import numpy as np
import pyarrow as pa
import pyarrow.flight as flight
import pytest

import sqlml
from sqlml import cli, errors
from sqlml.errors import (
    DuplicateColumn,
    EvaluationError,
    InvalidOption,
    NonFiniteValues,
    QueryError,
    SqlmlError,
    TrainingError,
    UnsupportedColumnType,
)
from sqlml.server.errors import STATUSES, flight_error
from sqlml.session import Session
from sqlml.udfs.train import train
from tests.conftest import ENGINES
from tests.server.conftest import start_server, stop_server

ROWS = 60


def data(rows: int = ROWS, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    x0, x1 = rng.normal(size=rows), rng.normal(size=rows)
    return pa.table(
        {
            "x0": x0,
            "x1": x1,
            "label": np.where(x0 + 0.3 * rng.normal(size=rows) > 0, "yes", "no"),
            "y": 2 * x0 - x1 + rng.normal(0, 0.1, rows),
        }
    )


def with_bad(values: list[float]) -> pa.Table:
    """``data()`` with the first ``len(values)`` targets replaced."""
    table = data()
    y = table["y"].to_numpy().copy()
    y[: len(values)] = values
    return table.set_column(table.column_names.index("y"), "y", pa.array(y))


@pytest.fixture(params=ENGINES)
def session(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Session]:
    """A session on each engine over a SQLite catalog, with ``t`` (good data) registered."""
    with sqlml.connect(engine=request.param, catalog=f"sqlite:///{tmp_path / 'c.db'}") as opened:
        opened.register("t", data())
        yield opened


def create(target: str, options: str = "", select: str = "SELECT * FROM t") -> str:
    extra = f", {options}" if options else ""
    return f"CREATE MODEL m OPTIONS (target = '{target}'{extra}) AS {select}"


# ------------------------------------------------------------------ the reported cases


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_regression_target(session: Session, bad: float) -> None:
    session.register("bad", with_bad([bad, 1.0, bad]))
    with pytest.raises(NonFiniteValues, match=r"target column 'y' has 2 NaN or infinite") as info:
        session.sql(create("y", select="SELECT x0, x1, y FROM bad"))
    assert (info.value.model, info.value.column, info.value.count) == ("m", "y", 2)
    assert "make the values NULL" in str(info.value)
    assert session.catalog.list_models() == []


@pytest.mark.parametrize("algorithm", ["linear", "random_forest"])
def test_non_finite_target_with_scikit_learn(session: Session, algorithm: str) -> None:
    session.register("bad", with_bad([float("nan")]))
    with pytest.raises(NonFiniteValues, match="'y'"):
        session.sql(create("y", f"algorithm = '{algorithm}'", "SELECT x0, x1, y FROM bad"))


def test_nan_in_a_float_classification_target(session: Session) -> None:
    session.register("bad", pa.table({"x": [1.0, 2.0] * 10, "c": [float("nan"), 1.0] * 10}))
    with pytest.raises(NonFiniteValues, match="'c' has 10 NaN"):
        session.sql(create("c", "task = 'classification'", "SELECT * FROM bad"))


@pytest.mark.parametrize(
    ("select", "column"),
    [("SELECT x0, x0, label FROM t", "x0"), ("SELECT x0, label, label FROM t", "label")],
)
def test_duplicate_column_names(session: Session, select: str, column: str) -> None:
    """DuckDB hands sqlml both columns; DataFusion refuses the query itself."""
    if session.engine.name == "duckdb":
        with pytest.raises(DuplicateColumn, match=f"2 columns named '{column}'") as info:
            session.sql(create("label", select=select))
        assert info.value.column == column
        assert f"{column} AS {column}_2" in str(info.value)
    else:
        with pytest.raises(QueryError, match="unique"):
            session.sql(create("label", select=select))


def test_names_differing_only_in_case_are_duplicates() -> None:
    table = pa.table({"x0": [1.0, 2.0, 3.0], "X0": [1.0, 2.0, 3.0], "y": [1.0, 2.0, 3.0]})
    with pytest.raises(DuplicateColumn, match="differ only in case") as info:
        train(table, name="m", options={"target": "y"})
    assert info.value.names == ("x0", "X0")


def test_unparseable_number_names_the_option(session: Session) -> None:
    with pytest.raises(InvalidOption, match="must be a number greater than 0, got 'abc'") as info:
        session.sql(create("y", "learning_rate = 'abc'", "SELECT x0, y FROM t"))
    assert info.value.option == "learning_rate"
    assert "data file" not in str(info.value)


def test_out_of_range_value_is_refused_before_lightgbm(
    session: Session, capfd: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(InvalidOption, match=r"must be an integer in \(1, 131072\], got -3"):
        session.sql(create("y", "num_leaves = -3", "SELECT x0, y FROM t"))
    out, err = capfd.readouterr()
    assert "[LightGBM]" not in out + err


def test_evaluate_on_zero_rows_is_an_evaluation_error(session: Session) -> None:
    session.sql(create("label", select="SELECT x0, x1, label FROM t"))
    with pytest.raises(EvaluationError, match="no rows whose target 'label' is not NULL") as info:
        session.sql("SELECT * FROM evaluate('m', 'SELECT * FROM t WHERE x0 > 100')")
    assert "cannot train" not in str(info.value)
    assert info.value.model == "m@1"


def test_exclude_naming_the_target(session: Session) -> None:
    with pytest.raises(InvalidOption, match="names the target 'label'") as info:
        session.sql(create("label", "exclude = 'label'", "SELECT x0, label FROM t"))
    assert info.value.option == "exclude"
    with pytest.raises(InvalidOption, match="names the target 'label'"):
        session.sql(create("label", "exclude = ('x1', 'LABEL')", "SELECT x0, x1, label FROM t"))


# -------------------------------------------------------------- the many more like them


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("num_leaves", "'many'", "must be an integer in"),
        ("num_leaves", "3.5", "must be an integer in"),
        ("num_leaf", "1", r"must be an integer in \(1, 131072\] \(LightGBM's 'num_leaves'\)"),
        ("learning_rate", "-0.1", "must be a number greater than 0"),
        ("learning_rate", "'nan'", "must be a number greater than 0"),
        ("num_iterations", "'x'", "must be an integer at least 1"),
        ("num_iterations", "0", "must be an integer at least 1"),
        ("bagging_fraction", "2", r"must be a number in \(0, 1\]"),
        ("max_bin", "1", "must be an integer greater than 1"),
        ("num_threads", "'four'", "must be an integer, got 'four'"),
        ("force_row_wise", "'yes'", "must be true or false"),
        ("lambda_l2", "NULL", "is NULL"),
        ("objective", "'foo'", "LightGBM does not accept 'foo'"),
        ("boosting", "'xx'", "LightGBM does not accept 'xx'"),
    ],
)
def test_bad_lightgbm_values(session: Session, option: str, value: str, message: str) -> None:
    with pytest.raises(InvalidOption, match=message) as info:
        session.sql(create("y", f"{option} = {value}", "SELECT x0, y FROM t"))
    assert info.value.option == option


def test_good_lightgbm_values_given_as_text_are_read_as_numbers(session: Session) -> None:
    session.sql(create("y", "num_leaves = '7', learning_rate = '0.2', extra_trees = 'true'"))
    (version,) = session.catalog.list_versions("m")
    params = version.hyperparameters
    assert (params["num_leaves"], params["learning_rate"], params["extra_trees"]) == (7, 0.2, True)


@pytest.mark.parametrize(
    ("algorithm", "target", "option", "value", "message"),
    [
        ("random_forest", "y", "n_estimators", "-1", r"an int in the range \[1, inf\)"),
        ("random_forest", "y", "max_depth", "'deep'", "RandomForestRegressor, got 'deep'"),
        ("logistic", "label", "C", "-1", r"a float in the range \(0.0, inf\]"),
        ("linear", "y", "fit_intercept", "'maybe'", "instance of 'bool'"),
    ],
)
def test_bad_scikit_learn_values(
    session: Session, algorithm: str, target: str, option: str, value: str, message: str
) -> None:
    with pytest.raises(InvalidOption, match=message) as info:
        session.sql(create(target, f"algorithm = '{algorithm}', {option} = {value}"))
    assert info.value.option == option
    assert "scikit-learn failed" not in str(info.value)


@pytest.mark.parametrize("algorithm", ["linear", "random_forest"])
def test_infinite_features_with_scikit_learn(session: Session, algorithm: str) -> None:
    x = np.arange(30, dtype=np.float64)
    x[[3, 7]] = np.inf
    session.register("bad", pa.table({"x": x, "y": np.arange(30, dtype=np.float64)}))
    with pytest.raises(NonFiniteValues, match="feature column 'x' has 2 infinite") as info:
        session.sql(create("y", f"algorithm = '{algorithm}'", "SELECT * FROM bad"))
    assert "algorithm = 'lightgbm'" in str(info.value)


def test_lightgbm_takes_infinite_and_nan_features(session: Session) -> None:
    x = np.arange(30, dtype=np.float64)
    x[[3, 7]], x[[5]] = np.inf, np.nan
    session.register("odd", pa.table({"x": x, "y": np.arange(30, dtype=np.float64)}))
    assert session.sql(create("y", select="SELECT * FROM odd"))["rows"][0].as_py() == 30


def test_huge_values_train_and_score() -> None:
    """Integers beyond 2**53 and floats near the float64 limit: no overflow, no warning."""
    rng = np.random.default_rng(1)
    big = pa.array(rng.integers(2**60, 2**63, 40, dtype=np.uint64), pa.uint64())
    table = pa.table({"x": rng.normal(size=40) * 1e300, "y": big})
    trained = train(table, name="m", options={"target": "y", "task": "regression"})
    assert trained.spec.row_count == 40
    scaled = train(
        table, name="m", options={"target": "y", "task": "regression", "algorithm": "linear"}
    )
    assert "mae" in scaled.spec.metrics


@pytest.mark.parametrize(
    ("select", "error", "message"),
    [
        ("SELECT * FROM t LIMIT 0", TrainingError, "has no rows"),
        ("SELECT * FROM t LIMIT 1", TrainingError, "1 labelled row.* too few"),
        ("SELECT x0, CAST(NULL AS DOUBLE) AS y FROM t", TrainingError, "NULL in every row"),
        ("SELECT x0, 1.5 AS y FROM t", None, None),
        ("SELECT x0, [x0, x1] AS y FROM t", UnsupportedColumnType, "'y' has type list"),
        ("SELECT [x0, x1] AS f, y FROM t", UnsupportedColumnType, "'f' has type list"),
    ],
)
def test_degenerate_training_sets(
    session: Session, select: str, error: type[SqlmlError] | None, message: str | None
) -> None:
    if error is None:
        assert session.sql(create("y", select=select))["rows"][0].as_py() == ROWS
        return
    with pytest.raises(error, match=message):
        session.sql(create("y", select=select))


def test_too_few_rows_for_test_size(session: Session) -> None:
    with pytest.raises(TrainingError, match=r"too few to hold out test_size = 0.99"):
        session.sql(create("y", "test_size = 0.99", "SELECT x0, y FROM t"))


def test_evaluate_without_the_target(session: Session) -> None:
    session.sql(create("label", select="SELECT x0, x1, label FROM t"))
    with pytest.raises(EvaluationError, match="no column 'label', the model's target"):
        session.sql("SELECT * FROM evaluate('m', 'SELECT x0, x1 FROM t')")


def test_evaluate_with_a_target_of_the_wrong_type(session: Session) -> None:
    session.sql(create("y", select="SELECT x0, x1, y FROM t"))
    with pytest.raises(EvaluationError, match="'y' is string, but a regression model needs"):
        session.sql("SELECT * FROM evaluate('m', 'SELECT x0, x1, label AS y FROM t')")


def test_evaluate_with_non_finite_targets(session: Session) -> None:
    session.register("bad", with_bad([float("nan"), float("inf")]))
    session.sql(create("y", select="SELECT x0, x1, y FROM t"))
    with pytest.raises(EvaluationError, match="'y' has 2 NaN or infinite"):
        session.sql("SELECT * FROM evaluate('m', 'SELECT x0, x1, y FROM bad')")


def test_evaluate_with_classes_it_cannot_compare(session: Session) -> None:
    session.register("ints", pa.table({"x": [1.0, 2.0, 3.0, 4.0] * 10, "c": [0, 1] * 20}))
    session.sql(create("c", "task = 'classification'", "SELECT * FROM ints"))
    with pytest.raises(EvaluationError, match="does not match the model's classes"):
        session.sql("SELECT * FROM evaluate('m', 'SELECT x, ''yes'' AS c FROM ints')")
    with pytest.raises(EvaluationError, match=r"never saw in training: \[7\]"):
        session.sql("SELECT * FROM evaluate('m', 'SELECT x, 7 AS c FROM ints')")


# ------------------------------------------------------- LightGBM's output and the CLI


def test_lightgbm_output_goes_to_the_log_not_stderr(
    capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="sqlml")
    table = pa.table({"x": [1.0] * 30, "y": np.arange(30, dtype=np.float64)})
    # A constant feature: with verbosity = 1, LightGBM warns at every round.
    train(table, name="m", options={"target": "y", "verbosity": 1, "num_iterations": 3})
    with pytest.raises(InvalidOption, match="objective"):
        # Refused by LightGBM itself, which writes [Fatal] to file descriptor 2.
        train(table, name="m", options={"target": "y", "objective": "nonsense"})
    out, err = capfd.readouterr()
    assert "LightGBM" not in out + err
    logged = [r.getMessage() for r in caplog.records if r.name == "sqlml.lightgbm"]
    assert any(m.startswith("[LightGBM] [Warning]") for m in logged), logged
    assert any(m.startswith("[LightGBM] [Fatal] Unknown objective") for m in logged), logged
    assert any(r.levelno == logging.WARNING for r in caplog.records if "[Warning]" in r.message)


def test_other_stderr_output_still_reaches_stderr(capfd: pytest.CaptureFixture[str]) -> None:
    from sqlml.udfs.learners import native_stderr_to_log

    with native_stderr_to_log():
        print("plain line", file=sys.stderr, flush=True)
    assert capfd.readouterr().err == "plain line\n"


def test_a_progress_bar_without_a_newline_reaches_stderr_while_training_runs(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """A bar redrawn with \\r shows as it is drawn, not when the training ends; a
    LightGBM line split across writes is still logged, not shown."""
    from sqlml.udfs.learners import native_stderr_to_log

    seen = ""
    with native_stderr_to_log():
        os.write(2, b"\rtrain        [##....] 1/3")
        os.write(2, b"[LightG")
        os.write(2, b"BM] [Info] split line\n")
        deadline = time.monotonic() + 30
        while "1/3" not in seen and time.monotonic() < deadline:
            time.sleep(0.01)
            seen += capfd.readouterr().err
    assert "1/3" in seen  # shown while the block still runs
    seen += capfd.readouterr().err
    assert seen == "\rtrain        [##....] 1/3"


def run_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        "-m",
        "sqlml.cli",
        "sql",
        "--catalog",
        f"sqlite:///{tmp_path / 'c.db'}",
    ]
    return subprocess.run(
        [*command, *args], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )


TWENTY = "(VALUES " + ", ".join(f"({i})" for i in range(20)) + ") AS v(n)"
NAN_TARGET = (
    "CREATE MODEL m OPTIONS (target = 'y') AS "
    f"SELECT CAST(n AS DOUBLE) AS x, CAST('nan' AS DOUBLE) AS y FROM {TWENTY}"
)


def test_cli_prints_one_error_line(tmp_path: Path) -> None:
    done = run_cli(tmp_path, NAN_TARGET)
    assert done.returncode == 1
    # Besides the progress lines of the stages that ran (read...), one line: the error.
    progress = [line for line in done.stderr.splitlines() if line.endswith("...")]
    assert progress == ["read..."]
    assert [line for line in done.stderr.splitlines() if line not in progress] == [
        "error: cannot train model 'm': the target column 'y' has 20 NaN or infinite value(s); "
        "leave those rows out of the query, or make the values NULL (rows whose target is NULL "
        "are left out of training)"
    ]
    assert done.stdout == ""


def test_cli_prints_the_traceback_with_debug(tmp_path: Path) -> None:
    done = run_cli(tmp_path, "--debug", NAN_TARGET)
    assert done.returncode == 1
    assert "Traceback" in done.stderr
    assert done.stderr.splitlines()[-1].startswith("error: cannot train model 'm'")


def test_cli_reports_an_unexpected_error_as_a_bug(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    def broken(*args: object) -> int:
        raise RuntimeError("something broke")

    monkeypatch.setattr(cli, "cmd_models", broken)
    argv = ["models", "--catalog", f"sqlite:///{tmp_path / 'c.db'}"]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "error: something broke",
        "this is a bug in sqlml (builtins.RuntimeError); please report it, and rerun with "
        "--debug for the traceback",
    ]
    assert cli.main([*argv, "--debug"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err
    assert 'raise RuntimeError("something broke")' in err


# ------------------------------------------------------------------------- Flight SQL


def all_subclasses(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *all_subclasses(sub)]
    return found


def test_every_sqlml_error_has_a_status_with_its_message() -> None:
    classes = [c for c in all_subclasses(SqlmlError) if c.__module__ == errors.__name__]
    assert DuplicateColumn in classes
    assert EvaluationError in classes
    for cls in classes:
        status = next(STATUSES[k] for k in cls.__mro__ if k in STATUSES)
        assert status[1], cls  # sent with its class name and message
    sent = flight_error(NonFiniteValues("m", "y", 1, "target", "fix it"))
    assert str(sent) == (
        "NonFiniteValues: cannot train model 'm': the target column 'y' has 1 NaN or "
        "infinite value(s); fix it"
    )
    assert isinstance(
        flight_error(errors.SchemaOutOfDate("u", 1, 2)), flight.FlightUnavailableError
    )
    assert isinstance(flight_error(RuntimeError("x")), flight.FlightInternalError)


@pytest.mark.parametrize("engine", ENGINES)
def test_flight_sql_clients_get_the_error_and_its_status(tmp_path: Path, engine: str) -> None:
    server = start_server(tmp_path, "--auth", "u:p", engine=engine)
    try:
        with (
            adbc.connect(
                server.uri, db_kwargs={"username": "u", "password": "p"}, autocommit=True
            ) as con,
            con.cursor() as cur,
        ):
            with pytest.raises(adbc.ProgrammingError) as info:
                cur.execute(NAN_TARGET)
            message = str(info.value)
            assert info.value.status_code == 5, message  # INVALID_ARGUMENT
            assert message.startswith(
                "INVALID_ARGUMENT: [FlightSQL] NonFiniteValues: cannot train model 'm': the "
                "target column 'y' has 20 NaN or infinite value(s)"
            ), message
            with pytest.raises(adbc.ProgrammingError) as info:
                cur.execute(
                    "CREATE MODEL m OPTIONS (target = 'y', learning_rate = 'abc') AS "
                    f"SELECT CAST(n AS DOUBLE) AS x, CAST(n AS DOUBLE) AS y FROM {TWENTY}"
                )
            assert info.value.status_code == 5
            assert "InvalidOption: option 'learning_rate'" in str(info.value)
    finally:
        log = stop_server(server)
    assert "internal error" not in log
    assert "[LightGBM]" not in log


# ------------------------------------------------------------------ the engines agree

#: What a date feature and a timestamp feature accept, on every engine.
TEMPORAL_INPUTS = [
    ("d", "DATE '2024-01-05'", True),
    ("d", "TIMESTAMP '2024-01-05 10:00:00'", False),  # the time of day would be dropped
    ("d", "'2024-01-05'", False),
    ("ts", "TIMESTAMP '2024-01-05 10:00:00'", True),
    ("ts", "DATE '2024-01-05'", True),  # that day's midnight
    ("ts", "'2024-01-05 10:00:00'", False),
]


@pytest.mark.parametrize(("feature", "value", "accepted"), TEMPORAL_INPUTS)
def test_both_engines_accept_the_same_temporal_inputs(
    tmp_path: Path, feature: str, value: str, accepted: bool
) -> None:
    catalog = f"sqlite:///{tmp_path / 'c.db'}"
    with sqlml.connect("duckdb", catalog) as trainer:
        trainer.sql(
            "CREATE MODEL days OPTIONS (target = 'y') AS SELECT DATE '2024-01-01' + "
            "CAST(i AS INTEGER) AS d, TIMESTAMP '2024-01-01' + to_hours(CAST(i AS INTEGER)) "
            "AS ts, i::DOUBLE AS y FROM range(100) r(i)"
        )
    other = "ts" if feature == "d" else "d"
    fixed = {"d": "DATE '2024-01-02'", "ts": "TIMESTAMP '2024-01-02 00:00:00'"}[other]
    sql = (
        f"SELECT predict('days', {feature}, {other}) AS p "
        f"FROM (SELECT {value} AS {feature}, {fixed} AS {other})"
    )
    answers = []
    for engine in ENGINES:
        with sqlml.connect(engine, catalog) as session:
            if accepted:
                answers.append(session.sql(sql).column("p").to_pylist())
            else:
                with pytest.raises(errors.FeatureTypeMismatch, match=f"feature '{feature}'"):
                    session.sql(sql)
    if accepted:
        assert answers[0] == pytest.approx(answers[1])
