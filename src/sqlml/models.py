"""The process-wide cache of loaded models, shared by sessions, engines and the dbt plugin.

Models are kept per process by (name, version, sha256), the most recently used
:data:`_CACHE_SIZE` of them, together with each one's compiled predict expression.

What each reference last resolved to is remembered too, so that models already loaded
keep predicting while the catalog cannot be reached: ``name@3`` as long as its model is
loaded, ``name`` and ``name@alias`` for :data:`DEFAULT_CATALOG_GRACE` seconds (setting
``SQLML_CATALOG_GRACE``) after they last resolved. Anything else fails with
:class:`~sqlml.errors.CatalogUnavailable`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Mapping

from sqlglot import exp

from sqlml.catalog import Catalog, ModelRef, ModelVersion
from sqlml.errors import CatalogUnavailable, ConfigError, NotAClassifier
from sqlml.udfs.predict import LoadedModel, load_model

log = logging.getLogger("sqlml")

#: Seconds a name or alias is served as it last resolved while the catalog is away.
DEFAULT_CATALOG_GRACE = 300.0
#: The environment variable that sets the grace period (0 turns it off).
CATALOG_GRACE_ENV = "SQLML_CATALOG_GRACE"

_CACHE_SIZE = 32
_cache: OrderedDict[tuple[str, int, str], LoadedModel] = OrderedDict()
#: Each cached model's compiled predict expression, for as long as the model is cached.
_compiled: weakref.WeakKeyDictionary[LoadedModel, exp.Expr] = weakref.WeakKeyDictionary()
_cache_lock = threading.Lock()

_MEMORY_SIZE = 1024
#: (catalog URI, reference) -> the version it last resolved to, and when (monotonic).
_resolved: OrderedDict[tuple[str, ModelRef], tuple[ModelVersion, float]] = OrderedDict()
#: (catalog URI, name, version) -> the version as last read from that catalog.
_versions: OrderedDict[tuple[str, str, int], ModelVersion] = OrderedDict()
#: The catalogs whose references are being served from memory (each warned about once).
_from_memory: set[str] = set()


def catalog_grace(environ: Mapping[str, str] | None = None) -> float:
    """The grace period in seconds, from ``SQLML_CATALOG_GRACE`` or the default.

    >>> catalog_grace({"SQLML_CATALOG_GRACE": "60"})
    60.0

    Raises:
        ConfigError: the variable is not a number of seconds >= 0.
    """
    text = (os.environ if environ is None else environ).get(CATALOG_GRACE_ENV, "").strip()
    if not text:
        return DEFAULT_CATALOG_GRACE
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:
        raise ConfigError(CATALOG_GRACE_ENV, f"{text!r} is not a number of seconds >= 0")
    return seconds


def _remember(uri: str, ref: ModelRef, version: ModelVersion) -> None:
    with _cache_lock:
        _resolved[uri, ref] = (version, time.monotonic())
        _resolved.move_to_end((uri, ref))
        _versions[uri, version.model, version.version] = version
        _versions.move_to_end((uri, version.model, version.version))
        for memory in (_resolved, _versions):
            while len(memory) > _MEMORY_SIZE:
                memory.popitem(last=False)
        if uri in _from_memory:
            _from_memory.discard(uri)
            log.info("catalog %s answers again: references resolve against it", uri)


def _recall(uri: str, ref: ModelRef, error: CatalogUnavailable) -> ModelVersion:
    """What ``ref`` meant when the catalog last answered, if that may still be served.

    Raises:
        CatalogUnavailable: ``error``, when nothing may be served for ``ref``.
    """
    now = time.monotonic()
    with _cache_lock:
        if ref.version is not None:
            found = _versions.get((uri, ref.name, ref.version))
        else:
            remembered = _resolved.get((uri, ref))
            grace = catalog_grace()
            found = remembered[0] if remembered and now - remembered[1] <= grace else None
        if found is None:
            raise error
        first = uri not in _from_memory
        _from_memory.add(uri)
    if first:
        log.warning(
            "catalog %s is unavailable (%s); serving the models loaded in this process: "
            "name@N as long as it is loaded, a name or alias as it last resolved for up to "
            "%g s (%s)",
            uri,
            error.reason,
            catalog_grace(),
            CATALOG_GRACE_ENV,
        )
    return found


class ModelCache:
    """Loads models from a catalog, keeping them per process by (name, version, sha256).

    The key holds the artifact's SHA-256, so a model re-created under an old name and
    version number is never served from a stale entry; references are resolved against
    the catalog on every call, so an alias move is seen at once (while the catalog is
    unavailable, as the module describes).
    """

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def get(self, ref: str) -> LoadedModel:
        """The loaded model a reference (``name``, ``name@3``, ``name@alias``) means now."""
        return self.load(self.resolve(ref))

    def resolve(self, ref: str) -> ModelVersion:
        """The version a reference means now; while the catalog is unavailable, what it
        last meant, within the limits the module describes.

        Raises:
            CatalogUnavailable: the catalog cannot be reached and ``ref`` cannot be served
                from memory.
        """
        parsed = ModelRef.parse(ref)
        uri = self.catalog.uri
        try:
            version = self.catalog.resolve(parsed)
        except CatalogUnavailable as exc:
            return _recall(uri, parsed, exc)
        _remember(uri, parsed, version)
        return version

    def bind(self, ref: str, kind: str) -> tuple[ModelVersion, LoadedModel]:
        """The version a ``predict``/``predict_proba`` call names now, and its model.

        Raises:
            NotAClassifier: ``predict_proba`` of a regression model.
        """
        version = self.resolve(ref)
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
