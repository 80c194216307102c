"""The README runs as written: every block in order, in a fresh directory, as a newcomer
would run it, each checked against what it prints; and the SQL surface on every engine x
catalog."""

from __future__ import annotations

import datetime
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

import sqlml
from sqlml.catalog import open_catalog
from sqlml.config import load_settings
from sqlml.demo import churn_data
from sqlml.sql import split_statements

from .conftest import Cell

README = Path(__file__).resolve().parent.parent / "README.md"


def sql_blocks(section: str) -> list[str]:
    """The ```sql fenced blocks of the README from ``section`` on."""
    text = README.read_text(encoding="utf-8").split(section, 1)[1]
    blocks, current, inside = [], [], False
    for line in text.splitlines():
        if line.strip() == "```sql":
            inside, current = True, []
        elif line.strip() == "```" and inside:
            inside = False
            blocks.append("\n".join(current))
        elif inside:
            current.append(line)
    return blocks


def test_sql_surface_examples_run_and_give_what_the_text_says(cell: Cell) -> None:
    """Every statement of the README's SQL blocks, in order, on every engine x catalog;
    each result is checked against the data or against another query."""
    statements = [s for block in sql_blocks("## The SQL surface") for s in split_statements(block)]
    assert len(statements) >= 17
    data = churn_data(5_000)
    rows = data.to_pylist()
    with sqlml.connect(engine=cell.engine, catalog=cell.catalog_uri) as session:
        session.register("customers", data)
        results = [(statement, session.sql(statement)) for statement in statements]

        def result(start: str) -> list[dict[str, Any]]:
            found = [r for statement, r in results if " ".join(statement.split()).startswith(start)]
            assert len(found) == 1, start
            return found[0].to_pylist()

        trained = [
            {k: row[k] for k in ("model", "version", "algorithm", "task", "rows")}
            for start in (
                "CREATE MODEL churn ",
                "CREATE OR REPLACE",
                "CREATE MODEL churn_b",
                "CREATE MODEL spend",
            )
            for row in result(start)
        ]
        recent = sum(row["signup_date"] >= datetime.date(2019, 1, 1) for row in rows)
        with_spend = sum(row["monthly_spend"] is not None for row in rows)
        assert trained == [
            {"model": "churn", "version": 1, "algorithm": "lightgbm",
             "task": "classification", "rows": 5_000},
            {"model": "churn", "version": 2, "algorithm": "lightgbm",
             "task": "classification", "rows": recent},
            {"model": "churn_baseline", "version": 1, "algorithm": "logistic",
             "task": "classification", "rows": 5_000},
            {"model": "spend", "version": 1, "algorithm": "random_forest",
             "task": "regression", "rows": with_spend},
        ]  # fmt: skip

        first = result("SELECT customer_id, predict('churn', *) AS will_churn")
        assert len(first) == 5
        assert all(isinstance(r["will_churn"], bool) for r in first)

        ranked = result("SELECT customer_id, predict_proba('churn', *)['true']")
        assert len(ranked) == 10
        p_churn = [r["p_churn"] for r in ranked]
        assert p_churn == sorted(p_churn, reverse=True)
        # WHERE predict('churn', *) keeps the rows the model calls churners: p > 0.5.
        assert all(0.5 <= p <= 1.0 for p in p_churn)
        assert all(isinstance(r["first_version"], bool) for r in ranked)

        spends = [r["expected_spend"] for r in result("SELECT predict('spend',")]
        low = min(r["monthly_spend"] for r in rows if r["monthly_spend"] is not None)
        high = max(r["monthly_spend"] for r in rows if r["monthly_spend"] is not None)
        # A forest's prediction averages training targets: it lies within their range.
        assert len(spends) == 3
        assert all(low <= v <= high for v in spends)

        groups = result("WITH scored AS")
        assert [g["churn"] for g in groups] == [False, True]
        assert sum(g["customers"] for g in groups) == 5_000

        shown = result("SHOW MODELS")
        assert [(m["model"], m["versions"], m["latest"]) for m in shown] == [
            ("churn", 2, 2),
            ("churn_baseline", 1, 1),
            ("spend", 1, 1),
        ]
        described = {r["property"]: r["value"] for r in result("DESCRIBE MODEL churn")}
        assert described["task"] == "classification"
        assert described["target"] == "churned"
        assert result("DEPLOY MODEL churn VERSION 1") == [
            {"model": "churn", "alias": "production", "version": 1}
        ]
        assert len(result("SELECT predict('churn@production', *)")) == 3

        (evaluated,) = result("SELECT * FROM evaluate('churn',")
        assert evaluated["model"] == "churn@2"
        assert evaluated["rows"] == sum(row["tenure_months"] > 24 for row in rows)
        assert 0.5 < evaluated["accuracy"] <= 1.0
        assert 0.5 < evaluated["roc_auc"] <= 1.0

        importance = result("SELECT * FROM feature_importance('churn')")
        features = set(data.column_names) - {"customer_id", "churned"}
        assert {r["feature"] for r in importance} == features
        assert abs(sum(r["gain_share"] for r in importance) - 1.0) < 1e-9

        assert result("DEPLOY MODEL churn VERSION 2") == [
            {"model": "churn", "alias": "production", "version": 2}
        ]
        assert result("DEPLOY MODEL churn ROLLBACK") == [
            {"model": "churn", "alias": "production", "version": 1}
        ]
        assert result("DROP MODEL churn VERSION 2") == [{"model": "churn", "dropped": "version 2"}]
        assert result("DROP MODEL IF EXISTS spend") == [
            {"model": "spend", "dropped": "all versions"}
        ]
        remaining = {m.name for m in session.catalog.list_models()}
        versions = [v.version for v in session.catalog.list_versions("churn")]
        # Version 1 stays deployed, and the latest version predicts as 'churn' does.
        same = session.sql(
            "SELECT count(*) AS n FROM customers "
            "WHERE predict('churn', *) = predict('churn@production', *)"
        )
    assert remaining == {"churn", "churn_baseline"}
    assert versions == [1]
    assert same.to_pylist() == [{"n": 5_000}]


