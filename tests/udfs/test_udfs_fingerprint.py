"""The data fingerprint depends on the values only, not on how they are stored."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from sqlml.udfs.train import data_fingerprint


def with_hidden_value(values: list[int], hidden: int) -> pa.Array:
    """An int64 array whose NULL slot (index 1) stores ``hidden`` behind the bitmap."""
    data = np.array(values, dtype=np.int64)
    data[1] = hidden
    validity = np.packbits([1, 0] + [1] * (len(values) - 2), bitorder="little")
    buffers = [pa.py_buffer(validity.tobytes()), pa.py_buffer(data.tobytes())]
    return pa.Array.from_buffers(pa.int64(), len(values), buffers)


def test_bytes_behind_nulls_dictionaries_and_chunks_do_not_count() -> None:
    plain = pa.table({"x": pa.array([1, None, 3, 4]), "s": pa.array(["a", None, "a", "b"])})
    hidden = pa.table(
        {
            "x": with_hidden_value([1, 0, 3, 4], hidden=12345),
            "s": pa.array(["a", None, "a", "b"]).dictionary_encode(),
        }
    )
    chunked = pa.Table.from_batches(plain.to_batches(max_chunksize=1))
    assert hidden["x"].equals(plain["x"])
    assert data_fingerprint(hidden) == data_fingerprint(plain) == data_fingerprint(chunked)


def test_values_nulls_and_names_do_count() -> None:
    base = pa.table({"x": pa.array([1, None, 3])})
    assert data_fingerprint(base) != data_fingerprint(pa.table({"x": pa.array([1, 0, 3])}))
    assert data_fingerprint(base) != data_fingerprint(pa.table({"x": pa.array([1, None, 4])}))
    assert data_fingerprint(base) != data_fingerprint(pa.table({"y": pa.array([1, None, 3])}))
