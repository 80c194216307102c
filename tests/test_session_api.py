"""The Python API around the SQL: parameters, files, multiple statements, closing."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

import sqlml
from sqlml.errors import QueryError, UnknownEngine


def test_parameters_multiple_statements_and_csv(tmp_path: Path) -> None:
    path = tmp_path / "points.csv"
    rows = [{"id": i, "x": float(i), "y": 3.0 * i + 1.0} for i in range(400)]
    pacsv.write_csv(pa.Table.from_pylist(rows), path)
    with sqlml.connect(catalog=f"sqlite:///{tmp_path / 'c.db'}") as session:
        created = session.sql(
            f"CREATE TABLE pts AS SELECT * FROM read_csv('{path}'); "
            "CREATE MODEL line OPTIONS (task = 'regression', algorithm = 'linear', "
            "target = 'y', exclude = 'id') AS SELECT * FROM pts"
        )
        assert created["model"].to_pylist() == ["line"]
        assert created["r2"][0].as_py() > 0.999
        picked = session.sql(
            "SELECT id, round(predict('line', *), 6) AS p FROM pts WHERE id = $1 OR id = $2 "
            "ORDER BY id",
            params=[10, 20],
        )
        assert picked.to_pylist() == [{"id": 10, "p": 31.0}, {"id": 20, "p": 61.0}]


def test_connect_defaults_and_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("SQLML_CATALOG", "SQLML_ENGINE", "SQLML_DATABASE"):
        monkeypatch.delenv(name, raising=False)
    with sqlml.connect() as session:
        assert session.catalog.uri == "sqlite:///sqlml.db"
        assert session.engine.name == "duckdb"
    assert (tmp_path / "sqlml.db").exists()
    with pytest.raises(UnknownEngine, match="did you mean 'duckdb'"):
        sqlml.connect(engine="duckbd")


def test_database_file_persists_tables(tmp_path: Path) -> None:
    catalog = f"sqlite:///{tmp_path / 'c.db'}"
    database = str(tmp_path / "data.duckdb")
    with sqlml.connect(catalog=catalog, database=database) as session:
        session.sql("CREATE TABLE kept AS SELECT 7 AS answer")
    with sqlml.connect(catalog=catalog, database=database) as session:
        assert session.sql("SELECT answer FROM kept")["answer"].to_pylist() == [7]
    with sqlml.connect(catalog=catalog) as session, pytest.raises(QueryError, match="kept"):
        session.sql("SELECT answer FROM kept")
