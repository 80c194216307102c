"""Generated training and predict inputs: each gives a result or an SqlmlError, never
anything else, on every engine.

Tables mix integer, float, boolean, text, date, timestamp and decimal columns with NULLs,
NaN, infinities and huge values, names with quotes, spaces and non-ASCII letters, and
zero, one or a few rows; options are valid or not. Hypothesis runs a fixed, derandomised
set of examples, so a run is repeatable.
"""

from __future__ import annotations

import datetime as dt
import decimal
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sqlml
from sqlml.errors import SqlmlError
from sqlml.session import Session
from tests.conftest import ENGINES

SETTINGS = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

_names = itertools.count()

NAMES = st.sampled_from(
    ["x", "price", "it's", 'say "hi"', "two words", "café", "年齢", "Δ", "select", "a.b"]
)

FLOATS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.floats(-1e3, 1e3),
    st.sampled_from([0.0, -0.0, 1e308, -1e308, 5e-324]),
)
INTS = st.one_of(st.integers(-(2**63), 2**63 - 1), st.integers(-5, 5))
DAYS = st.dates(dt.date(1700, 1, 1), dt.date(2200, 12, 31))
TIMES = st.datetimes(dt.datetime(1700, 1, 1), dt.datetime(2200, 12, 31))

#: Arrow type -> a strategy of its values (None is added for NULLs).
KINDS: dict[str, tuple[pa.DataType, st.SearchStrategy[Any]]] = {
    "int64": (pa.int64(), INTS),
    "int8": (pa.int8(), st.integers(-128, 127)),
    "uint64": (pa.uint64(), st.integers(0, 2**64 - 1)),
    "float64": (pa.float64(), FLOATS),
    "float32": (pa.float32(), st.floats(width=32)),
    "bool": (pa.bool_(), st.booleans()),
    "text": (pa.string(), st.text(max_size=4)),
    "date": (pa.date32(), DAYS),
    "timestamp": (pa.timestamp("us"), TIMES),
    "timestamp_tz": (
        pa.timestamp("ns", tz="Europe/Paris"),
        TIMES.map(lambda t: t.replace(tzinfo=dt.UTC)),
    ),
    "decimal": (
        pa.decimal128(12, 2),
        st.decimals(-(10**9), 10**9, places=2, allow_nan=False, allow_infinity=False),
    ),
    "null": (pa.null(), st.none()),
}


@st.composite
def columns(draw: st.DrawFn, rows: int, kinds: list[str]) -> dict[str, pa.Array]:
    """A column per kind, named from NAMES (duplicates and case variants allowed)."""
    out: dict[str, pa.Array] = {}
    for kind in kinds:
        type_, values = KINDS[kind]
        name = draw(NAMES)
        if name in out:
            # Mostly a new name; sometimes one differing only in case or by a space.
            name = draw(st.sampled_from([f"{name}_2"] * 4 + [name.upper(), f"{name} "]))
        cells = draw(st.lists(st.one_of(st.none(), values), min_size=rows, max_size=rows))
        if kind == "decimal":
            cells = [None if c is None else decimal.Decimal(c) for c in cells]
        out[name] = pa.array(cells, type_)
    return out


@st.composite
def tables(draw: st.DrawFn) -> pa.Table:
    rows = draw(st.sampled_from([0, 1, 2, 3, 8, 30, 30, 30]))
    kinds = draw(st.lists(st.sampled_from(sorted(KINDS)), min_size=2, max_size=5))
    data = draw(columns(rows, kinds))
    return pa.table(data)


