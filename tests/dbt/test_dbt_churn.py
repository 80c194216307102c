"""The dbt example project (examples/dbt_churn) builds with the sqlml.dbt plugin.

Real dbt in a subprocess (dbt warns in-process, and pytest turns warnings into errors),
real DuckDB, real catalogs: SQLite, and PostgreSQL through the ``postgres_uri`` fixture.
One build per catalog; the tests read its DuckDB file with sqlml.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

import sqlml
from sqlml.catalog import open_catalog
from tests.test_cli import run as run_sqlml

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "dbt_churn"
WAREHOUSE = "target/dbt_churn.duckdb"

#: What sqlml itself predicts for the seed's rows: the expected content of the dbt models.
EXPECTED = """
SELECT customer_id,
       predict('churn@prod', *) AS will_churn,
       predict('churn@1', *) AS will_churn_baseline,
       predict('churn', *) AS will_churn_latest,
       predict('spend', *) AS expected_spend,
       predict_proba('churn@prod', *)['yes'] AS p_churn
FROM customers ORDER BY customer_id
"""
BUILT = """
SELECT s.customer_id, will_churn, will_churn_baseline, will_churn_latest, expected_spend,
       p_churn
FROM churn_scores s JOIN churn_probabilities USING (customer_id) ORDER BY customer_id
"""


def dbt(project: Path, catalog: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``dbt ARGS`` in ``project`` with its own profiles.yml and the given catalog."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SQLML_", "DBT_"))}
    env |= {
        "SQLML_CATALOG": catalog,
        "DBT_PROFILES_DIR": str(project),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_VERSION_CHECK": "false",
        "DBT_USE_COLORS": "false",
    }
    return subprocess.run(
        [sys.executable, "-m", "dbt.cli.main", *args, "--project-dir", str(project)],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def succeeded(result: subprocess.CompletedProcess[str]) -> bool:
    """Whether a process succeeded; the output is printed so a failure shows it."""
    print(result.stdout, result.stderr, sep="\n")
    return result.returncode == 0


def check_predictions(project: Path, catalog: str) -> None:
    """The dbt models hold what sqlml predicts for the same rows, in typed columns."""
    with sqlml.connect(catalog=catalog, database=str(project / WAREHOUSE)) as session:
        built = session.sql(BUILT)
        expected = session.sql(EXPECTED)
        scores = session.sql("SELECT * FROM churn_scores LIMIT 0").schema
        probabilities = session.sql("SELECT * FROM churn_probabilities LIMIT 0").schema
    assert built.num_rows == 200
    assert built.column("will_churn").to_pylist() == expected.column("will_churn").to_pylist()
    for name in ("will_churn_baseline", "will_churn_latest"):
        assert built.column(name).to_pylist() == expected.column(name).to_pylist()
    for name in ("expected_spend", "p_churn"):
        assert built.column(name).to_pylist() == pytest.approx(
            expected.column(name).to_pylist(), rel=1e-12
        )
    assert set(built.column("will_churn").to_pylist()) == {"yes", "no"}
    # The versions differ: churn@1 is the logistic baseline, @prod the LightGBM version.
    assert built.column("will_churn") != built.column("will_churn_baseline")
    assert scores.field("will_churn").type == pa.string()
    assert scores.field("will_churn_baseline").type == pa.string()
    assert scores.field("expected_spend").type == pa.float64()
    assert probabilities.field("p_churn").type == pa.float64()
    assert probabilities.field("probabilities").type == pa.map_(pa.string(), pa.float64())


@pytest.fixture(scope="module")
def sqlite_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The example project built once against a SQLite catalog."""
    root = tmp_path_factory.mktemp("dbt_sqlite")
    project, catalog = root / "dbt_churn", f"sqlite:///{root / 'catalog.db'}"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("target", "logs", "*.db"))
    assert succeeded(dbt(project, catalog, "seed"))
    # Trained as the README says, with the sqlml command (the PostgreSQL test trains
    # in-process, which is quicker).
    args = ("--catalog", catalog, "--database", WAREHOUSE)
    train = (project / "train.sql").read_text(encoding="utf-8")
    assert succeeded(run_sqlml("sql", *args, train, cwd=project))
    assert succeeded(dbt(project, catalog, "build"))
    return project, catalog


def test_build_with_sqlite_catalog(sqlite_build: tuple[Path, str]) -> None:
    check_predictions(*sqlite_build)


@pytest.mark.postgres
def test_build_with_postgres_catalog(
    sqlite_build: tuple[Path, str], postgres_uri: str, tmp_path: Path
) -> None:
    # The SQLite build's project, already seeded, trained into and scored from PostgreSQL.
    project = tmp_path / "dbt_churn"
    shutil.copytree(sqlite_build[0], project)
    open_catalog(postgres_uri, migrate=True).close()
    train = (project / "train.sql").read_text(encoding="utf-8")
    with sqlml.connect(catalog=postgres_uri, database=str(project / WAREHOUSE)) as session:
        session.sql(train)
    assert succeeded(dbt(project, postgres_uri, "build"))
    check_predictions(project, postgres_uri)


def test_view_calling_predict_is_refused(sqlite_build: tuple[Path, str], tmp_path: Path) -> None:
    built, catalog = sqlite_build
    project = tmp_path / "dbt_churn"
    shutil.copytree(built, project)
    models = project / "models"
    (models / "scores_view.sql").write_text(
        "{{ config(materialized='view') }}\n"
        "select predict('churn', c)::varchar as p from {{ ref('customers') }} c\n"
    )
    # A view that does not call predict (a column merely named like it) is still fine.
    (models / "plain_view.sql").write_text(
        "{{ config(materialized='view') }}\n"
        "select customer_id, plan as predict_plan from {{ ref('customers') }}\n"
    )
    (models / "unknown_model.sql").write_text(
        "select predict('nope', c)::varchar as p from {{ ref('customers') }} c\n"
    )
    selection = ("--select", "scores_view", "plain_view", "unknown_model")
    result = dbt(project, catalog, "run", *selection)
    assert not succeeded(result)
    output = " ".join(result.stdout.split())
    assert "Model 'scores_view' calls sqlml's predict() but is materialized as a view" in output
    assert "config(materialized='table')" in output
    assert "model 'nope' does not exist; models in the catalog: churn, spend" in output
    assert "PASS=1 WARN=0 ERROR=2" in output
    with sqlml.connect(catalog=catalog, database=str(project / WAREHOUSE)) as session:
        relations = session.sql(
            "SELECT table_name FROM information_schema.tables ORDER BY table_name"
        ).column("table_name")
    assert relations.to_pylist() == [
        "churn_probabilities",
        "churn_scores",
        "customers",
        "plain_view",
    ]
