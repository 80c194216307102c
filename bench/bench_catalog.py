"""Catalog overhead: loading an artifact through the catalog (SHA-256 checked) against
reading the same bytes with the plain driver, on the embedded SQLite store."""

from __future__ import annotations

import os
import sqlite3
import tempfile
import time
from collections.abc import Callable

import timing

from sqlml.catalog import Feature, VersionSpec, open_catalog

ARTIFACT_MB = 20
REPEAT = 20


def best_of(fn: Callable[[], object], repeat: int = REPEAT) -> float:
    return timing.best_of(fn, repeat)


def main() -> None:
    artifact = os.urandom(ARTIFACT_MB * 1024 * 1024)
    spec = VersionSpec(
        algorithm="lightgbm",
        task="regression",
        target="y",
        features=(Feature("x", "double"),),
        artifact_format="lightgbm",
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bench.db")
        with open_catalog(f"sqlite:///{path}") as catalog:
            started = time.perf_counter()
            for _ in range(50):
                catalog.register_version("bench_small", spec, b"x" * 1024)
            per_register = (time.perf_counter() - started) / 50
            catalog.register_version("bench", spec, artifact)
            through_catalog = best_of(lambda: catalog.load_artifact("bench", 1))
        raw = sqlite3.connect(path)
        query = "SELECT data FROM model_artifacts WHERE model = 'bench' AND version = 1"
        plain = best_of(lambda: raw.execute(query).fetchone())
        raw.close()
    print(f"   register_version (1 KiB artifact): {per_register * 1000:.2f} ms each")
    print(
        f"   load {ARTIFACT_MB} MiB artifact: catalog {through_catalog * 1000:.1f} ms, "
        f"plain sqlite3 {plain * 1000:.1f} ms, ratio {plain / through_catalog:.2f} "
        "(plain/catalog; 1.0 = no overhead)"
    )
