"""The catalog's domain objects: models, versions, features and aliases.

Stores hand out these frozen dataclasses, never driver rows.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from sqlml.errors import AliasInvalid, InvalidModelName

if TYPE_CHECKING:
    import pyarrow as pa

#: A class label as it was in the training data's target column.
Label = str | int | float | bool

#: What a compiled expression computes: the prediction, or the class probabilities.
CompiledKind = Literal["predict", "proba"]

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_NAME_LENGTH = 63


def validate_name(name: object) -> str:
    """Return ``name`` if it is a valid model name, else raise :class:`InvalidModelName`.

    >>> validate_name("churn_v2")
    'churn_v2'
    """
    if not isinstance(name, str):
        raise InvalidModelName(str(name), f"expected a string, got {type(name).__name__}")
    if not name:
        raise InvalidModelName(name, "it is empty")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidModelName(name, f"it has {len(name)} characters")
    if not _IDENTIFIER.fullmatch(name):
        raise InvalidModelName(name, "it is not an identifier")
    return name


def validate_alias(alias: object) -> str:
    """Return ``alias`` if it is a valid alias name, else raise :class:`AliasInvalid`.

    Aliases follow the rules of model names and must not be all digits, so that
    ``name@3`` always means a version and ``name@production`` an alias.
    """
    if not isinstance(alias, str) or not _IDENTIFIER.fullmatch(alias):
        raise AliasInvalid(str(alias), "an alias is an identifier such as 'production'")
    if len(alias) > MAX_NAME_LENGTH:
        raise AliasInvalid(alias, f"it has {len(alias)} characters, at most 63 are allowed")
    if alias.lower() == "latest":
        raise AliasInvalid(alias, "'latest' is reserved: it always means the newest version")
    return alias


@dataclass(frozen=True, slots=True)
class ModelRef:
    """A parsed model reference: ``name``, ``name@3`` or ``name@alias``."""

    name: str
    version: int | None = None
    alias: str | None = None

    @classmethod
    def parse(cls, ref: str) -> ModelRef:
        """Parse a model reference.

        >>> ModelRef.parse("churn@3")
        ModelRef(name='churn', version=3, alias=None)
        >>> ModelRef.parse("churn@production").alias
        'production'
        """
        name, sep, qualifier = ref.partition("@")
        validate_name(name)
        if not sep or qualifier.lower() == "latest":
            return cls(name)
        if qualifier.isdigit():
            return cls(name, version=int(qualifier))
        return cls(name, alias=validate_alias(qualifier))

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}@{self.version}"
        if self.alias is not None:
            return f"{self.name}@{self.alias}"
        return self.name


@dataclass(frozen=True, slots=True)
class Feature:
    """One input column of a model's signature.

    Attributes:
        name: the column name features bind to.
        type: the Arrow type as pyarrow prints it (``int64``, ``string``, ``date32[day]``).
        categories: for categorical columns, the categories seen in training, in the order
            they were encoded; ``None`` for other columns.
    """

    name: str
    type: str
    categories: tuple[str, ...] | None = None

    @property
    def arrow_type(self) -> pa.DataType:
        """The feature's type as a ``pyarrow.DataType``."""
        return arrow_type_from_string(self.type)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type}
        if self.categories is not None:
            out["categories"] = list(self.categories)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Feature:
        categories = data.get("categories")
        return cls(
            name=str(data["name"]),
            type=str(data["type"]),
            categories=None if categories is None else tuple(str(c) for c in categories),
        )


def arrow_type_from_string(text: str) -> pa.DataType:
    """Turn pyarrow's printed form of a type back into the type.

    >>> str(arrow_type_from_string("timestamp[us, tz=UTC]"))
    'timestamp[us, tz=UTC]'
    """
    import pyarrow as pa

    if text.startswith("timestamp[") and text.endswith("]"):
        unit, _, tz = text[len("timestamp[") : -1].partition(", tz=")
        return pa.timestamp(unit, tz=tz or None)
    if text.startswith("decimal128(") and text.endswith(")"):
        precision, scale = text[len("decimal128(") : -1].split(",")
        return pa.decimal128(int(precision), int(scale))
    return pa.type_for_alias(text)


@dataclass(frozen=True, slots=True)
class Model:
    """A named model; its versions hold the trained artifacts."""

    name: str
    task: str
    created_at: dt.datetime
    description: str = ""
    owner: str | None = None
    """The served user who created it; None when it was created locally."""


@dataclass(frozen=True, slots=True)
class VersionSpec:
    """Everything about a new version that the trainer knows before it is registered.

    The catalog adds the model name, the version number, the artifact's SHA-256 and the
    creation time when it registers the version.
    """

    algorithm: str
    task: str
    target: str
    features: tuple[Feature, ...]
    artifact_format: str
    classes: tuple[Label, ...] = ()
    hyperparameters: Mapping[str, Any] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    training_sql: str = ""
    row_count: int = 0
    data_fingerprint: str = ""
    library_versions: Mapping[str, str] = field(default_factory=dict)
    description: str = ""


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """One trained, registered version of a model, with its lineage."""

    model: str
    version: int
    algorithm: str
    task: str
    target: str
    classes: tuple[Label, ...]
    features: tuple[Feature, ...]
    hyperparameters: Mapping[str, Any]
    metrics: Mapping[str, float]
    training_sql: str
    row_count: int
    data_fingerprint: str
    library_versions: Mapping[str, str]
    artifact_format: str
    sha256: str
    created_at: dt.datetime

    @property
    def ref(self) -> str:
        """``name@version``, the reference that always means this version."""
        return f"{self.model}@{self.version}"

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)


@dataclass(frozen=True, slots=True)
class Alias:
    """A movable name (``production``, ``staging``) pointing at one version of a model."""

    model: str
    alias: str
    version: int


@dataclass(frozen=True, slots=True)
class CompiledExpression:
    """A model version compiled to SQL (``sqlml compile --save``), stored in the catalog.

    Attributes:
        model: the model's name.
        version: the version that was compiled.
        dialect: the SQL dialect, lower case (``postgres``, ``duckdb``, ...).
        kind: ``predict`` (the value or class label) or ``proba`` (the class
            probabilities; see :func:`sqlml.sql.compile.compile_model`).
        expression: the SQL text.
        created_at: when it was stored.
    """

    model: str
    version: int
    dialect: str
    kind: CompiledKind
    expression: str
    created_at: dt.datetime

    @property
    def ref(self) -> str:
        """``name@version``, the reference that always means the compiled version."""
        return f"{self.model}@{self.version}"
