"""The learners: LightGBM and scikit-learn fitted on the preprocessed matrices.

Each ``train_*`` function fits its learner on the training matrix and returns the model's
bytes (a LightGBM model string, or ONNX for scikit-learn), the effective hyperparameters
and the holdout's scores (class probabilities for classification);
:func:`check_hyperparameters` validates the options' hyperparameters first.

What LightGBM prints goes to the ``sqlml.lightgbm`` logger, not to the process's stdout or
stderr: its messages through :func:`lightgbm.register_logger`, and its ``[Fatal]`` lines
(which the native library writes straight to file descriptor 2) by
:func:`native_stderr_to_log` while LightGBM runs.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np

from sqlml.errors import InvalidOption, TrainingError
from sqlml.udfs import preprocess
from sqlml.udfs.options import Options, lightgbm_params, sklearn_params

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``.

Stages, in order: ``drop_null_target`` (only when rows are dropped: dropped of all rows),
``classification_inferred`` (only when an integer target's few distinct values make the
task classification: distinct values of labelled rows), ``preprocess``,
``high_cardinality`` (once per text feature with very many distinct values: its distinct
values of the training rows), ``train`` (LightGBM: once per boosting round; a random
forest: as its trees grow), ``convert`` (scikit-learn models: the conversion to ONNX),
``evaluate`` (the holdout's metrics; not reported when ``test_size = 0``), ``package``.
:func:`~sqlml.udfs.train.train` reports them; the learners here report ``train`` and
``convert``. The notices (``drop_null_target``, ``classification_inferred``,
``high_cardinality``) are also logged, with their full message, on the ``sqlml.train``
logger.
"""

#: The defaults sqlml gives scikit-learn's random forests (a hyperparameter given in the
#: options wins). scikit-learn's own defaults grow every tree until its leaves are pure:
#: on tens of thousands of rows that is slow, the trees fit the noise, and the ONNX model
#: holds every node. Bounded trees, a share of the features tried at each split, all the
#: cores and a moderate number of trees keep training fast, the stored model small and the
#: holdout scores better on noisy data.
RANDOM_FOREST_DEFAULTS: dict[str, dict[str, object]] = {
    "classification": {
        "n_estimators": 100,
        "max_depth": 12,
        "min_samples_leaf": 2,
        "max_features": "sqrt",
        "n_jobs": -1,
    },
    "regression": {
        "n_estimators": 100,
        "max_depth": 12,
        "min_samples_leaf": 5,
        "max_features": 1 / 3,
        "n_jobs": -1,
    },
}

#: How many times a random forest's fit reports progress (it grows its trees in as many
#: batches, which gives the same trees as growing them at once).
_FOREST_BATCHES = 10


def check_hyperparameters(opts: Options, task: str) -> dict[str, object]:
    """The options' hyperparameters, checked against the algorithm's learner."""
    if opts.algorithm == "lightgbm":
        return lightgbm_params(opts.hyperparameters, task)
    return sklearn_params(_estimator(opts.algorithm, task), opts.hyperparameters)


def train_lightgbm(
    name: str,
    preprocessor: preprocess.Preprocessor,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    task: str,
    k: int,
    seed: int,
    hyperparameters: Mapping[str, object],
    report: Progress,
) -> tuple[bytes, dict[str, Any], np.ndarray]:
    """Fit a LightGBM booster, reporting each boosting round, and score the holdout."""
    import lightgbm as lgb

    params: dict[str, Any] = {"verbosity": -1, "seed": seed, "deterministic": True}
    if not hyperparameters.get("force_row_wise"):
        # LightGBM otherwise picks row- or column-wise histograms by timing them.
        params["force_col_wise"] = True
    if task == "regression":
        params["objective"] = "regression"
    elif k == 2:
        params["objective"] = "binary"
    else:
        params.update(objective="multiclass", num_class=k)
    params.update(hyperparameters)
    rounds = int(params.pop("num_iterations", 100))

    def callback(env: Any) -> None:
        report("train", env.iteration - env.begin_iteration + 1, rounds)

    report("train", 0, rounds)
    _log_lightgbm()
    try:
        with native_stderr_to_log():
            dataset = lgb.Dataset(
                x_train, label=y_train, categorical_feature=preprocessor.categorical_indices
            )
            booster = lgb.train(params, dataset, num_boost_round=rounds, callbacks=[callback])
    except (lgb.basic.LightGBMError, ValueError, TypeError) as exc:
        raise _lightgbm_error(name, hyperparameters, exc) from exc
    # No holdout (test_size = 0): nothing to score.
    scores = np.asarray(booster.predict(x_test)) if len(x_test) else np.empty((0,))
    if task == "classification" and k == 2:
        scores = np.column_stack([1.0 - scores, scores])
    effective = {**params, "num_iterations": rounds}
    return booster.model_to_string().encode(), _json_safe(effective), scores


