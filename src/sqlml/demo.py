"""``sqlml demo``: the catalog end to end on the embedded default."""

from __future__ import annotations

import time

import lightgbm as lgb
import numpy as np

from sqlml._table import format_table
from sqlml.catalog import Feature, VersionSpec, open_catalog
from sqlml.config import Settings

DEMO_MODEL = "demo_churn"


def _train(rng: np.random.Generator, rounds: int) -> tuple[lgb.Booster, np.ndarray]:
    x = rng.normal(size=(5_000, 3))
    y = (x[:, 0] + 0.5 * x[:, 1] - x[:, 2] + rng.normal(scale=0.5, size=5_000) > 0).astype(int)
    params = {"objective": "binary", "verbose": -1, "seed": 7, "deterministic": True}
    return lgb.train(params, lgb.Dataset(x, y), num_boost_round=rounds), x


def run_demo(settings: Settings) -> int:
    """Register two versions of a LightGBM model, deploy one, and load it back."""
    started = time.perf_counter()
    rng = np.random.default_rng(7)
    with open_catalog(settings.catalog) as catalog:
        print(f"catalog: {catalog.uri}")
        applied = [s for s in catalog.migration_status() if s.applied]
        print(f"schema: {len(applied)} migration(s) applied\n")
        features = tuple(Feature(name, "double") for name in ("tenure", "spend", "tickets"))
        for rounds in (20, 60):
            booster, x = _train(rng, rounds)
            spec = VersionSpec(
                algorithm="lightgbm",
                task="classification",
                target="churned",
                features=features,
                artifact_format="lightgbm",
                classes=(False, True),
                hyperparameters={"num_iterations": rounds},
                training_sql="-- demo data generated with numpy",
                row_count=len(x),
                library_versions={"lightgbm": lgb.__version__},
            )
            mv = catalog.register_version(DEMO_MODEL, spec, booster.model_to_string().encode())
            print(f"registered {mv.ref} ({rounds} trees, sha256 {mv.sha256[:12]}...)")
        catalog.set_alias(DEMO_MODEL, "production", mv.version - 1)
        print(f"deployed {DEMO_MODEL}@{mv.version - 1} as 'production'\n")

        rows = [
            [v.ref, v.algorithm, v.row_count, v.created_at.isoformat(timespec="seconds")]
            for v in catalog.list_versions(DEMO_MODEL)
        ]
        print(format_table(["version", "algorithm", "rows", "created_at"], rows), "\n")

        production = catalog.resolve(f"{DEMO_MODEL}@production")
        artifact = catalog.load_artifact(production.model, production.version)
        loaded = lgb.Booster(model_str=artifact.decode())
        sample = rng.normal(size=(3, 3))
        print(f"{production.ref} loaded back (SHA-256 checked); P(churn) for 3 customers:")
        for row, p in zip(sample, loaded.predict(sample), strict=True):
            print(f"  tenure={row[0]:+.2f} spend={row[1]:+.2f} tickets={row[2]:+.2f} -> {p:.3f}")
    print(f"\ndone in {time.perf_counter() - started:.1f}s; try `sqlml models`")
    return 0
