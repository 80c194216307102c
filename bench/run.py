"""Run every benchmark in this folder: ``make bench``.

Each benchmark prints its figures with a ratio against a baseline measured in the same
run; none of them is a pass/fail test.
"""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path

BENCHMARKS = [
    "bench_predict",
    "bench_cheap",
    "bench_catalog",
    "bench_adbc",
    "bench_compile",
    "bench_flight",
]


def main() -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    selected = sys.argv[1:] or BENCHMARKS
    for name in selected:
        print(f"== {name}")
        started = time.perf_counter()
        importlib.import_module(name).main()
        print(f"   ({time.perf_counter() - started:.1f}s)\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
