"""Train a model on an Arrow table: the body of CREATE MODEL ... AS SELECT.

:func:`train` checks the options, drops rows whose target is NULL, holds out ``test_size``
of the rows (stratified for classification), fits the preprocessing and the learner on the
rest, scores the holdout, and packs the artifact. The same data and options always give
byte-identical artifacts.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sqlml._version import __version__
from sqlml.catalog.entities import Label, VersionSpec
from sqlml.errors import InvalidOption, TrainingError, UnsupportedColumnType
from sqlml.udfs import artifact, metrics, preprocess
from sqlml.udfs.options import (
    Options,
    check_algorithm,
    lightgbm_params,
    parse_options,
    sklearn_params,
)

logger = logging.getLogger("sqlml.train")

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``.

Stages, in order: ``drop_null_target`` (only when rows are dropped: dropped of all rows),
``preprocess``, ``train`` (LightGBM: once per boosting round), ``evaluate``, ``package``.
"""

_FINGERPRINT_WINDOW = 1 << 16
_LIBRARIES = ("lightgbm", "numpy", "onnxruntime", "pyarrow", "scikit-learn", "skl2onnx")


@dataclass(frozen=True, slots=True)
class TrainedModel:
    """A trained model, ready to register in the catalog.

    Attributes:
        spec: what the catalog records about the version.
        artifact: the model blob (see :mod:`sqlml.udfs.artifact`); load it with
            :func:`sqlml.udfs.predict.load_model`.
    """

    spec: VersionSpec
    artifact: bytes


