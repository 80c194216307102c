"""Models compiled to one SQL expression against the library on the same NumPy array.

1M rows x 20 float features (``--rows`` or ``SQLML_BENCH_COMPILE_ROWS`` for a quick run); a
logistic model and LightGBM regression models of 20 and 100 trees. For each, measured in
the same run:

- the baseline: the library on the NumPy array (``Booster.predict``; for the logistic
  model NumPy's ``sigmoid(((X - center) / scale) @ w + b)``, what its ONNX graph computes);
- the ``predict`` function (Arrow UDF) in DuckDB;
- the compiled expression (``Session.compile_model``) run natively by DuckDB, DataFusion
  and PostgreSQL (JIT off), each as ``SELECT max(<expression>) FROM t`` so that no engine
  pays for shipping a million rows to Python.

Ratios are the baseline's seconds over each one's (1.0 = as fast as the library); the max
abs diff is over every row's compiled value against the baseline. PostgreSQL needs
``SQLML_BENCH_POSTGRES_URI`` or ``SQLML_TEST_POSTGRES_URI`` (``make bench`` starts a
private server) and is skipped without one.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable

import numpy as np
import onnx
import psycopg
import pyarrow as pa
import timing
from onnx import numpy_helper

import sqlml
from sqlml.engines.datafusion import DataFusionEngine
from sqlml.session import Session
from sqlml.udfs.predict import LoadedModel

ROWS = int(os.environ.get("SQLML_BENCH_COMPILE_ROWS", 1_000_000))
FEATURES = 20
REPEAT = 3
TRAIN_ROWS = 200_000
TABLE = "sqlml_bench_compile"

#: name -> (CREATE MODEL options, output compiled and compared)
MODELS = {
    "logistic": ("algorithm = 'logistic', target = 'label', exclude = ('id', 'y')", "proba"),
    "lgb20": ("target = 'y', exclude = ('id', 'label'), num_iterations = 20", "predict"),
    "lgb100": ("target = 'y', exclude = ('id', 'label'), num_iterations = 100", "predict"),
}


def data(rows: int) -> pa.Table:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, FEATURES))
    y = x @ rng.normal(size=FEATURES) + np.sin(x[:, 0] * 3) + rng.normal(0, 0.1, rows)
    columns = {f"f{i:02d}": x[:, i] for i in range(FEATURES)}
    return pa.table({"id": np.arange(rows), **columns, "y": y, "label": y > 0})


def baseline(model: LoadedModel) -> Callable[[np.ndarray], np.ndarray]:
    """The library's own prediction on a NumPy array."""
    if model.booster is not None:
        booster = model.booster
        return lambda x: np.asarray(booster.predict(x))
    graph = onnx.load_from_string(model.artifact.model).graph
    weights = {item.name: numpy_helper.to_array(item) for item in graph.initializer}
    w, b = weights["coef"][:, 1], weights["intercept"].reshape(-1)[1]
    center, scale = model.preprocessor.center, model.preprocessor.scale
    assert center is not None
    assert scale is not None
    return lambda x: 1.0 / (1.0 + np.exp(-(((x - center) / scale) @ w + b)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=ROWS, help=f"rows (default {ROWS:,})")
    rows = parser.parse_args(argv or []).rows
    table = data(rows)
    x = np.column_stack([table[f"f{i:02d}"].to_numpy() for i in range(FEATURES)])
    uri = os.environ.get("SQLML_BENCH_POSTGRES_URI") or os.environ.get("SQLML_TEST_POSTGRES_URI")
    print(f"   data: {rows:,} rows x {FEATURES} features, {os.cpu_count()} cores")
    with (
        tempfile.TemporaryDirectory() as tmp,
        sqlml.connect(catalog=f"sqlite:///{tmp}/bench.db") as session,
        Session(DataFusionEngine(), session.catalog, owns_catalog=False) as datafusion,
    ):
        session.register("t", table)
        datafusion.register("t", table)
        session.register("train", table.slice(0, min(rows, TRAIN_ROWS)))
        if uri:
            started = time.perf_counter()
            session.write_postgres(TABLE, table, mode="replace", uri=uri)
            print(f"   PostgreSQL: table loaded in {time.perf_counter() - started:.1f} s (JIT off)")
        else:
            print("   PostgreSQL: skipped (set SQLML_TEST_POSTGRES_URI or run `make bench`)")
        for name, (options, output) in MODELS.items():
            session.sql(f"CREATE MODEL {name} OPTIONS ({options}) AS SELECT * FROM train")
            measure(name, output, session, datafusion, uri, x)
        if uri:
            with psycopg.connect(uri, autocommit=True) as conn:
                conn.execute(f"DROP TABLE IF EXISTS {TABLE}")


def measure(
    name: str,
    output: str,
    session: Session,
    datafusion: Session,
    uri: str | None,
    x: np.ndarray,
) -> None:
    model = session.models.get(name)
    library = baseline(model)
    expected = library(x)
    library_seconds = timing.best_of(lambda: library(x), REPEAT)
    proba = output == "proba"
    started = time.perf_counter()
    duckdb_sql = session.compile_model(name, "duckdb", proba=proba)
    compile_seconds = time.perf_counter() - started
    datafusion_sql = session.compile_model(name, "datafusion", proba=proba)
    function = "predict_proba" if proba else "predict"
    udf = (
        f"SELECT max({function}('{name}', *)['true']) AS p FROM t"
        if proba
        else f"SELECT max(predict('{name}', *)) AS p FROM t"
    )
    session.sql(udf)  # warm up: load the model
    results: dict[str, tuple[float, float | None]] = {
        "predict() UDF, DuckDB": (timing.best_of(lambda: session.sql(udf), REPEAT), None)
    }
    for engine, runner, text in [
        ("compiled, DuckDB", session, duckdb_sql),
        ("compiled, DataFusion", datafusion, datafusion_sql),
    ]:
        # Straight to the engine, as when predict() inlines the model: the front end would
        # only tokenize the long text to find no sqlml call in it.
        execute = runner.engine.execute
        seconds = timing.best_of(lambda e=execute, s=text: e(f"SELECT max({s}) FROM t"), REPEAT)
        values = execute(f"SELECT id, {text} AS p FROM t ORDER BY id")["p"].to_numpy()
        results[engine] = (seconds, float(np.max(np.abs(values - expected))))
    if uri:
        results["compiled, PostgreSQL"] = postgres(uri, session.compile_model(
            name, "postgres", proba=proba
        ), expected)  # fmt: skip
    what = "P(label = true)" if proba else "predict"
    print(
        f"   {name} ({what}): library {library_seconds * 1e3:,.0f} ms; "
        f"compiled to SQL in {compile_seconds:.2f} s ({len(duckdb_sql) / 1e3:,.0f} kB)"
    )
    for engine, (seconds, diff) in results.items():
        shown = "" if diff is None else f", max abs diff {diff:.1e}"
        print(
            f"      {engine:<22} {seconds * 1e3:9,.0f} ms, ratio {library_seconds / seconds:5.2f}"
            f"{shown}"
        )


def postgres(uri: str, text: str, expected: np.ndarray) -> tuple[float, float]:
    with psycopg.connect(uri, autocommit=True) as conn:
        conn.execute("SET jit = off")
        conn.execute(f"SELECT max({text}) FROM {TABLE}")  # warm up: the first plan
        seconds = timing.best_of(
            lambda: conn.execute(f"SELECT max({text}) FROM {TABLE}").fetchall(), REPEAT
        )
        rows = conn.execute(f"SELECT {text} FROM {TABLE} ORDER BY id").fetchall()
    values = np.array([row[0] for row in rows], dtype=np.float64)
    return seconds, float(np.max(np.abs(values - expected)))


if __name__ == "__main__":
    main(sys.argv[1:])