# --------------------------------------------------------------------------- walkthrough


@dataclass(frozen=True)
class Block:
    """One fenced block of the README."""

    language: str
    text: str
    line: int

    @property
    def first(self) -> str:
        return self.text.splitlines()[0]


def blocks() -> list[Block]:
    text = README.read_text(encoding="utf-8")
    found = []
    for match in re.finditer(r"^```(\w*)\n(.*?)^```$", text, flags=re.S | re.M):
        line = text.count("\n", 0, match.start()) + 1
        found.append(Block(match.group(1), match.group(2), line))
    return found


#: Blocks that only show text (a diagram, a JDBC or SQLAlchemy URL): nothing to run.
SHOWN = ("text",)

#: Blocks the walkthrough does not run, by their first line, and why; the rest all run.
NOT_RUN = {
    "make demo   # creates .venv, installs sqlml, runs the quickstart on the embedded defaults":
        "the project's own entry points; tests/test_cli.py runs `sqlml demo`",
    'export SQLML_SIGNING_KEY="$(cat /run/secrets/sqlml-signing-key)"':
        "reads a secret file of the host; tests/test_hostile_artifacts.py signs artifacts",
    "sqlml serve --catalog postgresql://ml@db.internal/ml --host 0.0.0.0 --port 31337 \\":
        "a server that runs until stopped; tests/server start `sqlml serve`",
    "sqlml hash-password < alice.txt     # for each user: put the hash in users.toml":
        "a production checklist of files under /etc; tests/server cover each flag",
    "import adbc_driver_flightsql.dbapi as flightsql":
        "needs a running server; tests/server/test_flight_sql.py connects so",
    "{{ config(materialized='table') }}":
        "a dbt model: examples/dbt_churn, built by tests/dbt/test_dbt_churn.py",
    "cd examples/dbt_churn": "tests/dbt/test_dbt_churn.py runs these steps on a copy",
    "sqlml compile churn@prod --dialect postgres --save           # the label":
        "the dbt-postgres walkthrough, run by tests/dbt/test_dbt_postgres.py",
    "{{ config(materialized='table', pre_hook=\"set jit = off\") }}":
        "a dbt model: examples/dbt_postgres, built by tests/dbt/test_dbt_postgres.py",
    "cd examples/dbt_postgres": "tests/dbt/test_dbt_postgres.py runs these steps on a copy",
}  # fmt: skip


