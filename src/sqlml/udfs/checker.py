"""Load each new artifact in a throwaway process first, so a native crash kills only that.

:mod:`sqlml.udfs.validate` refuses every malformed artifact it knows how to describe, but
LightGBM and ONNX Runtime are large native libraries: a file that passes every check might
still crash them. So the first time a process loads an artifact (by its SHA-256), a child
process loads the model file and scores two rows with it (see :mod:`sqlml.udfs._probe`);
only when the child exits cleanly does this process load it. The verdict is kept for the
life of the process, good or bad, so the check is paid once per artifact per process
(about half a second for a LightGBM model of a megabyte, a fifth of one for ONNX). An
artifact this process packed itself (a model it has just trained) needs no check.

The child is fed the model file's bytes on stdin; nothing is pickled.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from sqlml.errors import ArtifactCrashed
from sqlml.udfs import artifact

#: Seconds the checker process may take before the artifact is refused.
CHECK_TIMEOUT = 60.0
_PROBE = Path(__file__).with_name("_probe.py")

#: SHA-256 -> None (the artifact loads) or why it was refused: (file, reason, signal).
_verdicts: dict[str, tuple[str, str, str | None] | None] = {}
_locks: dict[str, threading.Lock] = {}
_lock = threading.Lock()


def check_once(blob: bytes, unpacked: artifact.Artifact, ref: str) -> None:
    """Check an artifact in a child process unless this process already has (or packed it).

    Args:
        blob: the artifact's bytes (its SHA-256 keys the verdict).
        unpacked: the artifact, already read and validated.
        ref: the model reference, for messages.

    Raises:
        ArtifactCrashed: the child died by a signal, failed or ran out of time, now or the
            first time this artifact was checked.
    """
    sha256 = hashlib.sha256(blob).hexdigest()
    if artifact.packed_here(sha256):
        return
    with _lock:
        lock = _locks.setdefault(sha256, threading.Lock())
    with lock:  # two threads loading the same new artifact run one check
        if sha256 not in _verdicts:
            try:
                probe(unpacked, ref)
            except ArtifactCrashed as exc:
                _verdicts[sha256] = (exc.file, exc.reason, exc.signal)
            else:
                _verdicts[sha256] = None
        verdict = _verdicts[sha256]
    if verdict is not None:
        raise ArtifactCrashed(ref, *verdict)


def probe(unpacked: artifact.Artifact, ref: str, timeout: float = CHECK_TIMEOUT) -> None:
    """Load and score an artifact's model file in a child process, whatever it holds.

    Unlike :func:`check_once` this always runs the child and keeps no verdict. The
    artifact is not validated here: :func:`sqlml.udfs.artifact.unpack` has done that.

    Args:
        unpacked: the artifact.
        ref: the model reference, for messages.
        timeout: seconds the child may take.

    Raises:
        ArtifactCrashed: the child died by a signal, exited with an error or timed out.
    """
    from sqlml.udfs.preprocess import Preprocessor

    file = artifact.MODEL_FILES[unpacked.format]
    width = Preprocessor(unpacked.preprocess).width
    command = [sys.executable, "-P", str(_PROBE), unpacked.format, str(width)]
    if unpacked.format == "onnx":
        command.append(str(unpacked.manifest["onnx_input"]))
    # One thread is plenty for two rows, and starts faster.
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop(artifact.SIGNING_KEY_ENV, None)
    try:
        done = subprocess.run(
            command, input=unpacked.model, capture_output=True, timeout=timeout, env=env
        )
    except subprocess.TimeoutExpired as exc:
        raise ArtifactCrashed(ref, file, f"did not finish within {timeout:g} s") from exc
    except OSError as exc:
        raise ArtifactCrashed(ref, file, f"could not be checked: {exc}") from exc
    if done.returncode < 0:
        name = _signal_name(-done.returncode)
        raise ArtifactCrashed(ref, file, f"killed it with {name}", name)
    if done.returncode:
        lines = done.stderr.decode(errors="replace").strip().splitlines()
        last = lines[-1] if lines else f"exit status {done.returncode}"
        raise ArtifactCrashed(ref, file, f"failed in it ({last[:300]})")


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