def literal(value: object) -> str:
    """``value`` as a SQL literal of an option."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value) if value == value and abs(value) != float("inf") else f"'{value}'"
    if isinstance(value, list):
        return "(" + ", ".join(literal(v) for v in value) + ")"
    return "'" + str(value).replace("'", "''") + "'"


#: The algorithms that suit each task (mostly drawn from), and the hyperparameters tried.
SUITED = {"classification": ["lightgbm", "logistic", "random_forest"]}
SUITED["regression"] = ["lightgbm", "linear", "random_forest"]
TRIED = {
    "lightgbm": ["num_leaves", "learning_rate", "min_data_in_leaf", "max_bin", "lambda_l2"],
    "linear": ["fit_intercept", "positive"],
    "logistic": ["C", "fit_intercept", "max_iter"],
    "random_forest": ["max_depth", "min_samples_leaf", "max_features"],
}
VALUES = st.one_of(
    st.integers(-3, 40),
    st.floats(-1, 2, allow_nan=False),
    st.booleans(),
    st.none(),
    st.sampled_from(["abc", "1", "0.5", "true", "sqrt", ""]),
)


@st.composite
def create_statements(draw: st.DrawFn, table: pa.Table) -> str:
    """A CREATE MODEL over ``{table}``: mostly sensible options, sometimes not."""
    names = table.column_names
    target = draw(st.sampled_from(names) if draw(st.integers(0, 4)) else NAMES)
    options: dict[str, object] = {"target": target}
    task = draw(st.sampled_from(["classification", "regression"]))
    if (
        target not in names
        or draw(st.integers(0, 3))
        or pa.types.is_integer(table.schema.field(target).type)
    ):
        options["task"] = draw(st.sampled_from([task, task, task, "ranking"]))
    algorithms = SUITED[task] if draw(st.integers(0, 4)) else sorted(TRIED)
    algorithm = draw(st.sampled_from(algorithms))
    options["algorithm"] = algorithm
    if not draw(st.integers(0, 3)):
        options["exclude"] = draw(st.lists(st.sampled_from(names), max_size=2))
    if not draw(st.integers(0, 3)):
        options["test_size"] = draw(st.sampled_from([0.2, 0.5, 0.0, 1.0, "x"]))
    if not draw(st.integers(0, 2)):
        tried = TRIED[algorithm] if draw(st.integers(0, 4)) else ["nonsense", "objective"]
        options.update(draw(st.dictionaries(st.sampled_from(tried), VALUES, max_size=2)))
    # Quick fits: the inputs, not the learning, are under test.
    if algorithm == "lightgbm":
        options["num_iterations"] = 5
    elif algorithm == "random_forest":
        options["n_estimators"] = 3
    rendered = ", ".join(f"{key} = {literal(value)}" for key, value in options.items())
    return f"CREATE OR REPLACE MODEL fz OPTIONS ({rendered}) AS SELECT * FROM {{table}}"


@pytest.fixture(scope="module", params=ENGINES)
def session(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Session]:
    directory = tmp_path_factory.mktemp(f"fuzz-{request.param}")
    uri = f"sqlite:///{Path(directory) / 'catalog.db'}"
    with sqlml.connect(engine=request.param, catalog=uri) as opened:
        yield opened


def result_or_sqlml_error(session: Session, sql: str) -> pa.Table | SqlmlError:
    """Run ``sql``; return its result or the SqlmlError it raised (anything else fails)."""
    try:
        return session.sql(sql)
    except SqlmlError as exc:
        if not str(exc):
            pytest.fail(f"{type(exc).__name__} has no message")
        return exc


def registered(session: Session, table: pa.Table) -> str | None:
    """The name ``table`` is registered under, or None if the engine refused it with an
    SqlmlError (anything else fails)."""
    name = f"fz_{next(_names)}"
    try:
        session.register(name, table)
    except SqlmlError:
        return None
    return name


@SETTINGS
@given(data=st.data())
def test_training_gives_a_model_or_an_sqlml_error(session: Session, data: st.DataObject) -> None:
    table = data.draw(tables(), label="table")
    name = registered(session, table)
    if name is None:
        return
    sql = data.draw(create_statements(table), label="statement").format(table=name)
    result_or_sqlml_error(session, sql)


@st.composite
def predict_inputs(draw: st.DrawFn, trained: pa.Table) -> pa.Table:
    """The training table with columns dropped, retyped, renamed or left as they are."""
    rows = draw(st.sampled_from([0, 1, 5]))
    out: dict[str, pa.Array] = {}
    for column in trained.column_names:
        what = draw(st.sampled_from(["same"] * 8 + ["drop", "retype", "rename"]))
        if what == "drop":
            continue
        if what == "same":
            taken = trained.column(column).combine_chunks()
            out[column] = taken.slice(0, rows) if len(taken) >= rows else pa.nulls(rows, taken.type)
            continue
        kind = draw(st.sampled_from(sorted(KINDS)))
        fresh = draw(columns(rows, [kind]))
        value = next(iter(fresh.values()))
        out[column if what == "retype" else f"{column}_other"] = value
    if not out:
        out["unrelated"] = pa.array([1] * rows, pa.int64())
    return pa.table(out)


TRAINING = pa.table(
    {
        "age": pa.array([20, 35, None, 50, 41, 29, 60, 33] * 4, pa.int64()),
        "spend": pa.array([1.5, float("nan"), 3.0, None, 2.0, 7.5, float("inf"), 0.0] * 4),
        "plan": pa.array(["a", "b", None, "a", "c", "b", "a", "it's"] * 4),
        "joined": pa.array([dt.date(2020, 1, d) for d in range(1, 9)] * 4, pa.date32()),
        "seen": pa.array([dt.datetime(2021, 5, h) for h in range(1, 9)] * 4, pa.timestamp("us")),
        "vip": pa.array([True, False, None, True, False, True, False, False] * 4),
        "churned": pa.array(["yes", "no", "no", "yes", "no", "yes", "no", "yes"] * 4),
        "value": pa.array([1.0, 2.0, 3.5, 4.0, 5.5, 6.0, 7.0, 8.0] * 4),
    }
)


@pytest.fixture(scope="module")
def models(session: Session) -> Session:
    """Models of each kind trained on TRAINING: ``churn`` (LightGBM classifier), ``worth``
    (linear regression, without the column holding infinities)."""
    session.register("training", TRAINING)
    session.sql(
        "CREATE OR REPLACE MODEL churn OPTIONS (target = 'churned', exclude = 'value', "
        "num_iterations = 5) AS SELECT * FROM training"
    )
    session.sql(
        "CREATE OR REPLACE MODEL worth OPTIONS (target = 'value', algorithm = 'linear', "
        "exclude = ('churned', 'spend')) AS SELECT * FROM training"
    )
    return session


@SETTINGS
@given(data=st.data())
def test_predict_and_evaluate_give_a_result_or_an_sqlml_error(
    models: Session, data: st.DataObject
) -> None:
    table = data.draw(predict_inputs(TRAINING), label="input")
    name = registered(models, table)
    if name is None:
        return
    model = data.draw(st.sampled_from(["churn", "worth"]), label="model")
    call = data.draw(st.sampled_from(["predict", "predict_proba"]), label="call")
    for sql in (
        f"SELECT {call}('{model}', *) AS p FROM {name}",
        f"SELECT * FROM evaluate('{model}', 'SELECT * FROM {name}')",
    ):
        result = result_or_sqlml_error(models, sql)
        if isinstance(result, pa.Table) and sql.startswith("SELECT predict"):
            assert result.num_rows == table.num_rows
