"""A PostgreSQL database holding a generated ``customers`` table, and the same rows as Arrow."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import psycopg
import pyarrow as pa
import pytest

import sqlml
from sqlml.config import ENGINES
from sqlml.engines import get_engine
from sqlml.engines.base import ServesQualifiedStreams
from sqlml.session import Session

ROWS = 3000


def _streams_supported(name: str) -> bool:
    try:
        engine = get_engine(name)
    except NotImplementedError:
        return False
    with engine:
        return isinstance(engine, ServesQualifiedStreams)


def engine_params() -> list[object]:
    """Every engine; one without ``register_stream`` yet is a known gap (strict xfail)."""
    params: list[object] = []
    for name in ENGINES:
        supported = _streams_supported(name)
        marks = (
            []
            if supported
            else [
                pytest.mark.xfail(
                    reason=f"{name}: no register_stream", strict=True, raises=sqlml.SourceError
                )
            ]
        )
        params.append(pytest.param(name, marks=marks, id=name))
    return params


def customers(rows: int = ROWS, seed: int = 7) -> pa.Table:
    """Numbers, text, booleans, dates and NULLs, typed as ADBC reads them from PostgreSQL."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, rows)
    spend = np.round(rng.gamma(3.0, 30.0, rows), 2)
    plan = rng.choice(["basic", "pro", "team"], rows)
    autopay = rng.random(rows) < 0.5
    score = 0.05 * (50 - age) + 0.02 * spend + np.where(plan == "basic", 1.0, -0.5)
    score += rng.normal(0, 1.0, rows) - 1.0 * autopay
    churned = score > np.median(score)
    signup = np.datetime64("2020-01-01") + rng.integers(0, 1500, rows).astype("timedelta64[D]")
    missing = rng.random(rows) < 0.1
    return pa.table(
        {
            "id": pa.array(np.arange(1, rows + 1), pa.int32()),
            "age": pa.array(age, pa.int32()),
            "spend": pa.array(spend, pa.float64(), mask=missing),
            "plan": pa.array(plan, pa.string(), mask=rng.random(rows) < 0.05),
            "autopay": pa.array(autopay, pa.bool_(), mask=rng.random(rows) < 0.05),
            "signup": pa.array(signup, pa.date32()),
            "churned": pa.array(churned, pa.bool_()),
        }
    )


def create_customers(uri: str, data: pa.Table, name: str = "customers") -> None:
    """Create a table with psycopg (not ADBC) and COPY the rows into it, in order."""
    with psycopg.connect(uri) as conn:
        conn.execute(
            f"CREATE TABLE {name} (id integer PRIMARY KEY, age integer, spend double precision,"
            " plan text, autopay boolean, signup date, churned boolean NOT NULL)"
        )
        with conn.cursor().copy(
            f"COPY {name} (id, age, spend, plan, autopay, signup, churned) FROM STDIN"
        ) as copy:
            for row in data.to_pylist():
                copy.write_row(list(row.values()))


@pytest.fixture(scope="session")
def customers_data() -> pa.Table:
    return customers()


@pytest.fixture
def pg_uri(postgres_uri: str, customers_data: pa.Table) -> str:
    """A fresh database with a ``customers`` table of :func:`customers` rows."""
    create_customers(postgres_uri, customers_data)
    return postgres_uri


@pytest.fixture(params=engine_params())
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def session(engine: str, pg_uri: str) -> Iterator[Session]:
    """A session on ``engine`` (in-memory SQLite catalog) with ``pg_uri`` attached as pg."""
    with sqlml.connect(engine=engine, catalog="sqlite:///:memory:") as opened:
        opened.attach_postgres(pg_uri)
        yield opened


@pytest.fixture
def duckdb_session(pg_uri: str) -> Iterator[Session]:
    """The same on DuckDB only."""
    with sqlml.connect(engine="duckdb", catalog="sqlite:///:memory:") as opened:
        opened.attach_postgres(pg_uri)
        yield opened
