"""Concurrent registrations from separate processes, on both stores."""

from __future__ import annotations

import subprocess
import sys
import time

from sqlml.catalog import open_catalog

WORKER = """
import sys, time
from sqlml.catalog import Feature, VersionSpec, open_catalog
uri, start, tag = sys.argv[1], float(sys.argv[2]), sys.argv[3]
spec = VersionSpec(algorithm="lightgbm", task="regression", target="y",
                   features=(Feature("x", "double"),), artifact_format="lightgbm",
                   training_sql=tag)
with open_catalog(uri) as catalog:
    time.sleep(max(0.0, start - time.time()))
    print(catalog.register_version("shared", spec, tag.encode()).version)
"""


def test_eight_processes_get_eight_consecutive_versions(catalog_uri: str) -> None:
    with open_catalog(catalog_uri, migrate=True):
        pass
    start = time.time() + 3.0
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, catalog_uri, str(start), f"worker-{i}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(8)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, [err for _, err in outputs]
    versions = sorted(int(out) for out, _ in outputs)
    assert versions == list(range(1, 9))
    with open_catalog(catalog_uri) as catalog:
        stored = catalog.list_versions("shared")
        assert [v.version for v in stored] == list(range(1, 9))
        # Each version holds the artifact its own worker wrote.
        for v in stored:
            assert catalog.load_artifact("shared", v.version) == v.training_sql.encode()
