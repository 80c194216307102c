"""Pure Arrow-in, Arrow-out machine learning: train, predict, preprocessing, artifacts.

Nothing here imports an engine or a catalog store; engines call :func:`load_model` and
:meth:`LoadedModel.predict` per Arrow batch, sessions call :func:`train` on a SELECT's Arrow
result and register the :class:`TrainedModel` in the catalog.
"""

from __future__ import annotations

from sqlml.udfs.predict import LoadedModel, load_model
from sqlml.udfs.train import TrainedModel, train

__all__ = ["LoadedModel", "TrainedModel", "load_model", "train"]
