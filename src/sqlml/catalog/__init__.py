"""The model catalog: where models, versions, artifacts and aliases live.

>>> with open_catalog("sqlite:///:memory:") as catalog:
...     catalog.list_models()
[]
"""

from __future__ import annotations

from urllib.parse import urlsplit

from sqlml.catalog.base import Catalog
from sqlml.catalog.entities import (
    Alias,
    CompiledExpression,
    CompiledKind,
    Feature,
    Model,
    ModelRef,
    ModelVersion,
    VersionSpec,
    validate_name,
)
from sqlml.errors import UnsupportedCatalogURI

#: The catalog used when none is configured: a SQLite file in the working directory.
DEFAULT_CATALOG_URI = "sqlite:///sqlml.db"

SUPPORTED_SCHEMES = ("sqlite", "postgresql", "postgres")


def open_catalog(
    uri: str | None = None,
    *,
    migrate: bool | None = None,
    check_schema: bool = True,
    max_connections: int | None = None,
) -> Catalog:
    """Open the catalog at ``uri``, choosing the store by the URI's scheme.

    Args:
        uri: ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db``,
            ``sqlite:///:memory:`` or ``postgresql://user:password@host:port/database``.
            Defaults to :data:`DEFAULT_CATALOG_URI`.
        migrate: apply pending schema migrations on open. Defaults to True for SQLite
            (an embedded file is created and migrated on first use) and False for
            PostgreSQL, whose schema is managed with ``sqlml migrate``.
        check_schema: when False, skip the schema version check (``sqlml migrate`` opens
            catalogs this way to report on or migrate them).
        max_connections: the most connections a PostgreSQL catalog holds at once (its
            pool's size); ``None`` for the default. A SQLite catalog holds one.

    Raises:
        UnsupportedCatalogURI: the scheme is not one of :data:`SUPPORTED_SCHEMES`.
        CatalogUnavailable: the database cannot be reached.
        SchemaOutOfDate: the schema is behind (run ``sqlml migrate``) or ahead (upgrade).
    """
    uri = uri or DEFAULT_CATALOG_URI
    scheme = urlsplit(uri).scheme.lower()
    if scheme == "sqlite":
        from sqlml.catalog.sqlite import SQLiteCatalog

        path = uri.split(":", 1)[1].removeprefix("///")
        if not path:
            raise UnsupportedCatalogURI(uri, SUPPORTED_SCHEMES)
        return SQLiteCatalog(
            path, migrate=True if migrate is None else migrate, check_schema=check_schema
        )
    if scheme in ("postgresql", "postgres"):
        from sqlml.catalog.postgres import PostgresCatalog

        pool = {} if max_connections is None else {"max_connections": max_connections}
        return PostgresCatalog(uri, migrate=bool(migrate), check_schema=check_schema, **pool)
    raise UnsupportedCatalogURI(uri, SUPPORTED_SCHEMES)


__all__ = [
    "DEFAULT_CATALOG_URI",
    "SUPPORTED_SCHEMES",
    "Alias",
    "Catalog",
    "CompiledExpression",
    "CompiledKind",
    "Feature",
    "Model",
    "ModelRef",
    "ModelVersion",
    "VersionSpec",
    "open_catalog",
    "validate_name",
]
