from __future__ import annotations

import io
import json
import re
import zipfile

import pyarrow as pa
import pytest

from sqlml.errors import ArtifactInvalid
from sqlml.udfs import load_model, train
from sqlml.udfs.artifact import pack, unpack

from .udfs_data import options


@pytest.fixture(scope="module")
def blob(table: pa.Table) -> bytes:
    return train(table, name="m", options=options("tier", num_iterations=5)).artifact


def rewrite(blob: bytes, **changes: bytes) -> bytes:
    """``blob`` with some files replaced (or added), keeping the rest."""
    with zipfile.ZipFile(io.BytesIO(blob)) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    files.update(changes)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out.getvalue()


def test_artifact_is_a_zip_of_json_and_lightgbm_text(blob: bytes) -> None:
    with zipfile.ZipFile(io.BytesIO(blob)) as archive:
        assert sorted(archive.namelist()) == ["manifest.json", "model.txt", "preprocess.json"]
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        assert archive.read("model.txt").startswith(b"tree\n")
    unpacked = unpack(blob)
    assert unpacked.format == "lightgbm"
    assert unpacked.manifest["classes"] == ["bronze", "gold", "silver"]
    assert unpacked.manifest["target_type"] == "string"
    assert unpacked.preprocess["encoding"] == "codes"


def test_onnx_artifact(table: pa.Table) -> None:
    blob = train(table, name="m", options=options("label", algorithm="logistic")).artifact
    unpacked = unpack(blob)
    assert unpacked.format == "onnx"
    assert unpacked.manifest["onnx_input"] == "double"
    assert unpacked.preprocess["encoding"] == "onehot"


def test_pack_unpack_roundtrip(blob: bytes) -> None:
    unpacked = unpack(blob)
    manifest = {k: v for k, v in unpacked.manifest.items() if k not in ("version", "files")}
    assert pack(manifest, unpacked.preprocess, unpacked.model) == blob
    model = load_model(blob, "m")
    assert model.classes == ("bronze", "gold", "silver")
    assert model.task == "classification"
    assert model.algorithm == "lightgbm"


def test_not_a_zip(blob: bytes) -> None:
    with pytest.raises(ArtifactInvalid, match=r"'m'.*not a zip"):
        load_model(b"\x80\x04 definitely not a zip", "m")


def test_unknown_format_is_rejected(blob: bytes) -> None:
    manifest = dict(unpack(blob).manifest)
    manifest["format"] = "pickle"
    with pytest.raises(ArtifactInvalid, match="unknown model format 'pickle'"):
        load_model(rewrite(blob, **{"manifest.json": json.dumps(manifest).encode()}), "m")


def test_unknown_version_is_rejected(blob: bytes) -> None:
    manifest = {**unpack(blob).manifest, "version": 2}
    with pytest.raises(ArtifactInvalid, match="version 2"):
        unpack(rewrite(blob, **{"manifest.json": json.dumps(manifest).encode()}), "m")


def test_tampered_model_is_rejected(blob: bytes) -> None:
    with pytest.raises(ArtifactInvalid, match=re.escape("model.txt does not match its SHA-256")):
        unpack(rewrite(blob, **{"model.txt": b"tree\nversion=v4\n"}), "m")


def test_extra_files_are_rejected(blob: bytes) -> None:
    with pytest.raises(ArtifactInvalid, match=re.escape("model.pkl")):
        unpack(rewrite(blob, **{"model.pkl": b"\x80\x04."}), "m")
