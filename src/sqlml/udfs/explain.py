"""Table-valued functions over a loaded model: ``evaluate`` and ``feature_importance``."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sqlml.errors import EvaluationError, SqlmlError
from sqlml.udfs import preprocess
from sqlml.udfs.arrow_types import plain_table
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
        EvaluationError: no target column, no labelled rows, two columns of one name, a
            target of the wrong type, NaN or infinite targets, or a label the model never
            saw.
        FeatureMissing: a feature column is not in ``data``.
    """
    data = plain_table(data)
    columns = data.column_names
    for name in columns:
        same = [c for c in columns if c.lower() == name.lower()]
        if len(same) > 1:
            raise EvaluationError(
                model.name,
                f"the query gives more than one column the name {name!r}; give each column "
                "its own name",
            )
    if model.target not in columns:
        raise EvaluationError(
            model.name,
            f"the query has no column {model.target!r}, the model's target, to compare its "
            f"predictions with; its columns: {', '.join(columns) or 'none'}",
        )
    target = data[model.target]
    kind = preprocess.kind_of(target.type)
    if (
        model.task == "regression"
        and kind != preprocess.NUMERIC
        and not pa.types.is_null(target.type)
    ):
        raise EvaluationError(
            model.name,
            f"the target column {model.target!r} is {target.type}, but a regression model "
            f"needs numbers; cast it, e.g. CAST({model.target} AS DOUBLE)",
        )
    data = data.filter(pc.is_valid(target))
    if data.num_rows == 0:
        raise EvaluationError(
            model.name,
            f"the query gave no rows whose target {model.target!r} is not NULL; evaluate() "
            "needs rows with known outcomes",
        )
    target = data[model.target]
    if pa.types.is_floating(target.type):
        bad = pc.sum(pc.or_(pc.is_nan(target), pc.is_inf(target))).as_py()
        if bad:
            raise EvaluationError(
                model.name,
                f"the target column {model.target!r} has {bad} NaN or infinite value(s); "
                "leave those rows out or make them NULL",
            )
    if model.task == "regression":
        predicted = model.predict(data).to_numpy(zero_copy_only=False)
        truth = pc.cast(target, pa.float64(), safe=False).to_numpy()
        metrics = regression_metrics(truth, predicted)
    else:
        labels = pa.array(model.classes, type=model.output_type)
        try:
            cast = target.cast(model.output_type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise EvaluationError(
                model.name,
                f"the target column {model.target!r} is {target.type}, which does not match "
                f"the model's classes ({model.output_type}: {list(model.classes)[:5]}); "
                f"cast it, e.g. CAST({model.target} AS ...)",
            ) from exc
        codes = pc.index_in(cast, value_set=labels)
        if codes.null_count:
            unseen = pc.unique(pc.filter(target, pc.is_null(codes))).to_pylist()[:5]
            raise EvaluationError(
                model.name,
                f"the target has values the model never saw in training: {unseen}; "
                f"its classes are {list(model.classes)}",
            )
        proba = model.scores(data)
        metrics = classification_metrics(codes.to_numpy(zero_copy_only=False), proba)
    result: dict[str, list[object]] = {"model": [model.name], "rows": [data.num_rows]}
    result.update({name: [value] for name, value in metrics.items()})
    return pa.table(result)


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
