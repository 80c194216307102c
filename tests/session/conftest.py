"""Sessions on every engine over both catalogs, and small generated data sets.

``session`` runs a test on each cell of the matrix; ``engine`` and ``catalog_uri`` are for
tests that compare engines over one catalog (they open a session per engine themselves).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

import sqlml
from sqlml.catalog import open_catalog
from sqlml.config import ENGINES
from sqlml.session import Session
from tests.conftest import Cell


@pytest.fixture(params=["sqlite", "postgres"])
def catalog_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty catalog on each store."""
    if request.param == "sqlite":
        uri = f"sqlite:///{tmp_path / 'catalog.db'}"
    else:
        uri = request.getfixturevalue("postgres_uri")
    with open_catalog(uri, migrate=True):
        pass
    return uri


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    """Each engine's name: one suite runs on all of them."""
    return str(request.param)


@pytest.fixture
def session(cell: Cell) -> Iterator[Session]:
    """A session on each cell of the engine x catalog matrix (``tests/conftest.py``)."""
    with sqlml.connect(engine=cell.engine, catalog=cell.catalog_uri) as opened:
        yield opened


def customers(rows: int = 2000, seed: int = 1) -> pa.Table:
    """Numeric, string, boolean and date features with NULLs; a string target."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, rows)
    spend = rng.gamma(3.0, 30.0, rows)
    plan = rng.choice(["basic", "pro", "team"], rows)
    autopay = rng.random(rows) < 0.5
    score = 0.05 * (50 - age) + 0.02 * spend + np.where(plan == "basic", 1.0, -0.5)
    score += rng.normal(0, 1.0, rows) - 1.0 * autopay
    churned = np.where(score > np.median(score), "yes", "no")
    signup = np.datetime64("2020-01-01") + rng.integers(0, 1500, rows).astype("timedelta64[D]")
    return pa.table(
        {
            "customer_id": pa.array(np.arange(rows), pa.int64()),
            "age": pa.array(age, pa.int64()),
            "spend": pa.array(spend, pa.float64(), mask=rng.random(rows) < 0.05),
            "plan": pa.array(plan, pa.string(), mask=rng.random(rows) < 0.03),
            "autopay": pa.array(autopay),
            "signup": pa.array(signup, pa.date32()),
            "churned": pa.array(churned),
        }
    )


def numeric(rows: int = 3000, seed: int = 2) -> pa.Table:
    """Three float features and a float target (regression) plus a boolean label."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 3))
    y = x[:, 0] * 2.0 - x[:, 1] + 0.5 * x[:, 2] ** 2 + rng.normal(0, 0.1, rows)
    return pa.table(
        {
            "id": pa.array(np.arange(rows), pa.int64()),
            "x1": x[:, 0],
            "x2": x[:, 1],
            "x3": x[:, 2],
            "y": y,
            "label": pa.array(y > 0),
        }
    )
