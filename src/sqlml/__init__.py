"""sqlml: machine learning as SQL over Arrow data.

>>> import sqlml
>>> sqlml.ModelRef.parse("churn@production").alias
'production'
"""

from __future__ import annotations

from sqlml.catalog import (
    Alias,
    Catalog,
    Feature,
    Model,
    ModelRef,
    ModelVersion,
    VersionSpec,
    open_catalog,
)
from sqlml.config import Settings, load_settings
from sqlml.errors import (
    AliasInvalid,
    AliasNotFound,
    ArtifactCorrupted,
    ArtifactInvalid,
    CatalogError,
    CatalogUnavailable,
    CompiledNotFound,
    CompileNotSupported,
    ConfigError,
    FeatureMissing,
    FeatureTypeMismatch,
    InvalidModelName,
    InvalidOption,
    MigrationError,
    ModelExists,
    ModelNotFound,
    NotAClassifier,
    QueryError,
    SchemaOutOfDate,
    SourceError,
    SourceTableNotFound,
    SourceUnavailable,
    SqlmlError,
    SqlSyntaxError,
    TrainingError,
    UnknownDialect,
    UnknownEngine,
    UnsupportedCatalogURI,
    UnsupportedColumnType,
    VersionNotFound,
)
from sqlml.session import Session, connect

__version__ = "0.1.0"

__all__ = [
    "Alias",
    "AliasInvalid",
    "AliasNotFound",
    "ArtifactCorrupted",
    "ArtifactInvalid",
    "Catalog",
    "CatalogError",
    "CatalogUnavailable",
    "CompileNotSupported",
    "CompiledNotFound",
    "ConfigError",
    "Feature",
    "FeatureMissing",
    "FeatureTypeMismatch",
    "InvalidModelName",
    "InvalidOption",
    "MigrationError",
    "Model",
    "ModelExists",
    "ModelNotFound",
    "ModelRef",
    "ModelVersion",
    "NotAClassifier",
    "QueryError",
    "SchemaOutOfDate",
    "Session",
    "Settings",
    "SourceError",
    "SourceTableNotFound",
    "SourceUnavailable",
    "SqlSyntaxError",
    "SqlmlError",
    "TrainingError",
    "UnknownDialect",
    "UnknownEngine",
    "UnsupportedCatalogURI",
    "UnsupportedColumnType",
    "VersionNotFound",
    "VersionSpec",
    "__version__",
    "connect",
    "load_settings",
    "open_catalog",
]