def train(
    table: pa.Table,
    *,
    name: str,
    options: Mapping[str, object],
    training_sql: str = "",
    progress: Progress | None = None,
) -> TrainedModel:
    """Train a model on ``table``.

    Args:
        table: the training data: the target column and the feature columns.
        name: the model's name, for messages.
        options: CREATE MODEL options (see :mod:`sqlml.udfs.options`), names
            case-insensitive: ``target`` (required), ``task``, ``algorithm``, ``exclude``,
            ``test_size``, ``seed`` and the learner's hyperparameters.
        training_sql: the SELECT the data came from, recorded as lineage.
        progress: called as ``progress(stage, done, total)`` while training.

    Returns:
        The :class:`TrainedModel`: the version's spec and its artifact.

    Raises:
        InvalidOption: a missing, unknown or bad option.
        UnsupportedColumnType: a feature or the target has a type sqlml cannot use.
        TrainingError: the data cannot be trained on (no rows, one class, no features...).
    """
    report = progress or (lambda stage, done, total: None)
    opts = parse_options(options)
    target = _resolve(table, opts.target, "target")
    excluded = {_resolve(table, column, "exclude") for column in opts.exclude}
    target_type = table.schema.field(target).type
    task = opts.task or _infer_task(target, target_type)
    check_algorithm(opts.algorithm, task)
    _check_target_type(target, target_type, task)
    feature_names = [c for c in table.column_names if c != target and c not in excluded]
    if not feature_names:
        raise TrainingError(
            name, f"no feature columns are left after the target {target!r} and exclude"
        )
    for column in feature_names:
        type_ = table.schema.field(column).type
        if preprocess.kind_of(type_) is None:
            raise UnsupportedColumnType(column, str(type_))
    hyperparameters = _check_hyperparameters(opts, task)

    fingerprint = data_fingerprint(table)
    if table.num_rows == 0:
        raise TrainingError(name, "the training data has no rows")
    labelled = pc.is_valid(table.column(target))
    dropped = table.num_rows - pc.sum(labelled).as_py()
    if dropped == table.num_rows:
        raise TrainingError(
            name,
            f"the target column {target!r} is NULL in every row; there is nothing to learn",
        )
    if dropped:
        logger.info("model %s: dropped %d rows whose target %r is NULL", name, dropped, target)
        report("drop_null_target", dropped, table.num_rows)
        table = table.filter(labelled)

    y, classes = _encode_target(table.column(target), task)
    if task == "classification" and len(classes) < 2:
        raise TrainingError(
            name,
            f"the target {target!r} has a single class ({classes[0]!r}); "
            "classification needs at least two",
        )
    train_rows, test_rows = _split(name, y, len(classes), task, opts)

    report("preprocess", 0, 1)
    features = table.select(feature_names)
    encoding = "codes" if opts.algorithm == "lightgbm" else "onehot"
    # Each split is built straight into its own Fortran-ordered matrix, which LightGBM
    # reads without a copy; gathering rows out of one big matrix would copy twice.
    train_part, test_part = features.take(train_rows), features.take(test_rows)
    preprocessor = preprocess.fit(train_part, encoding=encoding)
    x_train = preprocessor.transform(
        dict(zip(feature_names, train_part.columns, strict=True)), len(train_rows)
    )
    x_test = preprocessor.transform(
        dict(zip(feature_names, test_part.columns, strict=True)), len(test_rows)
    )
    report("preprocess", 1, 1)
    logger.info(
        "model %s: %s %s on %d rows (%d held out), %d features -> %d columns",
        name, opts.algorithm, task, len(train_rows), len(test_rows), len(feature_names),
        x_train.shape[1],
    )  # fmt: skip

    manifest: dict[str, Any] = {
        "algorithm": opts.algorithm,
        "task": task,
        "target": target,
        "target_type": "double" if task == "regression" else preprocess.type_text(target_type),
        "classes": list(classes),
    }
    k = len(classes)
    if opts.algorithm == "lightgbm":
        model, effective, scores = _train_lightgbm(
            name, preprocessor, x_train, y[train_rows], x_test, task, k, opts.seed,
            hyperparameters, report,
        )  # fmt: skip
        manifest["format"] = "lightgbm"
    else:
        model, effective, scores = _train_sklearn(
            name, opts.algorithm, x_train, y[train_rows], x_test, task, opts.seed,
            hyperparameters, report,
        )  # fmt: skip
        manifest["format"] = "onnx"
        manifest["onnx_input"] = "double" if opts.algorithm != "random_forest" else "float"

    report("evaluate", 0, 1)
    if task == "classification":
        holdout = metrics.classification_metrics(y[test_rows], scores)
    else:
        holdout = metrics.regression_metrics(y[test_rows], scores)
    report("evaluate", 1, 1)
    logger.info("model %s: holdout %s", name, holdout)

    report("package", 0, 1)
    blob = artifact.pack(manifest, preprocessor.to_json(), model)
    report("package", 1, 1)
    spec = VersionSpec(
        algorithm=opts.algorithm,
        task=task,
        target=target,
        features=preprocessor.features,
        artifact_format=manifest["format"],
        classes=classes,
        hyperparameters=effective,
        metrics=holdout,
        training_sql=training_sql,
        row_count=table.num_rows,
        data_fingerprint=fingerprint,
        library_versions=library_versions(),
    )
    return TrainedModel(spec, blob)


def _resolve(table: pa.Table, column: str, option: str) -> str:
    """The table's column called ``column``: exactly, else the one case-insensitive match."""
    if column in table.column_names:
        return column
    matches = [c for c in table.column_names if c.lower() == column.lower()]
    if len(matches) == 1:
        return str(matches[0])
    raise InvalidOption(
        option,
        f"there is no column {column!r}; the columns are {', '.join(table.column_names)}",
    )


def _infer_task(target: str, type_: pa.DataType) -> str:
    if pa.types.is_integer(type_):
        raise InvalidOption(
            "task",
            f"the target {target!r} is an integer column ({type_}), which can be classes or "
            "a quantity: set task = 'classification' or task = 'regression'",
        )
    if pa.types.is_floating(type_) or pa.types.is_decimal(type_):
        return "regression"
    if preprocess.kind_of(type_) in (preprocess.CATEGORY, preprocess.BOOL):
        return "classification"
    raise UnsupportedColumnType(target, str(type_), "a target must be a number, string or bool")


def _check_target_type(target: str, type_: pa.DataType, task: str) -> None:
    kind = preprocess.kind_of(type_)
    if task == "regression" and kind != preprocess.NUMERIC:
        raise UnsupportedColumnType(
            target, str(type_), "a regression target must be numeric; use task = 'classification'"
        )
    if task == "classification" and (
        kind not in (preprocess.NUMERIC, preprocess.BOOL, preprocess.CATEGORY)
        or pa.types.is_decimal(type_)
    ):
        raise UnsupportedColumnType(
            target,
            str(type_),
            "a classification target must be a string, bool, integer or float; cast it",
        )


