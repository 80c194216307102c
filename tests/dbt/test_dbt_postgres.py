"""The dbt-postgres example (examples/dbt_postgres) scores inside PostgreSQL.

Real dbt-postgres in a subprocess against the ``postgres_uri`` database, which holds the
warehouse (the seed, the built tables) and the sqlml catalog. The model is trained and
compiled with the sqlml command, as the example's README says; what dbt built must equal
what sqlml's own ``predict`` says for the same rows.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

import sqlml
from sqlml.catalog import open_catalog
from tests.catalog.conftest import make_spec
from tests.dbt.runner import run_dbt, succeeded
from tests.test_cli import run as run_sqlml

pytestmark = pytest.mark.postgres

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "dbt_postgres"

#: What sqlml itself predicts for the seeded rows, reading them from PostgreSQL.
EXPECTED = """
SELECT customer_id, predict('churn', *) AS will_churn,
       predict_proba('churn', *)['yes'] AS p_churn
FROM pg.customers ORDER BY customer_id
"""


def libpq_env(uri: str) -> dict[str, str]:
    """The PG* variables the example's profiles.yml reads, for the database ``uri``."""
    params = conninfo_to_dict(uri)
    names = {"host": "PGHOST", "port": "PGPORT", "user": "PGUSER", "password": "PGPASSWORD"}
    env = {var: str(params[key]) for key, var in names.items() if params.get(key)}
    return env | {"PGDATABASE": str(params["dbname"])}


def dbt(project: Path, uri: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``dbt ARGS`` in ``project`` with its own profiles.yml, on the database ``uri``."""
    return run_dbt(project, args, libpq_env(uri), drop=("SQLML_", "DBT_", "PG"))


def copy_example(tmp_path: Path) -> Path:
    project = tmp_path / "dbt_postgres"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("target", "logs"))
    return project


def test_build_scores_as_sqlml_predicts(postgres_uri: str, tmp_path: Path) -> None:
    project = copy_example(tmp_path)
    assert succeeded(dbt(project, postgres_uri, "seed"))
    # As the README says: migrate, train from pg.customers, compile and save, build.
    catalog = ("--catalog", postgres_uri)
    assert succeeded(run_sqlml("migrate", *catalog, cwd=project))
    train = (project / "train.sql").read_text(encoding="utf-8")
    assert succeeded(run_sqlml(*catalog, "--postgres", postgres_uri, "sql", train, cwd=project))
    for proba in ((), ("--proba",)):
        compiled = run_sqlml("compile", "churn", "--dialect", "postgres", "--save", *proba,
                             *catalog, cwd=project)  # fmt: skip
        assert succeeded(compiled)
        kind = "proba" if proba else "predict"
        assert compiled.stderr.startswith(
            f"saved the {kind} expression of model churn version 1 for dialect postgres "
        )
    result = dbt(project, postgres_uri, "build")
    assert succeeded(result)
    assert "PASS=8 WARN=0 ERROR=0" in " ".join(result.stdout.split())

    with psycopg.connect(postgres_uri) as conn:
        built = conn.execute(
            "SELECT customer_id, will_churn, p_churn FROM churn_scores ORDER BY customer_id"
        ).fetchall()
    with sqlml.connect(catalog=postgres_uri) as session:
        session.attach_postgres(postgres_uri)
        expected = session.sql(EXPECTED).to_pylist()
        stored = session.catalog.get_compiled("churn", 1, "postgres", "predict").expression
    assert len(built) == len(expected) == 200
    assert [(r[0], r[1]) for r in built] == [(e["customer_id"], e["will_churn"]) for e in expected]
    assert {r[1] for r in built} == {"yes", "no"}
    assert [r[2] for r in built] == pytest.approx([e["p_churn"] for e in expected], abs=1e-9)
    # The expression dbt ran is the one in the catalog, inlined in parentheses.
    sql = next((project / "target" / "run").rglob("churn_scores.sql")).read_text()
    assert f"({stored}) as will_churn" in sql


#: Models that each exercise one way of resolving a reference (written into the project).
MODELS = {
    "by_alias": "select {{ sqlml_predict('churn@prod') }} as p",
    "not_compiled": "select {{ sqlml_predict('churn') }} as p",
    "proba_not_compiled": "select {{ sqlml_predict('churn@prod', proba=true) }} as p",
    "unknown_version": "select {{ sqlml_predict('churn@9') }} as p",
    "unknown_alias": "select {{ sqlml_predict('churn@staging') }} as p",
    "unknown_model": "select {{ sqlml_predict('nope') }} as p",
}


def test_unknown_or_uncompiled_models_fail_with_the_command_to_run(
    postgres_uri: str, tmp_path: Path
) -> None:
    project = copy_example(tmp_path)
    for stale in ("models/churn_scores.sql", "models/schema.yml", "tests"):
        shutil.rmtree(project / stale) if stale == "tests" else (project / stale).unlink()
    for name, sql in MODELS.items():
        (project / "models" / f"{name}.sql").write_text(sql + "\n", encoding="utf-8")
    # The macro reads only the catalog's tables: versions need no real artifact.
    with open_catalog(postgres_uri, migrate=True) as catalog:
        catalog.register_version("churn", make_spec(), b"1")
        catalog.register_version("churn", make_spec(), b"2")
        catalog.set_alias("churn", "prod", 1)
        catalog.save_compiled("churn", 1, "postgres", "predict", "'no'")

    result = dbt(project, postgres_uri, "run")
    assert not succeeded(result)
    output = " ".join(result.stdout.split())
    assert "PASS=1 WARN=0 ERROR=5" in output
    assert (
        "sqlml_predict('churn'): model 'churn' version 2 is not compiled for PostgreSQL yet. "
        "Run `sqlml compile churn@2 --dialect postgres --save` (with --catalog pointing at "
        "this database), then run dbt again"
    ) in output
    assert "Run `sqlml compile churn@1 --dialect postgres --proba --save`" in output
    assert "sqlml_predict('churn@9'): model 'churn' has no version 9; its versions: 1, 2" in output
    assert "model 'churn' has no alias 'staging'; its aliases: prod=1" in output
    assert (
        "sqlml_predict('nope'): model 'nope' does not exist; models in the catalog "
        "(schema 'public'): churn"
    ) in output
    with psycopg.connect(postgres_uri) as conn:
        assert conn.execute("SELECT p FROM by_alias").fetchall() == [("no",)]

    elsewhere = dbt(
        project, postgres_uri, "run", "--select", "by_alias",
        "--vars", "{sqlml_catalog_schema: ml}",
    )  # fmt: skip
    assert not succeeded(elsewhere)
    assert "schema 'ml' of this database has no sqlml catalog with compiled models" in " ".join(
        elsewhere.stdout.split()
    )
