"""Train a model on an Arrow table: the body of CREATE MODEL ... AS SELECT.

:func:`train` checks the options, drops rows whose target is NULL, holds out ``test_size``
of the rows (stratified for classification), fits the preprocessing and the learner on the
rest, scores the holdout, and packs the artifact (``test_size = 0``: every row trains and
no metrics are recorded). The same data and options always give byte-identical artifacts.
What it decides on the user's behalf (rows dropped, a task inferred from an integer target,
a text feature that looks like an id) it reports as a progress stage and logs on the
``sqlml.train`` logger.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from sqlml.catalog.entities import VersionSpec
from sqlml.errors import InvalidOption, TrainingError, UnsupportedColumnType
from sqlml.udfs import artifact, metrics, preprocess
from sqlml.udfs.arrow_types import plain_table
from sqlml.udfs.learners import Progress, check_hyperparameters, train_lightgbm, train_sklearn
from sqlml.udfs.lineage import data_fingerprint, library_versions
from sqlml.udfs.options import ALGORITHMS, check_algorithm, parse_options
from sqlml.udfs.training_data import (
    check_finite_features,
    check_float32_range,
    check_target_type,
    check_target_values,
    check_unique_names,
    encode_target,
    high_cardinality,
    infer_task,
    resolve_column,
    split_rows,
)

__all__ = ["Progress", "TrainedModel", "data_fingerprint", "library_versions", "train"]

logger = logging.getLogger("sqlml.train")

#: ``extra`` of the log records that tell the user what training decided on their behalf:
#: the command line prints them (``note: ...``) as psql prints a server's notices.
NOTICE = {"sqlml_notice": True}


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
        DuplicateColumn: two columns have the same name.
        NonFiniteValues: the target holds NaN or infinite values.
        TrainingError: the data cannot be trained on (no rows, one class, no features...).
    """
    report = progress or (lambda stage, done, total: None)
    table = plain_table(table)
    opts = parse_options(options)
    check_unique_names(name, table)
    target = resolve_column(table, opts.target, "target")
    excluded = {resolve_column(table, column, "exclude") for column in opts.exclude}
    if target in excluded:
        raise InvalidOption(
            "exclude",
            f"names the target {target!r}; the target is never a feature, so leave it out "
            "of exclude",
        )
    target_type = table.schema.field(target).type
    task, inferred = (opts.task, "") if opts.task else infer_task(target, table.column(target))
    if inferred and task not in ALGORITHMS[opts.algorithm]:
        # An integer target can be either; the algorithm says which one is meant.
        task = ALGORITHMS[opts.algorithm][0]
        inferred = (
            f"the target {target!r} is an integer column and algorithm {opts.algorithm!r} "
            f"does only {task}, so task = {task!r} was inferred"
        )
    check_algorithm(opts.algorithm, task)
    check_target_type(target, target_type, task)
    feature_names = [c for c in table.column_names if c != target and c not in excluded]
    if not feature_names:
        raise TrainingError(
            name, f"no feature columns are left after the target {target!r} and exclude"
        )
    for column in feature_names:
        type_ = table.schema.field(column).type
        if preprocess.kind_of(type_) is None:
            raise UnsupportedColumnType(column, str(type_))
    hyperparameters = check_hyperparameters(opts, task)

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
        table = table.filter(labelled)
    check_target_values(name, target, table.column(target))
    if opts.algorithm != "lightgbm":
        check_finite_features(name, table, feature_names, opts.algorithm)
    if dropped:
        logger.info(
            "model %s: dropped %d rows whose target %r is NULL", name, dropped, target, extra=NOTICE
        )
        report("drop_null_target", dropped, dropped + table.num_rows)

    if inferred:
        logger.info("model %s: %s", name, inferred, extra=NOTICE)
        if task == "classification":
            distinct = pc.count_distinct(table.column(target)).as_py()
            report("classification_inferred", distinct, table.num_rows)

    y, classes = encode_target(table.column(target), task)
    if opts.algorithm == "lightgbm" and task == "regression":
        check_float32_range(name, target, y)
    if task == "classification" and len(classes) < 2:
        raise TrainingError(
            name,
            f"the target {target!r} has a single class ({classes[0]!r}); "
            "classification needs at least two",
        )
    train_rows, test_rows = split_rows(name, y, len(classes), task, opts)

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
    _warn_high_cardinality(name, preprocessor, len(train_rows), report)
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
        model, effective, scores = train_lightgbm(
            name, preprocessor, x_train, y[train_rows], x_test, task, k, opts.seed,
            hyperparameters, report,
        )  # fmt: skip
        manifest["format"] = "lightgbm"
    else:
        model, effective, scores = train_sklearn(
            name, opts.algorithm, x_train, y[train_rows], x_test, task, opts.seed,
            hyperparameters, report,
        )  # fmt: skip
        manifest["format"] = "onnx"
        manifest["onnx_input"] = "double" if opts.algorithm != "random_forest" else "float"

    holdout: dict[str, float] = {}
    if len(test_rows):
        report("evaluate", 0, 1)
        if task == "classification":
            holdout = metrics.classification_metrics(y[test_rows], scores)
        else:
            holdout = metrics.regression_metrics(y[test_rows], scores)
        report("evaluate", 1, 1)
        logger.info("model %s: holdout %s", name, holdout)
    else:
        logger.info(
            "model %s: test_size = 0, so no rows are held out and no metrics", name, extra=NOTICE
        )

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


def _warn_high_cardinality(
    name: str, preprocessor: preprocess.Preprocessor, rows: int, report: Progress
) -> None:
    """Warn about each text feature with very many distinct values: likely an id or free
    text, which as a category only memorises the training rows."""
    for column in preprocessor.columns:
        if column.kind != preprocess.CATEGORY or column.categories is None:
            continue
        count = len(column.categories)
        if high_cardinality(count, rows):
            logger.warning(
                "model %s: the text feature %r has %d distinct values in %d training rows, "
                "so it is likely an id or free text; as a category it memorises rows rather "
                "than generalises. If it is not a feature, leave it out with "
                "OPTIONS (exclude = '%s')",
                name, column.name, count, rows, column.name, extra=NOTICE,
            )  # fmt: skip
            report("high_cardinality", count, rows)
