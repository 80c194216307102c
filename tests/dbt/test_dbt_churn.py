"""The dbt example project (examples/dbt_churn) builds with the sqlml.dbt plugin.

Real dbt in a subprocess (dbt warns in-process, and pytest turns warnings into errors),
real DuckDB, real catalogs. dbt-duckdb is the warehouse, so the plugin scores in DuckDB on
every cell of the engine x catalog matrix; the cell's engine is the one that trained the
models dbt scores (DuckDB through the ``sqlml`` command, as the README says; DataFusion
in-process, over the seed's CSV file), and its catalog holds them. One build per cell;
the tests read its DuckDB file with sqlml.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

import sqlml
from tests.conftest import Cell
from tests.dbt.runner import run_dbt, succeeded
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
    return run_dbt(project, args, {"SQLML_CATALOG": catalog})


def column_types(session: sqlml.Session, table: str) -> dict[str, str]:
    """DuckDB's type of each column of a table in the warehouse."""
    columns = session.sql(
        "SELECT column_name, data_type FROM information_schema.columns "
        f"WHERE table_name = '{table}' ORDER BY ordinal_position"
    ).to_pylist()
    return {column["column_name"]: column["data_type"] for column in columns}


def check_predictions(project: Path, catalog: str) -> None:
    """The dbt models hold what sqlml predicts for the same rows, in typed columns."""
    with sqlml.connect(catalog=catalog, database=str(project / WAREHOUSE)) as session:
        built = session.sql(BUILT)
        expected = session.sql(EXPECTED)
        scores = column_types(session, "churn_scores")
        probabilities = column_types(session, "churn_probabilities")
        cast = session.sql("SELECT will_churn_cast FROM churn_scores ORDER BY customer_id")
    assert built.num_rows == 200
    assert built.column("will_churn").to_pylist() == expected.column("will_churn").to_pylist()
    for name in ("will_churn_baseline", "will_churn_latest"):
        assert built.column(name).to_pylist() == expected.column(name).to_pylist()
    for name in ("expected_spend", "p_churn"):
        assert built.column(name).to_pylist() == pytest.approx(
            expected.column(name).to_pylist(), rel=1e-12
        )
    assert set(built.column("will_churn").to_pylist()) == {"yes", "no"}
    assert cast.column(0) == built.column("will_churn")
    # The versions differ: churn@1 is the logistic baseline, @prod the LightGBM version.
    assert built.column("will_churn") != built.column("will_churn_baseline")
    # Typed columns, though the models do not cast (but one): macros/sqlml.sql rewrites them.
    assert scores == {
        "customer_id": "BIGINT",
        "plan": "VARCHAR",
        "will_churn": "VARCHAR",
        "will_churn_baseline": "VARCHAR",
        "will_churn_latest": "VARCHAR",
        "expected_spend": "DOUBLE",
        "will_churn_cast": "VARCHAR",
    }
    assert probabilities == {
        "customer_id": "BIGINT",
        "p_churn": "DOUBLE",
        "probabilities": "MAP(VARCHAR, DOUBLE)",
    }


@pytest.fixture(scope="module")
def build(module_cell: Cell, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The example project seeded, trained on the cell's engine into its catalog, built."""
    root = tmp_path_factory.mktemp(f"dbt_{module_cell}")
    project, catalog = root / "dbt_churn", module_cell.catalog_uri
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("target", "logs", "*.db"))
    assert succeeded(dbt(project, catalog, "seed"))
    train = (project / "train.sql").read_text(encoding="utf-8")
    if module_cell.engine == "duckdb":
        args = ("--catalog", catalog, "--database", WAREHOUSE)
        assert succeeded(run_sqlml("sql", *args, train, cwd=project))
    else:
        with sqlml.connect(engine=module_cell.engine, catalog=catalog) as session:
            session.read_csv("customers", project / "seeds" / "customers.csv")
            session.sql(train)
    assert succeeded(dbt(project, catalog, "build"))
    return project, catalog


def test_build_scores_as_sqlml_predicts(build: tuple[Path, str]) -> None:
    check_predictions(*build)


def test_views_and_incremental_models(build: tuple[Path, str], tmp_path: Path) -> None:
    built, catalog = build
    project = tmp_path / "dbt_churn"
    shutil.copytree(built, project)
    models = project / "models"
    (models / "scores_view.sql").write_text(
        "{{ config(materialized='view') }}\n"
        "select predict('churn', c)::varchar as p from {{ ref('customers') }} c\n"
    )
    # Views that do not call predict (a column named like it, the name in a string or a
    # comment) are fine.
    (models / "plain_view.sql").write_text(
        "{{ config(materialized='view') }}\n"
        "select customer_id, plan as predict_plan, 'predict(''churn'', c)' as note\n"
        "from {{ ref('customers') }} -- not predict_proba('churn', c)\n"
    )
    (models / "unknown_model.sql").write_text(
        "select predict('nope', c) as p from {{ ref('customers') }} c\n"
    )
    # new_customer_scores exists (the build made it): this run adds to it.
    selection = ("--select", "scores_view", "plain_view", "unknown_model", "new_customer_scores")
    result = dbt(project, catalog, "run", *selection)
    assert not succeeded(result)
    output = " ".join(result.stdout.split())
    assert "Model 'scores_view' calls sqlml's predict() but is materialized as a view" in output
    assert "config(materialized='table')" in output
    assert "model 'nope' does not exist; models in the catalog: churn, spend" in output
    assert "PASS=2 WARN=0 ERROR=2" in output
    with sqlml.connect(catalog=catalog, database=str(project / WAREHOUSE)) as session:
        relations = session.sql(
            "SELECT table_name FROM information_schema.tables ORDER BY table_name"
        ).column("table_name")
        notes = session.sql("SELECT DISTINCT note FROM plain_view").column("note")
        types = column_types(session, "new_customer_scores")
        scored = session.sql(
            "SELECT count(*) AS n, count(*) FILTER (i.will_churn = s.will_churn) AS same "
            "FROM new_customer_scores i JOIN churn_scores s USING (customer_id)"
        ).to_pylist()
    assert relations.to_pylist() == [
        "churn_probabilities",
        "churn_scores",
        "customers",
        "new_customer_scores",
        "plain_view",
    ]
    assert notes.to_pylist() == ["predict('churn', c)"]
    assert types == {"customer_id": "BIGINT", "signup_date": "DATE", "will_churn": "VARCHAR"}
    assert scored == [{"n": 200, "same": 200}]