def _lightgbm_error(name: str, hyperparameters: Mapping[str, object], exc: Exception) -> Exception:
    """LightGBM's error as an :class:`InvalidOption` when it names a parameter or its
    value (``Unknown boosting type xx``), else as a :class:`TrainingError`."""
    message = " ".join(str(exc).split())
    for option, value in hyperparameters.items():
        text = str(value)
        if re.search(rf"\b{re.escape(option)}\b", message) or (
            isinstance(value, str) and text and re.search(rf"\b{re.escape(text)}\b", message)
        ):
            return InvalidOption(option, f"LightGBM does not accept {value!r}: {message}")
    return TrainingError(name, f"LightGBM failed: {message}")


lightgbm_log = logging.getLogger("sqlml.lightgbm")
# Without a handler configured anywhere, Python would print warnings to stderr.
lightgbm_log.addHandler(logging.NullHandler())

_LEVELS = {
    "Fatal": logging.INFO,  # the error raised for it carries the message too
    "Warning": logging.WARNING,
    "Info": logging.INFO,
    "Debug": logging.DEBUG,
}
_LEVEL_TAG = re.compile(r"^\[LightGBM\] \[(\w+)\]")


def _level(line: str) -> int:
    found = _LEVEL_TAG.match(line)
    return _LEVELS.get(found.group(1), logging.INFO) if found else logging.INFO


class _LightGBMLogger:
    """What :func:`lightgbm.register_logger` is given: LightGBM's messages, each at the
    level its ``[LightGBM] [Level]`` tag names, on the ``sqlml.lightgbm`` logger."""

    def info(self, message: str) -> None:
        message = message.rstrip()
        if message:
            lightgbm_log.log(_level(message), "%s", message)

    def warning(self, message: str) -> None:
        lightgbm_log.warning("%s", message.rstrip())


_registered = False


def _log_lightgbm() -> None:
    global _registered
    if not _registered:
        import lightgbm as lgb

        lgb.register_logger(_LightGBMLogger())
        _registered = True


class _StderrRoute:
    """File descriptor 2 pointed at a pipe, and the thread reading it (see
    :func:`native_stderr_to_log`)."""

    def __init__(self) -> None:
        _flush_stderr()
        self.saved = os.dup(2)
        read, write = os.pipe()
        os.dup2(write, 2)
        os.close(write)
        #: Lines this route logged: one read back (a handler printing to stderr) is
        #: passed on to the real stderr, not logged again.
        self.logged: deque[bytes] = deque(maxlen=64)
        self.reader = threading.Thread(
            target=self._read, args=(read,), name="sqlml-native-stderr", daemon=True
        )
        self.reader.start()

    def _read(self, fd: int) -> None:
        """Pass what arrives on as it comes (a progress bar redrawn with ``\\r`` and no
        newline included); hold back only what is, or may begin, a LightGBM line."""
        pending = b""
        with os.fdopen(fd, "rb", buffering=0) as pipe:
            while chunk := pipe.read(65536):
                pending = self._drain(pending + chunk)
        if pending:
            self._line(pending)

    def _drain(self, pending: bytes) -> bytes:
        """Write or log what of ``pending`` is complete; return the rest."""
        while pending:
            start = pending.find(_LIGHTGBM)
            if start != 0:  # not LightGBM's: up to where one of its lines begins, or may
                cut = start if start > 0 else len(pending) - _partial(pending)
                if cut == 0:
                    break
                os.write(self.saved, pending[:cut])
                pending = pending[cut:]
                continue
            end = _line_end(pending)
            if end < 0:
                break  # a LightGBM line still arriving
            self._line(pending[: end + 1])
            pending = pending[end + 1 :]
        return pending

    def _line(self, raw: bytes) -> None:
        line = raw.rstrip(b"\r\n")
        if line.startswith(_LIGHTGBM) and line not in self.logged:
            self.logged.append(line)
            text = line.decode("utf-8", "replace")
            lightgbm_log.log(_level(text), "%s", text)
        else:
            os.write(self.saved, raw)

    def close(self) -> None:
        _flush_stderr()
        os.dup2(self.saved, 2)  # closes the pipe's last write end: the reader sees EOF
        self.reader.join()
        os.close(self.saved)


_LIGHTGBM = b"[LightGBM]"


def _line_end(data: bytes) -> int:
    """The position of the first line end (``\\n`` or ``\\r``) in ``data``, or -1."""
    ends = [i for i in (data.find(b"\n"), data.find(b"\r")) if i >= 0]
    return min(ends) if ends else -1


def _partial(data: bytes) -> int:
    """How many of ``data``'s last bytes may be the beginning of ``[LightGBM]``."""
    for size in range(min(len(_LIGHTGBM) - 1, len(data)), 0, -1):
        if data.endswith(_LIGHTGBM[:size]):
            return size
    return 0


def _flush_stderr() -> None:
    if sys.stderr is not None:
        sys.stderr.flush()


