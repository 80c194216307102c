"""The process-wide cache of loaded models, shared by sessions, engines and the dbt plugin.

Models are kept per process by (name, version, sha256), the most recently used
:data:`_CACHE_SIZE` of them, together with each one's compiled predict expression.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable

from sqlglot import exp

from sqlml.catalog import Catalog, ModelVersion
from sqlml.errors import NotAClassifier
from sqlml.udfs.predict import LoadedModel, load_model

_CACHE_SIZE = 32
_cache: OrderedDict[tuple[str, int, str], LoadedModel] = OrderedDict()
#: Each cached model's compiled predict expression, for as long as the model is cached.
_compiled: weakref.WeakKeyDictionary[LoadedModel, exp.Expr] = weakref.WeakKeyDictionary()
_cache_lock = threading.Lock()


class ModelCache:
    """Loads models from a catalog, keeping them per process by (name, version, sha256).

    The key holds the artifact's SHA-256, so a model re-created under an old name and
    version number is never served from a stale entry; references are resolved against
    the catalog on every call, so an alias move is seen at once.
    """

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def get(self, ref: str) -> LoadedModel:
        """The loaded model a reference (``name``, ``name@3``, ``name@alias``) means now."""
        return self.load(self.catalog.resolve(ref))

    def bind(self, ref: str, kind: str) -> tuple[ModelVersion, LoadedModel]:
        """The version a ``predict``/``predict_proba`` call names now, and its model.

        Raises:
            NotAClassifier: ``predict_proba`` of a regression model.
        """
        version = self.catalog.resolve(ref)
        model = self.load(version)
        if kind == "predict_proba" and model.task != "classification":
            raise NotAClassifier(version.ref, model.task)
        return version, model

    def load(self, version: ModelVersion) -> LoadedModel:
        """The loaded model of a catalog version."""
        key = (version.model, version.version, version.sha256)
        with _cache_lock:
            model = _cache.get(key)
            if model is not None:
                _cache.move_to_end(key)
                return model
        blob = self.catalog.load_artifact(version.model, version.version)
        model = load_model(blob, version.ref)
        with _cache_lock:
            _cache[key] = model
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
        return model

    @staticmethod
    def compiled(model: LoadedModel, build: Callable[[LoadedModel], exp.Expr]) -> exp.Expr:
        """A model's predict expression: ``build(model)``, kept while the model lives.

        Raises:
            CompileNotSupported: (from ``build``) the model cannot be compiled; nothing is
                kept, so the next call tries again.
        """
        with _cache_lock:
            cached = _compiled.get(model)
        if cached is None:
            cached = build(model)
            with _cache_lock:
                _compiled[model] = cached
        return cached
