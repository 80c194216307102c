"""The ``Catalog`` interface every model store implements."""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING

from sqlml._closing import Closing
from sqlml.catalog.entities import (
    Alias,
    CompiledExpression,
    CompiledKind,
    Model,
    ModelRef,
    ModelVersion,
    VersionSpec,
)
from sqlml.errors import SchemaOutOfDate

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlml.migrations import Migration, MigrationStatus


class Catalog(Closing, abc.ABC):
    """A store of models, their versions, artifacts and aliases.

    Stores are opened with :func:`sqlml.catalog.open_catalog`. Every operation is atomic:
    a failure leaves the catalog as it was. Catalogs are context managers.
    """

    #: The URI the catalog was opened with, safe to print (no password).
    uri: str

    # --- schema ---------------------------------------------------------------------------

    @abc.abstractmethod
    def migrate(
        self,
        *,
        lock_timeout: float | None = None,
        on_wait: Callable[[], None] | None = None,
    ) -> list[Migration]:
        """Apply pending schema migrations; return the ones applied.

        Migration runners take turns through a lock (PostgreSQL's advisory lock,
        SQLite's write lock).

        Args:
            lock_timeout: the most seconds to wait while another runner holds the lock;
                None waits as long as it takes (SQLite: its busy timeout).
            on_wait: called once, before waiting, when another runner holds the lock.

        Raises:
            CatalogError: the lock stayed held for ``lock_timeout`` seconds.
        """

    @abc.abstractmethod
    def migration_status(self) -> list[MigrationStatus]:
        """Every migration, applied or pending."""

    def check_schema(self, *, migrate: bool = False, apply: bool = True) -> None:
        """Compare the catalog's schema version with the one this sqlml expects.

        Args:
            migrate: a schema that is behind is brought up to date (when ``apply``) or
                tolerated; otherwise it is an error.
            apply: migrate when behind and ``migrate`` is set.

        Raises:
            SchemaOutOfDate: the schema is ahead of this sqlml, or behind and ``migrate``
                is False. The message says to run ``sqlml migrate`` or to upgrade.
        """
        from sqlml.migrations import applied_version, latest_version

        current, expected = applied_version(self.migration_status()), latest_version()
        if current > expected or (current < expected and not migrate):
            raise SchemaOutOfDate(self.uri, current, expected)
        if current < expected and apply:
            self.migrate()

    # --- writing --------------------------------------------------------------------------

    @abc.abstractmethod
    def register_version(
        self,
        name: str,
        spec: VersionSpec,
        artifact: bytes,
        owner: str | None = None,
        *,
        exist_ok: bool = True,
    ) -> ModelVersion:
        """Register a new version of ``name`` (creating the model, owned by ``owner``, if
        needed; an existing model keeps its owner).

        The version number is assigned inside the transaction that stores the metadata and
        the artifact, so concurrent registrations get distinct consecutive numbers and a
        failure leaves nothing behind.

        Args:
            exist_ok: when False (plain ``CREATE MODEL``), a model that already has a
                version is an error. The check is made in the same transaction, so of
                concurrent registrations of a new name exactly one succeeds.

        Raises:
            InvalidModelName: ``name`` is not an identifier.
            ModelExists: ``exist_ok`` is False and the model has a version.
        """

    @abc.abstractmethod
    def set_alias(self, name: str, alias: str, version: int) -> Alias:
        """Point ``alias`` at ``version`` of ``name``, creating or moving it; the move is
        recorded in the alias's history (see :meth:`rollback_alias`)."""

    @abc.abstractmethod
    def rollback_alias(self, name: str, alias: str) -> Alias:
        """Point ``alias`` back at the version it pointed at before its last
        :meth:`set_alias`, and forget that deployment: rolling back again goes further
        back. Deployments of versions since dropped are skipped; an alias removed with its
        version (``DROP MODEL m VERSION n FORCE``) comes back at the deployment before.

        Raises:
            ModelNotFound: no such model.
            AliasNotFound: the model never had such an alias.
            NothingToRollBack: the alias has no earlier deployment.
        """

    @abc.abstractmethod
    def remove_alias(self, name: str, alias: str) -> None:
        """Remove an alias.

        Raises:
            AliasNotFound: the model has no such alias.
        """

    @abc.abstractmethod
    def delete_version(self, name: str, version: int) -> None:
        """Delete one version with its artifact and the aliases that point at it."""

    @abc.abstractmethod
    def delete_model(self, name: str) -> None:
        """Delete a model with all its versions, artifacts and aliases."""

    @abc.abstractmethod
    def save_compiled(
        self, name: str, version: int, dialect: str, kind: CompiledKind, expression: str
    ) -> CompiledExpression:
        """Store a version compiled to SQL, replacing what was stored for the same key.

        The key is (``name``, ``version``, ``dialect``, ``kind``); ``dialect`` is stored
        in lower case. Deleting the version deletes its compiled expressions.

        Raises:
            ModelNotFound: no such model.
            VersionNotFound: the model has no such version.
            CatalogError: ``kind`` is not ``predict`` or ``proba``.
        """

    # --- reading --------------------------------------------------------------------------

    @abc.abstractmethod
    def get_model(self, name: str) -> Model:
        """The model called ``name``.

        Raises:
            ModelNotFound: no such model; the message lists the models that exist.
        """

    @abc.abstractmethod
    def list_models(self) -> list[Model]:
        """All models, by name."""

    @abc.abstractmethod
    def get_version(self, name: str, version: int | None = None) -> ModelVersion:
        """Version ``version`` of ``name``, or its latest version when ``version`` is None.

        Raises:
            ModelNotFound: no such model.
            VersionNotFound: the model has no such version (or no version at all).
        """

    @abc.abstractmethod
    def get_alias(self, name: str, alias: str) -> ModelVersion:
        """The version ``alias`` points at.

        Raises:
            ModelNotFound: no such model.
            AliasNotFound: the model has no such alias.
        """

    @abc.abstractmethod
    def list_versions(self, name: str) -> list[ModelVersion]:
        """All versions of ``name``, oldest first."""

    @abc.abstractmethod
    def list_aliases(self, name: str | None = None) -> list[Alias]:
        """The aliases of ``name`` (of every model when ``name`` is None)."""

    @abc.abstractmethod
    def load_artifact(self, name: str, version: int) -> bytes:
        """The artifact of a version, after checking its SHA-256.

        Raises:
            ArtifactCorrupted: the stored bytes do not match the recorded SHA-256.
        """

    @abc.abstractmethod
    def get_compiled(
        self, name: str, version: int, dialect: str, kind: CompiledKind = "predict"
    ) -> CompiledExpression:
        """The expression stored by :meth:`save_compiled` (``dialect`` in any case).

        Raises:
            ModelNotFound: no such model.
            VersionNotFound: the model has no such version.
            CompiledNotFound: the version was not compiled for that dialect and kind; the
                message says which ``sqlml compile ... --save`` command stores it.
        """

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections; the catalog cannot be used afterwards."""

    # --- conveniences built on the operations above ---------------------------------------

    def resolve(self, ref: str | ModelRef) -> ModelVersion:
        """The version a reference means: ``name`` (latest), ``name@3`` or ``name@alias``."""
        parsed = ModelRef.parse(ref) if isinstance(ref, str) else ref
        if parsed.alias is not None:
            return self.get_alias(parsed.name, parsed.alias)
        return self.get_version(parsed.name, parsed.version)
