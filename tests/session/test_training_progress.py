"""CREATE MODEL reports every stage, reading the query and storing the version included."""

from __future__ import annotations

from pathlib import Path

import sqlml
from tests.session.conftest import numeric


def test_every_stage_of_create_model_reports_progress(tmp_path: Path) -> None:
    seen: list[tuple[str, int, int]] = []
    with sqlml.connect(catalog=f"sqlite:///{tmp_path / 'c.db'}") as session:
        session.register("t", numeric(400))
        session.progress = lambda stage, done, total: seen.append((stage, done, total))
        session.sql(
            "CREATE MODEL rf OPTIONS (target = 'y', exclude = ('id', 'label'), "
            "algorithm = 'random_forest', n_estimators = 20) AS SELECT * FROM t"
        )
    stages = list(dict.fromkeys(stage for stage, _, _ in seen))
    assert stages == ["read", "preprocess", "train", "convert", "evaluate", "package", "store"]
    for stage in stages:  # each one ends
        assert any(s == stage and done == total for s, done, total in seen), stage
