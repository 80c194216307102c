"""The README's SQL examples run as written, in order."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

import sqlml
from sqlml.config import ENGINES
from sqlml.demo import churn_data

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


@pytest.mark.parametrize("engine", ENGINES)
def test_sql_surface_examples_run(tmp_path: Path, engine: str) -> None:
    blocks = sql_blocks("## The SQL surface")
    assert len(blocks) >= 3
    with sqlml.connect(engine=engine, catalog=f"sqlite:///{tmp_path / 'readme.db'}") as session:
        session.register("customers", churn_data(5_000))
        for block in blocks:
            result = session.sql(block)
            assert result.num_columns > 0, block
        remaining = {m.name for m in session.catalog.list_models()}
        versions = [v.version for v in session.catalog.list_versions("churn")]
    assert remaining == {"churn", "churn_baseline"}
    assert versions == [2]


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
