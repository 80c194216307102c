"""A cheap model, where per-batch overhead shows: logistic regression through SQL against
NumPy's own ``X @ w`` on the same rows as one array, on each engine and batch size.

The baseline is the least work any implementation must do (one matrix-vector product);
sqlml also standardises the features and runs the ONNX model, so the ratio is the share
of that floor it reaches.
"""

from __future__ import annotations

import os
import tempfile
import time

import numpy as np
import pyarrow as pa

from sqlml.catalog import open_catalog
from sqlml.engines.datafusion import DataFusionEngine
from sqlml.engines.duckdb import DuckDBEngine
from sqlml.session import Session

ROWS = int(os.environ.get("SQLML_BENCH_ROWS", 1_000_000))
FEATURES = 20
REPEAT = 5


def main() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(ROWS, FEATURES))
    w = rng.normal(size=FEATURES)
    label = (x @ w + rng.normal(0, 1, ROWS)) > 0
    table = pa.table({**{f"f{i:02d}": x[:, i] for i in range(FEATURES)}, "label": label})

    floor = from_arrow = float("inf")
    for _ in range(REPEAT):
        started = time.perf_counter()
        x @ w
        floor = min(floor, time.perf_counter() - started)
        started = time.perf_counter()
        np.column_stack([column.to_numpy() for column in table.columns[:FEATURES]]) @ w
        from_arrow = min(from_arrow, time.perf_counter() - started)
    print(
        f"   data: {ROWS:,} rows x {FEATURES} features; NumPy X @ w {ROWS / floor:,.0f} rows/s "
        f"on a ready array, {ROWS / from_arrow:,.0f} rows/s from the Arrow columns"
    )

    with tempfile.TemporaryDirectory() as tmp, open_catalog(f"sqlite:///{tmp}/c.db") as catalog:
        engines = [("duckdb", DuckDBEngine())] + [
            (f"datafusion, batch_size {size:,}", DataFusionEngine(batch_size=size))
            for size in (8_192, 65_536)
        ]
        for label_, engine in engines:
            with Session(engine, catalog, owns_catalog=False) as session:
                session.register("t", table)
                if not catalog.list_models():
                    session.sql(
                        "CREATE MODEL lr OPTIONS (algorithm = 'logistic', target = 'label') "
                        "AS SELECT * FROM t"
                    )
                query = "SELECT predict_proba('lr', *) AS p FROM t"
                session.sql(query + " LIMIT 1")  # warm up: load and bind the model
                seconds = float("inf")
                for _ in range(REPEAT):
                    started = time.perf_counter()
                    session.sql(query)
                    seconds = min(seconds, time.perf_counter() - started)
            print(
                f"   logistic predict_proba on {label_}: {ROWS / seconds:,.0f} rows/s, "
                f"ratio {floor / seconds:.3f} of X @ w on a ready array, "
                f"{from_arrow / seconds:.2f} of X @ w from the Arrow columns"
            )