_route_lock = threading.Lock()
_route: _StderrRoute | None = None
_route_users = 0


@contextmanager
def native_stderr_to_log() -> Iterator[None]:
    """While the block runs, LightGBM's lines written to file descriptor 2 (its
    ``[Fatal]`` messages) go to the ``sqlml.lightgbm`` logger; anything else written there,
    by any thread, goes on to the real stderr as it comes. Blocks may overlap across
    threads: the first to enter routes the descriptor, the last to leave restores it."""
    global _route, _route_users
    with _route_lock:
        if _route_users == 0:
            try:
                _route = _StderrRoute()
            except OSError:  # no descriptor 2 to route
                _route = None
        _route_users += 1
    try:
        yield
    finally:
        with _route_lock:
            _route_users -= 1
            if _route_users == 0 and _route is not None:
                _route.close()
                _route = None


def _estimator(algorithm: str, task: str) -> Any:
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
    from sklearn.linear_model import LinearRegression, LogisticRegression

    if algorithm == "linear":
        return LinearRegression()
    if algorithm == "logistic":
        return LogisticRegression(max_iter=1000)
    forest = RandomForestClassifier if task == "classification" else RandomForestRegressor
    return forest(**RANDOM_FOREST_DEFAULTS[task])


def train_sklearn(
    name: str,
    algorithm: str,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    task: str,
    seed: int,
    hyperparameters: Mapping[str, object],
    report: Progress,
) -> tuple[bytes, dict[str, Any], np.ndarray]:
    """Fit a scikit-learn estimator, score the holdout, and convert the model to ONNX.

    Reports ``train`` while fitting (a random forest after each batch of trees) and
    ``convert`` around the conversion to ONNX.
    """
    estimator = _estimator(algorithm, task)
    estimator.set_params(**hyperparameters)
    if "random_state" in estimator.get_params():
        estimator.set_params(random_state=seed)
    effective = _json_safe(estimator.get_params())
    # Values near the float64 limits overflow inside the solvers; the fit still stands (or
    # fails below), so NumPy's floating-point warnings are not printed.
    with np.errstate(all="ignore"):
        try:
            if algorithm == "random_forest":
                _fit_forest(estimator, x_train, y_train, report)
            else:
                report("train", 0, 1)
                estimator.fit(x_train, y_train)
                report("train", 1, 1)
        except (ValueError, TypeError) as exc:
            raise TrainingError(name, f"scikit-learn failed: {exc}") from exc
        if "n_jobs" in effective:
            # Forests sum their trees' outputs in thread order; score in one thread so the
            # metrics are reproducible to the last bit.
            estimator.set_params(n_jobs=1)
        if not len(x_test):  # no holdout (test_size = 0)
            scores = np.empty((0,))
        elif task == "classification":
            scores = estimator.predict_proba(x_test)
        else:
            scores = estimator.predict(x_test)
    report("convert", 0, 1)
    model = _to_onnx(estimator, x_train.shape[1], double=algorithm != "random_forest")
    report("convert", 1, 1)
    return model, effective, scores


def _fit_forest(estimator: Any, x: np.ndarray, y: np.ndarray, report: Progress) -> None:
    """Grow a random forest's trees in batches, reporting the trees grown after each.

    With ``warm_start`` each fit adds trees to the ones already grown, and scikit-learn
    draws each tree's seed as a single fit would, so the forest is the same tree for tree.
    """
    trees = int(estimator.get_params()["n_estimators"])
    warm_start = estimator.get_params()["warm_start"]
    estimator.set_params(warm_start=True)
    report("train", 0, trees)
    grown = 0
    try:
        for batch in range(1, _FOREST_BATCHES + 1):
            size = trees * batch // _FOREST_BATCHES
            if size > grown:
                estimator.set_params(n_estimators=size)
                estimator.fit(x, y)
                grown = size
                report("train", grown, trees)
    finally:
        estimator.set_params(warm_start=warm_start, n_estimators=trees)


def _to_onnx(estimator: Any, width: int, *, double: bool) -> bytes:
    """Convert a fitted estimator to ONNX.

    Linear and logistic models take float64 input and match scikit-learn to ~1e-15. Random
    forests take float32 (scikit-learn's trees compare float32 too, and ONNX Runtime's tree
    ensembles output float32), so their outputs match to ~1e-7.
    """
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    tensor = DoubleTensorType if double else FloatTensorType
    options = {id(estimator): {"zipmap": False}} if hasattr(estimator, "predict_proba") else None
    onx = convert_sklearn(
        estimator,
        initial_types=[("input", tensor([None, width]))],
        options=options,
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    onx.graph.name = "sqlml"  # skl2onnx names the graph with a random UUID
    return bytes(onx.SerializeToString())


def _json_safe(params: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in sorted(params.items()):
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            value = str(value)
        out[key] = value
    return out