def _normal(statement: str) -> str:
    return " ".join(statement.split())


@dataclass
class Newcomer:
    """A newcomer's fresh directory, shell and placeholders."""

    directory: Path
    placeholders: dict[str, str]
    env: dict[str, str]

    def text(self, block: Block) -> str:
        text = block.text
        for placeholder, value in self.placeholders.items():
            text = text.replace(placeholder, value)
        return text

    def run(self, args: list[str], block: Block) -> str:
        done = subprocess.run(
            args, cwd=self.directory, env=self.env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, f"README.md:{block.line}: {done.stderr}"
        return done.stdout

    def python(self, block: Block) -> str:
        return self.run([sys.executable, "-c", self.text(block)], block)

    def sh(self, block: Block) -> str:
        return self.run(["bash", "-e", "-c", self.text(block)], block)

    def sql(self, block: Block) -> dict[str, pa.Table]:
        """Each statement's result, by its text with whitespace normalised, run in the
        DuckDB database file the Quickstart made, with the default catalog."""
        with sqlml.connect(database="shop.duckdb") as session:
            return {_normal(s): session.sql(s) for s in split_statements(self.text(block))}


@pytest.fixture
def newcomer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_postgres_database: Callable[[], str]
) -> Newcomer:
    for key in [k for k in os.environ if k.startswith("SQLML_")]:
        monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    shop, catalog = make_postgres_database(), make_postgres_database()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SQLML_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return Newcomer(
        tmp_path,
        {
            # The reader's own servers, as the README writes them: the test's PostgreSQL.
            "postgresql://ml:secret@db.internal:5432/ml": catalog,
            "postgresql://ml:secret@db.internal/shop": shop,
            "postgresql://ml@db.internal/shop": shop,
        },
        env,
    )


def _shop_in_postgres(newcomer: Newcomer) -> None:
    """The reader's PostgreSQL database holds their customers (the Quickstart's)."""
    uri = newcomer.placeholders["postgresql://ml@db.internal/shop"]
    with sqlml.connect(catalog="sqlite:///elsewhere.db") as session:
        rows = session.write_postgres("customers", pq.read_table("customers.parquet"), uri=uri)
    assert rows == 20_000


