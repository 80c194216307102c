"""The README's SQL examples run as written, in order."""

from __future__ import annotations

from pathlib import Path

import sqlml
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


def test_sql_surface_examples_run(tmp_path: Path) -> None:
    blocks = sql_blocks("## The SQL surface")
    assert len(blocks) >= 3
    with sqlml.connect(catalog=f"sqlite:///{tmp_path / 'readme.db'}") as session:
        session.register("customers", churn_data(5_000))
        for block in blocks:
            result = session.sql(block)
            assert result.num_columns > 0, block
        remaining = {m.name for m in session.catalog.list_models()}
        versions = [v.version for v in session.catalog.list_versions("churn")]
    assert remaining == {"churn", "churn_baseline"}
    assert versions == [2]
