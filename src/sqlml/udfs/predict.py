"""Load an artifact and predict on Arrow batches: the body of predict() and predict_proba().

Features bind by column name against the model's signature (exact name first, then a
unique case-insensitive match); extra columns are ignored and order never matters. The
float64 matrix is built exactly as at training time, so a LightGBM model's predictions are
LightGBM's own ``Booster.predict`` on the same rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeAlias

import numpy as np
import pyarrow as pa

from sqlml.catalog.entities import Feature, Label, arrow_type_from_string
from sqlml.errors import ArtifactInvalid, FeatureMissing, FeatureTypeMismatch, NotAClassifier
from sqlml.udfs import artifact, checker, preprocess

Batch: TypeAlias = pa.RecordBatch | pa.Table | pa.StructArray | pa.ChunkedArray
"""What predict accepts: a record batch or table of columns, or a struct array of rows."""


def load_model(blob: bytes, name: str = "") -> LoadedModel:
    """Load an artifact written by :func:`sqlml.udfs.train.train`.

    Whatever the blob holds, loading it cannot crash this process: its files are checked
    first (:mod:`sqlml.udfs.validate`), and the first time this process sees an artifact
    it did not write, a child process loads and scores it before this one does
    (:mod:`sqlml.udfs.checker`).

    Args:
        blob: the artifact's bytes.
        name: the model's name (or ``name@version``), used in error messages.

    Returns:
        The :class:`LoadedModel`, ready to predict.

    Raises:
        ArtifactInvalid: the blob is not a valid artifact.
        ArtifactRefused: a file of it is malformed, or its signature is missing or wrong.
        ArtifactCrashed: it crashed (or failed in) the checker process.
    """
    unpacked = artifact.unpack(blob, name)
    checker.check_once(blob, unpacked, name)
    return LoadedModel(unpacked, name)


class LoadedModel:
    """A model ready to predict on Arrow data. Build it with :func:`load_model`.

    Attributes:
        name: the name given to :func:`load_model`.
        algorithm: ``lightgbm``, ``linear``, ``logistic`` or ``random_forest``.
        task: ``classification`` or ``regression``.
        target: the target column's name.
        features: the input signature.
        classes: the class labels in encoded order (empty for regression).
        output_type: the Arrow type :meth:`predict` returns: the target's type for
            classification, float64 for regression.
        artifact: the unpacked artifact the model was built from (read by
            :mod:`sqlml.sql.compile` for an ONNX model's coefficients).
    """

    def __init__(self, unpacked: artifact.Artifact, name: str = "") -> None:
        """Build the model from an unpacked artifact (see :func:`load_model`)."""
        manifest = unpacked.manifest
        self.name = name
        self.artifact = unpacked
        self.algorithm: str = str(manifest["algorithm"])
        self.task: str = str(manifest["task"])
        self.target: str = str(manifest["target"])
        self.artifact_format = unpacked.format
        try:
            self._preprocessor = preprocess.Preprocessor.from_json(unpacked.preprocess)
            self.output_type: pa.DataType = arrow_type_from_string(manifest["target_type"])
            self.classes: tuple[Label, ...] = tuple(manifest["classes"])
            self._labels = pa.array(self.classes, type=self.output_type)
        except (ValueError, KeyError, TypeError, pa.ArrowException) as exc:
            raise ArtifactInvalid(
                name, f"its preprocessing or classes are invalid ({exc})"
            ) from exc
        if self.task == "regression":
            self.output_type = pa.float64()
        self._label_text = self._labels.cast(pa.string())
        self.features: tuple[Feature, ...] = self._preprocessor.features
        self._kinds = {c.name: c.kind for c in self._preprocessor.columns}
        self._booster: Any = None
        self._session: Any = None
        width = self._preprocessor.width
        if self.artifact_format == "lightgbm":
            import lightgbm as lgb

            try:
                self._booster = lgb.Booster(model_str=unpacked.model.decode())
            except (lgb.basic.LightGBMError, ValueError) as exc:
                raise ArtifactInvalid(name, f"model.txt is not a LightGBM model ({exc})") from exc
            if self._booster.num_feature() != width:
                raise ArtifactInvalid(name, "model.txt does not match preprocess.json")
        else:
            import onnxruntime as ort

            try:
                self._session = ort.InferenceSession(
                    unpacked.model, providers=["CPUExecutionProvider"]
                )
            except Exception as exc:  # onnxruntime raises its own, unexported exceptions
                raise ArtifactInvalid(name, f"model.onnx is not an ONNX model ({exc})") from exc
            self._input = self._session.get_inputs()[0].name
            self._float32 = manifest.get("onnx_input") == "float"
            self._outputs = [o.name for o in self._session.get_outputs()]

    def __repr__(self) -> str:
        return f"<LoadedModel {self.name!r} {self.algorithm} {self.task}>"

    def predict(self, batch: Batch) -> pa.Array:
        """Predict one value per row.

        Args:
            batch: the input rows (a record batch, table or struct array); a row that is
                NULL as a whole (in a struct array) gives NULL.

        Returns:
            An array of :attr:`output_type`: class labels or float64 values.

        Raises:
            FeatureMissing: a feature column is not in the input.
            FeatureTypeMismatch: a feature column's type does not fit the model.
        """
        scores, nulls = self._outputs_and_nulls(batch)
        if self.task == "regression":
            return pa.array(scores, type=pa.float64(), mask=nulls)
        positions = pa.array(scores.argmax(axis=1), type=pa.int64(), mask=nulls)
        return self._labels.take(positions)

    def predict_proba(self, batch: Batch) -> pa.MapArray:
        """Class probabilities per row, as ``map<string, double>`` from label text.

        Labels are keyed by their text as Arrow casts them to string (``true``/``false``
        for booleans); each row's probabilities sum to 1.

        Raises:
            NotAClassifier: the model is a regression model.
            FeatureMissing: a feature column is not in the input.
            FeatureTypeMismatch: a feature column's type does not fit the model.
        """
        if self.task != "classification":
            raise NotAClassifier(self.name, self.task)
        scores, nulls = self._outputs_and_nulls(batch)
        n, k = scores.shape
        offsets = pa.array(np.arange(0, (n + 1) * k, k, dtype=np.int32))
        keys = self._label_text.take(pa.array(np.tile(np.arange(k), n)))
        mask = None if nulls is None else pa.array(nulls)
        return pa.MapArray.from_arrays(offsets, keys, pa.array(scores.ravel()), mask=mask)

    @property
    def class_keys(self) -> tuple[str, ...]:
        """The keys of :meth:`predict_proba`'s map: each class label as text."""
        return tuple(self._label_text.to_pylist())

    @property
    def preprocessor(self) -> preprocess.Preprocessor:
        """The fitted preprocessing that builds the model's input matrix."""
        return self._preprocessor

    @property
    def booster(self) -> Any:
        """The ``lightgbm.Booster`` of a LightGBM model; ``None`` for ONNX models."""
        return self._booster

    def scores(self, batch: Batch) -> np.ndarray:
        """The model's raw outputs as NumPy: ``(n, k)`` class probabilities, or ``(n,)`` values.

        Rows that are NULL as a whole are scored as if every feature were NULL.

        Raises:
            FeatureMissing: a feature column is not in the input.
            FeatureTypeMismatch: a feature column's type does not fit the model.
        """
        return self._outputs_and_nulls(batch)[0]

    def _outputs_and_nulls(self, batch: Batch) -> tuple[np.ndarray, np.ndarray | None]:
        """Model outputs (values, or an (n, k) probability array) and the NULL-row mask."""
        columns, nulls, n = self._bind(batch)
        k = len(self.classes)
        if n == 0:
            return np.empty((0, k) if self.task == "classification" else 0), None
        x = self._preprocessor.transform(columns, n)
        if self._booster is not None:
            scores = self._booster.predict(x)
            if self.task == "classification" and k == 2:
                scores = np.column_stack([1.0 - scores, scores])
            return scores, nulls
        outputs = self._session.run(
            None, {self._input: x.astype(np.float32) if self._float32 else x}
        )
        if self.task == "regression":
            return np.asarray(outputs[0], dtype=np.float64).reshape(-1), nulls
        proba = outputs[self._outputs.index("probabilities")].astype(np.float64)
        if self._float32:
            proba /= proba.sum(axis=1, keepdims=True)
        return proba, nulls

    def _bind(
        self, batch: Batch
    ) -> tuple[dict[str, preprocess.ArrowColumn], np.ndarray | None, int]:
        """Match the input's columns to the features by name and check their types."""
        nulls = None
        if isinstance(batch, pa.ChunkedArray):
            batch = batch.combine_chunks()
        if isinstance(batch, pa.StructArray):
            names = [field.name for field in batch.type]
            arrays: list[preprocess.ArrowColumn] = list(batch.flatten())
            if batch.null_count:
                nulls = batch.is_null().to_numpy(zero_copy_only=False)
        elif isinstance(batch, pa.RecordBatch | pa.Table):
            names, arrays = batch.column_names, list(batch.columns)
        else:
            raise TypeError(f"expected a RecordBatch, Table or StructArray, got {type(batch)}")
        by_name: dict[str, preprocess.ArrowColumn] = {}
        by_lower: dict[str, list[str]] = {}
        for column, array in zip(names, arrays, strict=True):
            by_name.setdefault(column, array)
            by_lower.setdefault(column.lower(), []).append(column)
        bound: dict[str, preprocess.ArrowColumn] = {}
        for feature in self.features:
            column = feature.name
            if column not in by_name:
                candidates = by_lower.get(column.lower(), [])
                if len(candidates) != 1:
                    raise FeatureMissing(self.name, feature.name, names)
                column = candidates[0]
            array = by_name[column]
            if not preprocess.compatible(self._kinds[feature.name], array.type):
                raise FeatureTypeMismatch(self.name, feature.name, feature.type, str(array.type))
            bound[feature.name] = array
        return bound, nulls, len(batch)


def class_keys(classes: Sequence[Label]) -> tuple[str, ...]:
    """The keys ``predict_proba`` gives these class labels: their text as Arrow casts them.

    >>> class_keys([False, True]), class_keys([1, 2]), class_keys(["no", "yes"])
    (('false', 'true'), ('1', '2'), ('no', 'yes'))
    """
    return tuple(pa.array(list(classes)).cast(pa.string()).to_pylist())
