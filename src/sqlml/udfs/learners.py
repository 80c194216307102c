"""The learners: LightGBM and scikit-learn fitted on the preprocessed matrices.

Each ``train_*`` function fits its learner on the training matrix and returns the model's
bytes (a LightGBM model string, or ONNX for scikit-learn), the effective hyperparameters
and the holdout's scores (class probabilities for classification);
:func:`check_hyperparameters` validates the options' hyperparameters first.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from sqlml.errors import TrainingError
from sqlml.udfs import preprocess
from sqlml.udfs.options import Options, lightgbm_params, sklearn_params

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``.

Stages, in order: ``drop_null_target`` (only when rows are dropped: dropped of all rows),
``preprocess``, ``train`` (LightGBM: once per boosting round), ``evaluate``, ``package``.
:func:`~sqlml.udfs.train.train` reports them; the learners here report ``train``.
"""


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
    try:
        dataset = lgb.Dataset(
            x_train, label=y_train, categorical_feature=preprocessor.categorical_indices
        )
        booster = lgb.train(params, dataset, num_boost_round=rounds, callbacks=[callback])
    except (lgb.basic.LightGBMError, ValueError, TypeError) as exc:
        raise TrainingError(name, f"LightGBM failed: {exc}") from exc
    scores = np.asarray(booster.predict(x_test))
    if task == "classification" and k == 2:
        scores = np.column_stack([1.0 - scores, scores])
    effective = {**params, "num_iterations": rounds}
    return booster.model_to_string().encode(), _json_safe(effective), scores


def _estimator(algorithm: str, task: str) -> Any:
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
    from sklearn.linear_model import LinearRegression, LogisticRegression

    if algorithm == "linear":
        return LinearRegression()
    if algorithm == "logistic":
        return LogisticRegression(max_iter=1000)
    if task == "classification":
        return RandomForestClassifier(n_jobs=-1)
    return RandomForestRegressor(n_jobs=-1)


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
    """Fit a scikit-learn estimator, score the holdout, and convert the model to ONNX."""
    estimator = _estimator(algorithm, task)
    estimator.set_params(**hyperparameters)
    if "random_state" in estimator.get_params():
        estimator.set_params(random_state=seed)
    report("train", 0, 1)
    try:
        estimator.fit(x_train, y_train)
    except (ValueError, TypeError) as exc:
        raise TrainingError(name, f"scikit-learn failed: {exc}") from exc
    report("train", 1, 1)
    effective = _json_safe(estimator.get_params())
    if "n_jobs" in effective:
        # Forests sum their trees' outputs in thread order; score in one thread so the
        # metrics are reproducible to the last bit.
        estimator.set_params(n_jobs=1)
    if task == "classification":
        scores = estimator.predict_proba(x_test)
    else:
        scores = estimator.predict(x_test)
    model = _to_onnx(estimator, x_train.shape[1], double=algorithm != "random_forest")
    return model, effective, scores


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