def test_every_block_runs_in_order_in_a_fresh_directory(newcomer: Newcomer) -> None:
    everything = blocks()
    assert [b.first for b in everything if b.first in NOT_RUN] == list(NOT_RUN)
    runnable = [b for b in everything if b.language not in SHOWN and b.first not in NOT_RUN]
    preview, *rest = runnable
    later = {_normal(s) for b in rest if b.language == "sql" for s in split_statements(b.text)}
    for statement in split_statements(preview.text):
        assert _normal(statement) in later, f"the top's {statement!r} is not run below"

    checks: list[tuple[str, Callable[[Block], None]]] = []

    def check(first: str) -> Callable[[Callable[[Block], None]], Callable[[Block], None]]:
        def register(function: Callable[[Block], None]) -> Callable[[Block], None]:
            checks.append((first, function))
            return function

        return register

    @check("import pyarrow.parquet as pq")
    def quickstart(block: Block) -> None:
        assert re.search(r"n: \[\[20000\]\]", newcomer.python(block))
        _shop_in_postgres(newcomer)

    @check("CREATE MODEL churn")
    def training(block: Block) -> None:
        results = newcomer.sql(block)
        trained = [(r["model"], r["version"], r["algorithm"]) for t in results.values()
                   for r in t.to_pylist()]  # fmt: skip
        assert trained == [
            ("churn", 1, "lightgbm"),
            ("churn", 2, "lightgbm"),
            ("churn_baseline", 1, "logistic"),
            ("spend", 1, "random_forest"),
        ]

    @check("SELECT customer_id, predict('churn', *) AS will_churn FROM customers LIMIT 5;")
    def predicting(block: Block) -> None:
        results = list(newcomer.sql(block).values())
        assert results[0].num_rows == 5
        assert results[0].column_names == ["customer_id", "will_churn"]
        assert all(0.0 <= p <= 1.0 for p in results[1].column("p_churn").to_pylist())
        assert results[2].num_rows == 3  # expected_spend
        assert sum(results[3].column("customers").to_pylist()) == 20_000

    @check("SHOW MODELS;")
    def managing(block: Block) -> None:
        results = newcomer.sql(block)

        def row(start: str) -> list[dict[str, Any]]:
            found = [t for s, t in results.items() if s == start or s.startswith(start + " ")]
            assert len(found) == 1, start
            return found[0].to_pylist()

        assert {r["model"] for r in row("SHOW MODELS")} == {"churn", "churn_baseline", "spend"}
        described = {r["property"]: r["value"] for r in row("DESCRIBE MODEL churn")}
        assert described["version"] == "2"
        assert row("DEPLOY MODEL churn ROLLBACK") == [
            {"model": "churn", "alias": "production", "version": 1}
        ]
        assert row("DROP MODEL churn VERSION 2") == [{"model": "churn", "dropped": "version 2"}]

    @check("import duckdb")
    def native(block: Block) -> None:
        shown = newcomer.python(block)
        assert "churn" in shown
        assert "boolean" in shown

    @check('import sqlml\n\nwith sqlml.connect(engine="datafusion") as session:')
    def datafusion(block: Block) -> None:
        shown = newcomer.python(block)
        assert "customer_id: " in shown
        assert "Map(" in shown

    @check("import sqlml\n\nwith sqlml.connect() as session:\n    # the tables")
    def postgres_python(block: Block) -> None:
        assert newcomer.python(block).strip() == "20000 rows in churn_scores"

    @check("sqlml sql --postgres postgresql://ml@db.internal/shop \\")
    def postgres_cli(block: Block) -> None:
        assert "(10 rows)" in newcomer.sh(block)

    @check("export SQLML_CATALOG=postgresql://ml:secret@db.internal:5432/ml")
    def catalog_cli(block: Block) -> None:
        shown = newcomer.sh(block)
        assert "pending" in shown
        assert "applied 0004_alias_history" in shown
        assert "is up to date" in shown
        assert "no models in catalog" in shown
        assert "secret" not in shown

    @check("from sqlml import open_catalog")
    def catalog_python(block: Block) -> None:
        lines = newcomer.python(block).splitlines()
        assert [line.split()[:2] for line in lines] == [
            ["churn", "3"], ["churn_baseline", "1"],
        ]  # fmt: skip

    @check("sqlml compile churn@production --dialect postgres          # the predicted label")
    def compiling(block: Block) -> None:
        assert newcomer.sh(block).count("CASE WHEN") > 3
        with open_catalog("sqlite:///sqlml.db") as catalog:
            assert catalog.get_compiled("churn", 1, "postgres").expression

    @check("import sqlml\n\nwith sqlml.connect() as session:\n    expression")
    def compiling_python(block: Block) -> None:
        shown = newcomer.python(block)
        assert shown.startswith("SELECT customer_id, ")
        assert shown.strip().endswith("customers")

    @check("EXPLAIN SELECT predict('churn_baseline', *) AS p, predict('churn', *) AS q")
    def explaining(block: Block) -> None:
        (plan,) = newcomer.sql(block).values()
        steps = [r["explain_value"] for r in plan.to_pylist() if r["explain_key"] == "sqlml"]
        assert "predict('churn_baseline@1') runs as compiled SQL" in steps[0]
        assert "runs as the prediction function" in steps[1]

    @check("# sqlml.toml")
    def configuring(block: Block) -> None:
        elsewhere = newcomer.directory / "configured"
        elsewhere.mkdir()
        (elsewhere / "sqlml.toml").write_text(block.text, encoding="utf-8")
        settings = load_settings({}, environ={}, cwd=elsewhere)
        assert (settings.catalog, settings.engine) == ("postgresql://ml@db.internal/ml", "duckdb")

    @check("my_project:")
    def profile(block: Block) -> None:
        output = yaml.safe_load(block.text)["my_project"]["outputs"]["dev"]
        assert output["type"] == "duckdb"
        (plugin,) = output["plugins"]
        assert plugin["module"] == "sqlml.dbt"
        __import__(plugin["module"])

    ran = []
    for block in rest:
        matching = [f for first, f in checks if block.text.startswith(first)]
        assert len(matching) == 1, f"README.md:{block.line}: no check for {block.first!r}"
        matching[0](block)
        ran.append(block.first)
    assert len(ran) == len(checks)  # each check ran once
