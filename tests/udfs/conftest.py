from __future__ import annotations

import os

import pyarrow as pa
import pytest

from .udfs_data import make_table

# LightGBM's and scikit-learn's OpenMP threads spin while they wait; on a busy machine
# (CI, parallel jobs) that makes these tests several times slower. Set before either loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@pytest.fixture(scope="session")
def table() -> pa.Table:
    return make_table()
