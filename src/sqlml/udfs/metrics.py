"""Holdout metrics, computed with scikit-learn and returned as plain floats.

scikit-learn is imported when a metric is computed, so predicting never pays for it. A
metric that is not a finite number (a squared error beyond the float64 range, for targets
near 1e154 and above) is left out rather than recorded as infinite.
"""

from __future__ import annotations

import math

import numpy as np


def classification_metrics(y_true: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """Accuracy, precision, recall, F1, ROC AUC and log loss of class probabilities.

    Binary problems score the positive class (code 1, i.e. ``classes[1]``); multiclass
    problems average over classes (macro; ROC AUC one-vs-rest). ROC AUC is left out when the
    holdout lacks a class, since it is undefined then.

    Args:
        y_true: the true class codes ``0..k-1``.
        proba: an ``(n, k)`` array of class probabilities.

    Returns:
        Metric name to value.
    """
    from sklearn import metrics

    k = proba.shape[1]
    labels = np.arange(k)
    y_pred = proba.argmax(axis=1)
    average = "binary" if k == 2 else "macro"
    out = {
        "accuracy": metrics.accuracy_score(y_true, y_pred),
        "precision": metrics.precision_score(
            y_true, y_pred, labels=labels, average=average, zero_division=0
        ),
        "recall": metrics.recall_score(
            y_true, y_pred, labels=labels, average=average, zero_division=0
        ),
        "f1": metrics.f1_score(y_true, y_pred, labels=labels, average=average, zero_division=0),
        "log_loss": metrics.log_loss(y_true, proba, labels=labels),
    }
    if np.unique(y_true).size == k:
        if k == 2:
            out["roc_auc"] = metrics.roc_auc_score(y_true, proba[:, 1])
        else:
            out["roc_auc"] = metrics.roc_auc_score(
                y_true, proba, multi_class="ovr", average="macro", labels=labels
            )
    return _finite(out)


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """RMSE, MAE and R² of predictions (R² is left out for fewer than two rows).

    Args:
        y_true: the true values.
        y_pred: the predictions.

    Returns:
        Metric name to value.
    """
    from sklearn import metrics

    with np.errstate(all="ignore"):
        out = {
            "mae": metrics.mean_absolute_error(y_true, y_pred),
            "rmse": metrics.root_mean_squared_error(y_true, y_pred),
        }
        if len(y_true) >= 2:
            out["r2"] = metrics.r2_score(y_true, y_pred)
    return _finite(out)


def _finite(values: dict[str, float]) -> dict[str, float]:
    return {name: float(value) for name, value in sorted(values.items()) if math.isfinite(value)}
