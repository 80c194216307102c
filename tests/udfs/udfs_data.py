"""Data for the udfs tests: small tables generated with NumPy (imported by the tests)."""

from __future__ import annotations

import decimal

import numpy as np
import pyarrow as pa

N = 400
CITIES = ["Lyon", "Nantes", "Paris"]


def make_table(n: int = N, seed: int = 0) -> pa.Table:
    """Features of every kind plus one target column per kind of target.

    Features: ``x`` (float, NaNs), ``count`` (int64 with NULLs), ``price`` (decimal),
    ``member`` (bool with NULLs), ``city`` (string with NULLs), ``shade`` (dictionary),
    ``day`` (date32), ``seen`` (timestamp with a time zone) and ``id`` (to exclude).
    Targets: ``label`` (binary string), ``tier`` (3 string classes), ``yes`` (bool),
    ``grade`` (int64, 3 classes), ``amount`` (float).
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    x[rng.random(n) < 0.05] = np.nan
    count = rng.integers(0, 10, n)
    city = rng.choice(CITIES, n)
    signal = np.nan_to_num(x) + (city == "Paris") * 1.5 + count / 10
    amount = 2 * np.nan_to_num(x) + count + (city == "Lyon") * 3 + rng.normal(0, 0.1, n)
    shades = pa.array(rng.choice(["dark", "light"], n)).dictionary_encode()
    days = pa.array(rng.integers(10_000, 20_000, n).astype(np.int32)).cast(pa.date32())
    seen = pa.array(rng.integers(0, 2_000_000_000, n) * 1_000_000, pa.timestamp("us", "UTC"))
    return pa.table(
        {
            "id": np.arange(n),
            "x": x,
            "count": pa.array(count, mask=rng.random(n) < 0.1),
            "price": pa.array(
                [decimal.Decimal(int(v)) / 100 for v in rng.integers(0, 10_000, n)],
                pa.decimal128(10, 2),
            ),
            "member": pa.array(rng.random(n) < 0.5, mask=rng.random(n) < 0.1),
            "city": pa.array(city, mask=rng.random(n) < 0.05),
            "shade": shades,
            "day": days,
            "seen": seen,
            "label": np.where(signal > 1.0, "churn", "stay"),
            "tier": np.select([signal < 0.5, signal < 1.5], ["bronze", "silver"], "gold"),
            "yes": signal > 1.0,
            "grade": np.digitize(signal, [0.5, 1.5]).astype(np.int64),
            "amount": amount,
        }
    )


TARGETS = ["label", "tier", "yes", "grade", "amount"]


def features_of(table: pa.Table) -> pa.Table:
    """``table`` without its targets and ``id``."""
    return table.drop_columns([*TARGETS, "id"])


def options(target: str, **extra: object) -> dict[str, object]:
    """Options training ``target`` on the features, excluding the other targets."""
    exclude = [t for t in TARGETS if t != target] + ["id"]
    return {"target": target, "exclude": exclude, **extra}
