"""Table-valued functions over a loaded model: ``evaluate`` and ``feature_importance``."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sqlml.errors import FeatureMissing, SqlmlError, TrainingError
from sqlml.udfs.metrics import classification_metrics, regression_metrics
from sqlml.udfs.predict import LoadedModel


def evaluate(model: LoadedModel, data: pa.Table) -> pa.Table:
    """Metrics of ``model`` on new labelled rows: the same metrics as at training time.

    Rows whose target is NULL are left out.

    Args:
        model: the model to score.
        data: the feature columns and the target column (by the name the model was
            trained with).

    Returns:
        One row: ``model``, ``rows`` and a column per metric.

    Raises:
        FeatureMissing: the target or a feature column is not in ``data``.
        TrainingError: no labelled rows, or a label the model never saw.
    """
    if model.target not in data.column_names:
        raise FeatureMissing(model.name, model.target, data.column_names)
    data = data.filter(pc.is_valid(data[model.target]))
    if data.num_rows == 0:
        raise TrainingError(model.name, "evaluate() got no rows with a non-NULL target")
    target = data[model.target]
    if model.task == "regression":
        predicted = model.predict(data).to_numpy(zero_copy_only=False)
        metrics = regression_metrics(target.cast(pa.float64()).to_numpy(), predicted)
    else:
        labels = pa.array(model.classes, type=model.output_type)
        codes = pc.index_in(target.cast(model.output_type), value_set=labels)
        if codes.null_count:
            unseen = pc.unique(pc.filter(target, pc.is_null(codes))).to_pylist()[:5]
            raise TrainingError(
                model.name,
                f"evaluate() got target values the model never saw in training: {unseen}; "
                f"its classes are {list(model.classes)}",
            )
        proba = model.scores(data)
        metrics = classification_metrics(codes.to_numpy(zero_copy_only=False), proba)
    columns: dict[str, list[object]] = {"model": [model.name], "rows": [data.num_rows]}
    columns.update({name: [value] for name, value in metrics.items()})
    return pa.table(columns)


def feature_importance(model: LoadedModel) -> pa.Table:
    """Each input feature's importance: LightGBM's total gain and split count.

    Encoded columns (date parts, one-hot categories) are summed back to the feature they
    came from, so the rows match the model's signature.

    Raises:
        SqlmlError: the model is not a LightGBM model.
    """
    booster = model.booster
    if booster is None:
        raise SqlmlError(
            f"feature_importance() needs a LightGBM model; {model.name!r} is "
            f"{model.algorithm}. Use evaluate() to compare models instead"
        )
    gain = np.asarray(booster.feature_importance(importance_type="gain"), dtype=np.float64)
    split = np.asarray(booster.feature_importance(importance_type="split"), dtype=np.int64)
    names: list[str] = []
    gains: list[float] = []
    splits: list[int] = []
    position = 0
    for column in model.preprocessor.columns:
        block = slice(position, position + column.width)
        names.append(column.name)
        gains.append(float(gain[block].sum()))
        splits.append(int(split[block].sum()))
        position += column.width
    total = sum(gains) or 1.0
    table = pa.table(
        {
            "feature": names,
            "gain": gains,
            "gain_share": [g / total for g in gains],
            "splits": pa.array(splits, pa.int64()),
        }
    )
    return table.sort_by([("gain", "descending"), ("feature", "ascending")])
