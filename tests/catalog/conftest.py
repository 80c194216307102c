"""One catalog suite over both stores: SQLite and the real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sqlml.catalog import Catalog, Feature, VersionSpec, open_catalog


@pytest.fixture(params=["sqlite", "postgres"])
def catalog_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URI of an empty catalog database on each store (PostgreSQL not yet migrated)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'catalog.db'}"
    uri: str = request.getfixturevalue("postgres_uri")
    return uri


@pytest.fixture
def catalog(catalog_uri: str) -> Iterator[Catalog]:
    """A migrated, empty catalog on each store."""
    with open_catalog(catalog_uri, migrate=True) as opened:
        yield opened


def make_spec(**overrides: object) -> VersionSpec:
    """A plausible version spec; tests override what they look at."""
    values: dict[str, object] = {
        "algorithm": "lightgbm",
        "task": "classification",
        "target": "churned",
        "features": (
            Feature("tenure", "int64"),
            Feature("plan", "string", ("basic", "pro")),
            Feature("signup", "date32[day]"),
        ),
        "artifact_format": "lightgbm",
        "classes": ("no", "yes"),
        "hyperparameters": {"num_leaves": 31, "learning_rate": 0.1},
        "metrics": {"accuracy": 0.9, "roc_auc": 0.95},
        "training_sql": "SELECT * FROM customers",
        "row_count": 1000,
        "data_fingerprint": "ab" * 32,
        "library_versions": {"lightgbm": "4.7.0"},
    }
    values.update(overrides)
    return VersionSpec(**values)  # type: ignore[arg-type]
