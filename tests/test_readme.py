"""The README's SQL examples run as written, in order."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

import sqlml
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


def test_datafusion_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = README.read_text(encoding="utf-8").split("## Engines: DuckDB or DataFusion", 1)[1]
    example = text.split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(tmp_path)
    pq.write_table(churn_data(2_000), "customers.parquet")
    with sqlml.connect(catalog="sqlite:///sqlml.db") as session:
        session.register("customers", churn_data(2_000))
        session.sql(
            "CREATE MODEL churn OPTIONS (target = 'churned', exclude = 'customer_id') "
            "AS SELECT * FROM customers"
        )
    exec(compile(example, "README.md", "exec"), {})
