"""The model artifact: one reproducible zip blob that loading never executes.

Layout::

    manifest.json    format, task, target and its Arrow type, classes, SHA-256 of each file
    preprocess.json  the fitted preprocessing spec (see :mod:`sqlml.udfs.preprocess`)
    model.txt        LightGBM's own text model (format "lightgbm"), or
    model.onnx       an ONNX graph (format "onnx", scikit-learn models via skl2onnx)

Entries have fixed timestamps and JSON is written with sorted keys, so the same model gives
the same bytes. Only JSON, LightGBM text and ONNX protobuf are read back; nothing is
unpickled.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlml.errors import ArtifactInvalid

ARTIFACT_VERSION = 1
MODEL_FILES = {"lightgbm": "model.txt", "onnx": "model.onnx"}
TASKS = ("classification", "regression")
_REQUIRED = ("format", "task", "algorithm", "target", "target_type", "classes", "files")
_TIMESTAMP = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True, slots=True)
class Artifact:
    """An unpacked artifact.

    Attributes:
        manifest: the manifest (``format``, ``task``, ``algorithm``, ``target``,
            ``target_type``, ``classes``, and for ONNX ``onnx_input``).
        preprocess: the preprocessing spec.
        model: the model file's bytes (LightGBM text or ONNX).
    """

    manifest: Mapping[str, Any]
    preprocess: Mapping[str, Any]
    model: bytes

    @property
    def format(self) -> str:
        """``lightgbm`` or ``onnx``."""
        return str(self.manifest["format"])


def _json(data: Mapping[str, Any]) -> bytes:
    return json.dumps(data, sort_keys=True, indent=1, allow_nan=False).encode()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pack(manifest: Mapping[str, Any], preprocess: Mapping[str, Any], model: bytes) -> bytes:
    """Write an artifact.

    Args:
        manifest: the manifest without ``version`` and ``files`` (added here); its
            ``format`` says which model file ``model`` is.
        preprocess: the preprocessing spec.
        model: the model file's bytes.

    Returns:
        The zip archive's bytes.
    """
    files = {"preprocess.json": _json(preprocess), MODEL_FILES[manifest["format"]]: model}
    full = {
        **manifest,
        "version": ARTIFACT_VERSION,
        "files": {name: _sha256(data) for name, data in files.items()},
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in {"manifest.json": _json(full), **files}.items():
            info = zipfile.ZipInfo(name, date_time=_TIMESTAMP)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return buffer.getvalue()


def unpack(blob: bytes, name: str = "") -> Artifact:
    """Read and check an artifact written by :func:`pack`.

    Args:
        blob: the artifact's bytes.
        name: the model's name, for error messages.

    Returns:
        The :class:`Artifact`.

    Raises:
        ArtifactInvalid: not a zip, an unknown version or format, a missing or extra file, a
            file whose SHA-256 is not the manifest's.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(blob)) as archive:
            contents = {info.filename: archive.read(info) for info in archive.infolist()}
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as exc:
        raise ArtifactInvalid(name, f"it is not a zip archive ({exc})") from exc
    try:
        manifest = json.loads(contents["manifest.json"])
    except (KeyError, ValueError) as exc:
        raise ArtifactInvalid(name, "it has no readable manifest.json") from exc
    if not isinstance(manifest, dict) or manifest.get("version") != ARTIFACT_VERSION:
        version = manifest.get("version") if isinstance(manifest, dict) else None
        raise ArtifactInvalid(name, f"unknown artifact version {version!r}")
    missing = [key for key in _REQUIRED if key not in manifest]
    if missing:
        raise ArtifactInvalid(name, f"its manifest lacks {', '.join(missing)}")
    format_ = manifest["format"]
    if format_ not in MODEL_FILES:
        raise ArtifactInvalid(
            name, f"unknown model format {format_!r}; known: {', '.join(MODEL_FILES)}"
        )
    if manifest["task"] not in TASKS:
        raise ArtifactInvalid(name, f"unknown task {manifest['task']!r}")
    expected = {"manifest.json", "preprocess.json", MODEL_FILES[format_]}
    if set(contents) != expected or set(manifest["files"]) != expected - {"manifest.json"}:
        raise ArtifactInvalid(name, f"it holds {sorted(contents)}, expected {sorted(expected)}")
    for file, digest in manifest["files"].items():
        if _sha256(contents[file]) != digest:
            raise ArtifactInvalid(name, f"{file} does not match its SHA-256 in the manifest")
    try:
        preprocess = json.loads(contents["preprocess.json"])
    except ValueError as exc:
        raise ArtifactInvalid(name, "preprocess.json is not JSON") from exc
    return Artifact(manifest, preprocess, contents[MODEL_FILES[format_]])