def _check_hyperparameters(opts: Options, task: str) -> dict[str, object]:
    if opts.algorithm == "lightgbm":
        return lightgbm_params(opts.hyperparameters, task)
    return sklearn_params(_estimator(opts.algorithm, task), opts.hyperparameters)


def _encode_target(column: pa.ChunkedArray, task: str) -> tuple[np.ndarray, tuple[Label, ...]]:
    """Regression: the float64 values. Classification: codes 0..k-1 and the sorted labels."""
    if task == "regression":
        return pc.cast(column, pa.float64()).to_numpy(), ()
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    labels = pc.unique(column).sort()
    codes = pc.index_in(column, value_set=labels).to_numpy()
    return codes.astype(np.int64), tuple(labels.to_pylist())


def _split(
    name: str, y: np.ndarray, k: int, task: str, opts: Options
) -> tuple[np.ndarray, np.ndarray]:
    """Row positions of the training and holdout sets (stratified when possible)."""
    from sklearn.model_selection import train_test_split

    n = len(y)
    stratify = None
    if task == "classification":
        n_test = math.ceil(opts.test_size * n)
        if np.bincount(y, minlength=k).min() >= 2 and n_test >= k and n - n_test >= k:
            stratify = y
    try:
        train_rows, test_rows = train_test_split(
            np.arange(n), test_size=opts.test_size, random_state=opts.seed, stratify=stratify
        )
    except ValueError as exc:
        raise TrainingError(
            name, f"{n} rows are too few to hold out test_size = {opts.test_size}: {exc}"
        ) from exc
    if task == "classification" and np.unique(y[train_rows]).size < k:
        raise TrainingError(
            name, "some classes have too few rows to appear in the training split; "
            "add rows or lower test_size",
        )  # fmt: skip
    return np.sort(train_rows), np.sort(test_rows)


def _train_lightgbm(
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


def _train_sklearn(
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


class _HashSink:
    """A write-only file that feeds what is written to SHA-256."""

    def __init__(self) -> None:
        self.hash = hashlib.sha256()
        self.closed = False

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def data_fingerprint(table: pa.Table) -> str:
    """SHA-256 (hex) of ``table`` written as an Arrow IPC stream.

    The table is written in fixed windows of rows, so the fingerprint does not depend on how
    the rows happen to be chunked; schema metadata is left out, dictionaries are decoded, and
    NULL slots are zeroed, so the bytes a source leaves behind a NULL do not count. About
    60 ms per 100 MB.
    """
    table = _logical(table.replace_schema_metadata(None))
    sink = _HashSink()
    with pa.ipc.new_stream(pa.PythonFile(sink, mode="w"), table.schema) as writer:
        for start in range(0, table.num_rows, _FINGERPRINT_WINDOW):
            writer.write_table(table.slice(start, _FINGERPRINT_WINDOW).combine_chunks())
    return sink.hash.hexdigest()


def _logical(table: pa.Table) -> pa.Table:
    """``table`` with only its values left to tell it apart (see :func:`data_fingerprint`):
    a column with NULLs becomes its validity and its values with NULLs zeroed."""
    names: list[str] = []
    columns: list[pa.ChunkedArray] = []
    for name, column in zip(table.column_names, table.columns, strict=True):
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        if column.null_count:
            try:
                zero = pa.array([0], pa.int32()).cast(column.type)[0]
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                zero = None  # a type with no zero (lists, structs): hashed as stored
            if zero is not None:
                names.append(f"{name}\0valid")
                columns.append(pc.is_valid(column))
                column = pc.fill_null(column, zero)
        names.append(name)
        columns.append(column)
    return pa.table(columns, names=names)


def library_versions() -> dict[str, str]:
    """The versions of the libraries a model's behaviour depends on."""
    versions = {"sqlml": __version__}
    for library in _LIBRARIES:
        try:
            versions[library] = importlib.metadata.version(library)
        except importlib.metadata.PackageNotFoundError:
            versions[library] = "not installed"
    return versions
