"""The checker process: load a model file and score with it, so that a crash happens here.

Run as a script by :mod:`sqlml.udfs.checker`, never imported by sqlml itself::

    python -P _probe.py lightgbm WIDTH          < model.txt
    python -P _probe.py onnx WIDTH double|float < model.onnx

It imports neither sqlml nor anything LightGBM can do without, so it starts in a fraction
of a second, and does what sqlml does with a loaded model's native library: LightGBM
parses the model, predicts two rows (all missing, all zero), computes both feature
importances and dumps the trees; ONNX Runtime builds a session and runs it on two rows.
It exits 0 when all went well; a Python error exits 1 with its traceback on stderr; a
native crash ends it by a signal, which the parent reports.
"""

from __future__ import annotations

import sys


def _lightgbm(model: bytes, width: int) -> None:
    # LightGBM's compatibility module imports these when they are installed, for features
    # (pandas input, scikit-learn estimators, plotting) the check does not use; keeping
    # them out saves about a second per check.
    for optional in ("sklearn", "pandas", "dask", "matplotlib", "graphviz", "pyarrow", "cffi"):
        sys.modules.setdefault(optional, None)  # type: ignore[arg-type]
    import lightgbm as lgb
    import numpy as np

    booster = lgb.Booster(model_str=model.decode())
    rows = np.full((2, width), np.nan)
    rows[1] = 0.0
    booster.predict(rows)
    booster.feature_importance(importance_type="split")
    booster.feature_importance(importance_type="gain")
    booster.dump_model()


def _onnx(model: bytes, width: int, input_type: str) -> None:
    import numpy as np
    import onnxruntime as ort

    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    rows = np.zeros((2, width), dtype=np.float32 if input_type == "float" else np.float64)
    session.run(None, {session.get_inputs()[0].name: rows})


def main(argv: list[str]) -> int:
    """Check the model file on stdin; see the module's docstring for the arguments."""
    model = sys.stdin.buffer.read()
    format_, width = argv[0], int(argv[1])
    if format_ == "lightgbm":
        _lightgbm(model, width)
    else:
        _onnx(model, width, argv[2])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
