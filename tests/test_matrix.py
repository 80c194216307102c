"""The engine x catalog matrix itself: every cell runs, and known gaps are strict xfails."""

from __future__ import annotations

import pytest

import sqlml

from .conftest import CELL_IDS, Cell


def test_each_cell_has_its_engine_and_a_migrated_catalog(cell: Cell) -> None:
    with sqlml.connect(engine=cell.engine, catalog=cell.catalog_uri) as session:
        assert session.engine.name == cell.engine
        assert session.sql("SHOW MODELS").num_rows == 0
    assert cell.catalog_uri.startswith("sqlite:" if cell.catalog == "sqlite" else "postgresql")


@pytest.mark.notimpl("a gap marked on one engine fails only there", engines=["datafusion"])
def test_a_marked_gap_is_an_xfail_on_its_cells_only(cell: Cell) -> None:
    assert cell.engine != "datafusion"


def test_the_matrix_is_every_engine_times_every_catalog() -> None:
    assert CELL_IDS == [
        "duckdb-sqlite",
        "duckdb-postgres",
        "datafusion-sqlite",
        "datafusion-postgres",
    ]
    assert sorted({cell.split("-")[0] for cell in CELL_IDS}) == sorted(sqlml.config.ENGINES)
