"""The model artifact: one reproducible zip blob that loading never executes.

Layout::

    manifest.json    format, task, target and its Arrow type, classes, SHA-256 of each file
    preprocess.json  the fitted preprocessing spec (see :mod:`sqlml.udfs.preprocess`)
    model.txt        LightGBM's own text model (format "lightgbm"), or
    model.onnx       an ONNX graph (format "onnx", scikit-learn models via skl2onnx)

    signature        (when ``SQLML_SIGNING_KEY`` is set) HMAC-SHA256 of manifest.json, in hex

Entries have fixed timestamps and JSON is written with sorted keys, so the same model gives
the same bytes. Only JSON, LightGBM text and ONNX protobuf are read back; nothing is
unpickled, and :func:`unpack` checks every file's structure (:mod:`sqlml.udfs.validate`)
before anything else reads it.

When ``SQLML_SIGNING_KEY`` is set, :func:`pack` signs what it writes, and :func:`unpack`
refuses an artifact that is unsigned or signed with another key. The manifest holds the
SHA-256 of every other file, so its signature covers them all. A SHA-256 alone is a
checksum: anyone who can write to the catalog can recompute it.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import threading
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlml.errors import ArtifactInvalid, ArtifactRefused
from sqlml.udfs import validate

ARTIFACT_VERSION = 1
MODEL_FILES = {"lightgbm": "model.txt", "onnx": "model.onnx"}
TASKS = ("classification", "regression")
_REQUIRED = ("format", "task", "algorithm", "target", "target_type", "classes", "files")
_TIMESTAMP = (1980, 1, 1, 0, 0, 0)
SIGNATURE_FILE = "signature"
SIGNING_KEY_ENV = "SQLML_SIGNING_KEY"
"""The environment variable holding the key artifacts are signed and checked with."""
#: The largest file an artifact may hold once decompressed (a guard against zip bombs).
MAX_FILE_SIZE = 1 << 30

#: SHA-256 of the artifacts :func:`pack` wrote in this process (see :func:`packed_here`).
_packed: set[str] = set()
_packed_lock = threading.Lock()


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


def signing_key() -> bytes | None:
    """The key of ``SQLML_SIGNING_KEY`` (its UTF-8 bytes), or ``None`` when it is unset."""
    key = os.environ.get(SIGNING_KEY_ENV)
    return key.encode() if key else None


def sign(manifest: bytes, key: bytes) -> str:
    """The signature of a ``manifest.json``: its HMAC-SHA256 under ``key``, in hex."""
    return hmac.new(key, manifest, hashlib.sha256).hexdigest()


def packed_here(sha256: str) -> bool:
    """Whether :func:`pack` wrote the artifact of that SHA-256 in this process.

    Such an artifact holds a model this process has just trained, so loading it needs no
    checker process (see :mod:`sqlml.udfs.checker`).
    """
    with _packed_lock:
        return sha256 in _packed


def pack(manifest: Mapping[str, Any], preprocess: Mapping[str, Any], model: bytes) -> bytes:
    """Write an artifact.

    Args:
        manifest: the manifest without ``version`` and ``files`` (added here); its
            ``format`` says which model file ``model`` is.
        preprocess: the preprocessing spec.
        model: the model file's bytes.

    Returns:
        The zip archive's bytes, signed when ``SQLML_SIGNING_KEY`` is set.
    """
    files = {"preprocess.json": _json(preprocess), MODEL_FILES[manifest["format"]]: model}
    full = {
        **manifest,
        "version": ARTIFACT_VERSION,
        "files": {name: _sha256(data) for name, data in files.items()},
    }
    written = {"manifest.json": _json(full), **files}
    key = signing_key()
    if key is not None:
        written[SIGNATURE_FILE] = sign(written["manifest.json"], key).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in written.items():
            info = zipfile.ZipInfo(name, date_time=_TIMESTAMP)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    blob = buffer.getvalue()
    with _packed_lock:
        _packed.add(_sha256(blob))
    return blob


def unpack(blob: bytes, name: str = "") -> Artifact:
    """Read and check an artifact written by :func:`pack`.

    Args:
        blob: the artifact's bytes.
        name: the model's reference (``name@version``), for error messages.

    Returns:
        The :class:`Artifact`.

    Raises:
        ArtifactInvalid: not a zip, an unknown version or format, a missing or extra file, a
            file whose SHA-256 is not the manifest's.
        ArtifactRefused: a file is not shaped as sqlml writes it (see
            :mod:`sqlml.udfs.validate`), or ``SQLML_SIGNING_KEY`` is set and the artifact
            is unsigned or signed with another key.
    """
    contents = _read(blob, name)
    try:
        manifest = json.loads(contents["manifest.json"])
    except (KeyError, ValueError, RecursionError) as exc:
        raise ArtifactInvalid(name, "it has no readable manifest.json") from exc
    if not isinstance(manifest, dict) or manifest.get("version") != ARTIFACT_VERSION:
        version = manifest.get("version") if isinstance(manifest, dict) else None
        raise ArtifactInvalid(name, f"unknown artifact version {version!r}")
    missing = [key for key in _REQUIRED if key not in manifest]
    if missing:
        raise ArtifactInvalid(name, f"its manifest lacks {', '.join(missing)}")
    format_ = manifest["format"]
    if not isinstance(format_, str) or format_ not in MODEL_FILES:
        raise ArtifactInvalid(
            name, f"unknown model format {format_!r}; known: {', '.join(MODEL_FILES)}"
        )
    if manifest["task"] not in TASKS:
        raise ArtifactInvalid(name, f"unknown task {manifest['task']!r}")
    expected = {"manifest.json", "preprocess.json", MODEL_FILES[format_]}
    listed = manifest["files"]
    if (
        set(contents) - {SIGNATURE_FILE} != expected
        or not isinstance(listed, dict)
        or set(listed) != expected - {"manifest.json"}
    ):
        raise ArtifactInvalid(name, f"it holds {sorted(contents)}, expected {sorted(expected)}")
    _check_signature(contents, name)
    for file, digest in listed.items():
        if _sha256(contents[file]) != digest:
            raise ArtifactInvalid(name, f"{file} does not match its SHA-256 in the manifest")
    try:
        spec = json.loads(contents["preprocess.json"])
    except (ValueError, RecursionError) as exc:
        raise ArtifactInvalid(name, "preprocess.json is not JSON") from exc
    model = contents[MODEL_FILES[format_]]
    return Artifact(manifest, validate.check_artifact(manifest, spec, model, name), model)


def _read(blob: bytes, name: str) -> dict[str, bytes]:
    """The files of the zip archive, refusing duplicates and oversized files unread."""
    try:
        with zipfile.ZipFile(io.BytesIO(blob)) as archive:
            infos = archive.infolist()
            names = [info.filename for info in infos]
            if len(set(names)) != len(names) or len(names) > 4:
                raise ArtifactInvalid(name, f"it holds {sorted(names)}")
            for info in infos:
                if info.file_size > MAX_FILE_SIZE:
                    raise ArtifactRefused(
                        name, info.filename, f"it is larger than {MAX_FILE_SIZE} bytes"
                    )
            return {info.filename: archive.read(info) for info in infos}
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, zlib.error) as exc:
        raise ArtifactInvalid(name, f"it is not a zip archive ({exc})") from exc
    except (NotImplementedError, RuntimeError, ValueError) as exc:
        if isinstance(exc, ArtifactInvalid):
            raise
        raise ArtifactInvalid(name, f"its zip archive cannot be read ({exc})") from exc


def _check_signature(contents: Mapping[str, bytes], name: str) -> None:
    """With ``SQLML_SIGNING_KEY`` set, the artifact's signature must be the key's."""
    key = signing_key()
    if key is None:
        return
    signature = contents.get(SIGNATURE_FILE)
    if signature is None:
        raise ArtifactRefused(
            name,
            SIGNATURE_FILE,
            f"the artifact is unsigned, and {SIGNING_KEY_ENV} is set: only artifacts signed "
            "with that key are loaded",
        )
    if not hmac.compare_digest(signature, sign(contents["manifest.json"], key).encode()):
        raise ArtifactRefused(
            name,
            SIGNATURE_FILE,
            f"it does not match {SIGNING_KEY_ENV}: the artifact was signed with another key "
            "or changed after it was signed",
        )
