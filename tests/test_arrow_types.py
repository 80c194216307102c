"""Every Arrow type the engines hand out works in training, predict and evaluate.

DataFusion reads Parquet text as ``string_view``; files and Arrow tables hold large
strings, dictionaries, decimals and zoned timestamps. The same rows, however typed and
wherever read from, must give the same model: each cell trains on one source on one
engine, and its predictions and evaluate() figures must equal those of the model trained
on the plain-typed table.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

import sqlml
from sqlml.config import ENGINES
from sqlml.udfs.arrow_types import plain_table, plain_type

ROWS = 600


def passengers() -> pa.Table:
    """Text with NULLs, a decimal, a zoned timestamp and a boolean target that depends on
    all of them."""
    rng = np.random.default_rng(7)
    cabin = rng.choice(["first", "second", "third"], ROWS)
    sex = rng.choice(["f", "m"], ROWS)
    port = [None if i % 9 == 0 else p for i, p in enumerate(rng.choice(["C", "Q", "S"], ROWS))]
    fare = np.round(rng.uniform(5, 100, ROWS), 2)
    start = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
    boarded = [start + dt.timedelta(hours=int(h)) for h in rng.integers(0, 2000, ROWS)]
    hours = np.array([b.hour for b in boarded])
    score = (sex == "f") * 1.5 + (cabin == "first") - 0.01 * fare + (hours < 12) * 0.8
    score += rng.normal(0, 0.5, ROWS)
    return pa.table(
        {
            "id": pa.array(range(ROWS), pa.int64()),
            "cabin": pa.array(cabin).dictionary_encode(),
            "sex": pa.array(sex, pa.large_string()),
            "port": pa.array(port, pa.string_view()),
            "fare": pa.array([str(f) for f in fare]).cast(pa.decimal128(10, 2)),
            "boarded": pa.array(boarded, pa.timestamp("us", tz="Europe/Berlin")),
            "survived": pa.array(score > np.median(score)),
        }
    )


def _write(source: str, table: pa.Table, directory: Path) -> Path | pa.Table:
    if source == "arrow":
        return table
    if source == "parquet":
        path = directory / "passengers.parquet"
        pq.write_table(table, path)
        return path
    path = directory / "passengers.csv"
    # Text as plain strings (the writer takes no views), the timestamps with their zone.
    zoned = table.column("boarded")
    pa_csv.write_csv(plain_table(table).set_column(5, "boarded", zoned), path)
    return path


TRAIN = (
    "CREATE MODEL m OPTIONS (target = 'survived', exclude = 'id', num_iterations = 30) "
    "AS SELECT * FROM passengers ORDER BY id"
)
PREDICT = "SELECT id, predict_proba('m', *)['true'] AS p FROM passengers ORDER BY id"
EVALUATE = "SELECT * FROM evaluate('m', 'SELECT * FROM passengers')"


def _run(engine: str, catalog: str, data: Path | pa.Table) -> tuple[list[float], dict[str, float]]:
    with sqlml.connect(engine=engine, catalog=catalog) as session:
        if isinstance(data, pa.Table):
            session.register("passengers", data)
        elif data.suffix == ".parquet":
            session.read_parquet("passengers", data)
        else:
            session.read_csv("passengers", data)
        session.sql(TRAIN)
        predicted = session.sql(PREDICT).column("p").to_pylist()
        metrics = session.sql(EVALUATE).to_pylist()[0]
    return predicted, {k: v for k, v in metrics.items() if k not in ("model",)}


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[float], dict[str, float]]:
    """The model trained on the plain-typed rows, on DuckDB."""
    directory = tmp_path_factory.mktemp("reference")
    catalog = f"sqlite:///{directory / 'catalog.db'}"
    return _run("duckdb", catalog, plain_table(passengers()))


@pytest.mark.parametrize("source", ["arrow", "parquet", "csv"])
@pytest.mark.parametrize("engine", ENGINES)
def test_training_predict_and_evaluate_take_every_arrow_type(
    engine: str,
    source: str,
    tmp_path: Path,
    reference: tuple[list[float], dict[str, float]],
) -> None:
    table = passengers()
    data = _write(source, table, tmp_path)
    predicted, metrics = _run(engine, f"sqlite:///{tmp_path / 'catalog.db'}", data)
    expected_predictions, expected_metrics = reference
    assert len(predicted) == ROWS
    np.testing.assert_allclose(predicted, expected_predictions, rtol=0, atol=1e-12)
    assert metrics.keys() == expected_metrics.keys()
    for name, value in expected_metrics.items():
        assert metrics[name] == pytest.approx(value, abs=1e-12), name
    assert 0.7 < metrics["accuracy"] <= 1.0  # the model learnt something


def test_the_data_set_holds_the_types_it_is_about() -> None:
    """The cells above are only worth something if the data holds the awkward types."""
    types = {field.name: field.type for field in passengers().schema}
    assert pa.types.is_dictionary(types["cabin"])
    assert types["sex"] == pa.large_string()
    assert types["port"] == pa.string_view()
    assert pa.types.is_decimal(types["fare"])
    assert types["boarded"].tz == "Europe/Berlin"
    assert all(plain_type(t) != t for n, t in types.items() if n not in ("id", "survived"))


def test_datafusion_reads_parquet_text_as_views(tmp_path: Path) -> None:
    """What made this necessary: DataFusion hands Parquet text to functions as views."""
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"s": ["a", "b"]}), path)
    with sqlml.connect(engine="datafusion", catalog=f"sqlite:///{tmp_path / 'c.db'}") as session:
        session.read_parquet("t", path)
        shown = session.sql("SELECT arrow_typeof(s) AS t FROM t LIMIT 1").column("t")[0].as_py()
    assert shown == "Utf8View"
