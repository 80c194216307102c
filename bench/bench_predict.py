"""Predict and train through SQL against LightGBM's own API on the same data.

1M rows x 20 float features, a 100-tree LightGBM regression model. Baselines are measured
in the same run: ``Booster.predict`` on the same rows as a NumPy array, and
``lightgbm.train`` on the same training rows with the same parameters. Prediction is
measured on DuckDB and on DataFusion (there at two batch sizes: the function is called
once per batch).
"""

from __future__ import annotations

import io
import os
import tempfile
import time
import zipfile
from typing import Any

import lightgbm as lgb
import numpy as np
import pyarrow as pa

import sqlml
from sqlml.catalog import Catalog
from sqlml.engines.datafusion import BATCH_SIZE, DataFusionEngine
from sqlml.session import Session

ROWS = int(os.environ.get("SQLML_BENCH_ROWS", 1_000_000))
FEATURES = 20
TREES = 100
REPEAT = 5
BATCH_SIZES = (8_192, 65_536)


def data(rows: int) -> pa.Table:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, FEATURES))
    y = x @ rng.normal(size=FEATURES) + np.sin(x[:, 0] * 3) + rng.normal(0, 0.1, rows)
    columns = {f"f{i:02d}": x[:, i] for i in range(FEATURES)}
    return pa.table({**columns, "y": y})


def best(fn: object, repeat: int = REPEAT) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()  # type: ignore[operator]
        times.append(time.perf_counter() - started)
    return min(times), result


def main() -> None:
    table = data(ROWS)
    x = np.column_stack([table[f"f{i:02d}"].to_numpy() for i in range(FEATURES)])
    with (
        tempfile.TemporaryDirectory() as tmp,
        sqlml.connect(catalog=f"sqlite:///{tmp}/bench.db") as session,
    ):
        session.register("t", table)
        create = (
            f"CREATE OR REPLACE MODEL m OPTIONS (task = 'regression', target = 'y', "
            f"num_iterations = {TREES}) AS SELECT * FROM t"
        )
        # Warm up: the first CREATE MODEL imports scikit-learn and LightGBM.
        session.register("warm", table.slice(0, 1000))
        session.sql("CREATE MODEL warm OPTIONS (task = 'regression', target = 'y') AS FROM warm")
        sql_train, _ = best(lambda: session.sql(create), repeat=2)
        version = session.catalog.get_version("m")
        blob = session.catalog.load_artifact("m", version.version)
        booster = lgb.Booster(
            model_str=zipfile.ZipFile(io.BytesIO(blob)).read("model.txt").decode()
        )
        params = dict(version.hyperparameters)
        train_rows = round(ROWS * 0.8)
        features = [f"f{i:02d}" for i in range(FEATURES)]

        def by_hand() -> lgb.Booster:
            # What a user does with the same Arrow data: NumPy arrays, then lightgbm.train.
            rows = table.slice(0, train_rows)
            x_train = np.column_stack([rows[name].to_numpy() for name in features])
            return lgb.train(params, lgb.Dataset(x_train, rows["y"].to_numpy()))

        lgb_train, _ = best(by_hand, repeat=2)

        session.sql("SELECT predict('m', *) FROM t LIMIT 1")  # warm up: load the model
        query = "SELECT predict('m', *) AS p FROM t"
        sql_predict, lgb_predict, result, expected = alternate(
            lambda: session.sql(query), lambda: booster.predict(x)
        )
        got = result["p"].to_numpy()  # type: ignore[index]
        # DuckDB keeps the scan's row order (preserve_insertion_order), so rows line up.
        identical = np.array_equal(got, expected)  # type: ignore[arg-type]
        max_diff = float(np.max(np.abs(got - expected)))  # type: ignore[operator]
        datafusion = {
            size: datafusion_predict(table, session.catalog, size, booster, x)
            for size in BATCH_SIZES
        }

    print(f"   data: {ROWS:,} rows x {FEATURES} features, {TREES} trees, {os.cpu_count()} cores")
    print(
        f"   predict: SQL {ROWS / sql_predict:,.0f} rows/s, Booster.predict "
        f"{ROWS / lgb_predict:,.0f} rows/s, ratio {lgb_predict / sql_predict:.2f} "
        f"(goal >= 0.95); identical results: {identical} (max abs diff {max_diff:.1e})"
    )
    for size, (seconds, baseline, same) in datafusion.items():
        print(
            f"   predict on DataFusion, batch_size {size:,}: SQL {ROWS / seconds:,.0f} rows/s, "
            f"Booster.predict {ROWS / baseline:,.0f} rows/s, ratio {baseline / seconds:.2f}; "
            f"identical results: {same}"
        )
    small, large = (datafusion[size][0] for size in BATCH_SIZES)
    print(
        f"   DataFusion batch_size {BATCH_SIZES[1]:,} vs {BATCH_SIZES[0]:,}: "
        f"{small / large:.2f}x the throughput (default {BATCH_SIZE:,})"
    )
    print(
        f"   train: CREATE MODEL {sql_train:.2f} s (split, preprocess, train, holdout "
        f"metrics, register), Arrow to NumPy + lightgbm.train {lgb_train:.2f} s on the same "
        f"{train_rows:,} rows, ratio {sql_train / lgb_train:.2f} (goal <= 1.15)"
    )


def alternate(sql: Any, baseline: Any) -> tuple[float, float, Any, Any]:
    """Best seconds of ``sql()`` and of ``baseline()``, run in turns so that drift on a
    shared machine hits both alike, with the last result of each."""
    sql_best = baseline_best = float("inf")
    for _ in range(REPEAT):
        seconds, result = best(sql, repeat=1)
        sql_best = min(sql_best, seconds)
        seconds, expected = best(baseline, repeat=1)
        baseline_best = min(baseline_best, seconds)
    return sql_best, baseline_best, result, expected


def datafusion_predict(
    table: pa.Table, catalog: Catalog, batch_size: int, booster: lgb.Booster, x: np.ndarray
) -> tuple[float, float, bool]:
    """Best seconds of ``predict`` through SQL on DataFusion and of ``Booster.predict``
    (alternated), and whether the predictions are identical."""
    with Session(DataFusionEngine(batch_size=batch_size), catalog, owns_catalog=False) as session:
        session.register("t", table.append_column("row", pa.array(np.arange(ROWS))))
        session.sql("SELECT predict('m', *) FROM t LIMIT 1")  # warm up: bind the model
        query = "SELECT row, predict('m', *) AS p FROM t"
        sql_predict, lgb_predict, result, expected = alternate(
            lambda: session.sql(query), lambda: booster.predict(x)
        )
    # DataFusion may return rows out of scan order: put them back by row number.
    order = np.argsort(result["row"].to_numpy())  # type: ignore[index]
    got = result["p"].to_numpy()[order]  # type: ignore[index]
    return sql_predict, lgb_predict, bool(np.array_equal(got, expected))  # type: ignore[arg-type]
