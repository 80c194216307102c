"""Shared pytest fixtures.

PostgreSQL tests get their server from ``SQLML_TEST_POSTGRES_URI``. ``make test``
(via ``scripts/with-postgres.sh``) starts a private server and sets it; a developer may
point it at their own server instead. Each test using ``postgres_uri`` gets a fresh,
empty database that is dropped afterwards.

**The engine x catalog matrix.** A test taking ``cell`` (or a fixture built on it) runs on
every engine {duckdb, datafusion} x catalog {sqlite, postgres}; ``cell.catalog_uri`` is a
fresh, migrated catalog of that store. A known gap is marked where the test is, ibis-style,
and becomes a strict xfail on the cells it names (so the day it passes, the suite says so)::

    @pytest.mark.notimpl("DataFusion has no temporary tables", engines=["datafusion"])
    @pytest.mark.notyet("dbt has no DataFusion adapter", engines=["datafusion"])

``notimpl`` is sqlml's own gap; ``notyet`` one of an engine or library. Module-scoped
fixtures (a served process per cell) use ``module_cell`` instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

POSTGRES_URI_ENV = "SQLML_TEST_POSTGRES_URI"

ENGINES = ("duckdb", "datafusion")
CATALOGS = ("sqlite", "postgres")
CELLS = [(engine, catalog) for engine in ENGINES for catalog in CATALOGS]
CELL_IDS = [f"{engine}-{catalog}" for engine, catalog in CELLS]


def pytest_configure(config: pytest.Config) -> None:
    """Nothing to register: markers are declared in pyproject.toml (``--strict-markers``)."""


def with_database(uri: str, dbname: str) -> str:
    """Return ``uri`` (a URI or a ``key=value`` conninfo) with its database replaced."""
    parts = urlsplit(uri)
    if parts.scheme not in ("postgresql", "postgres"):
        return make_conninfo(uri, dbname=dbname)
    # A ``dbname`` query parameter would override the path, so drop it.
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "dbname"]
    return urlunsplit(parts._replace(path="/" + quote(dbname, safe=""), query=urlencode(query)))


@pytest.fixture(scope="session")
def postgres_server_uri() -> str:
    """URI of the PostgreSQL server for tests; skips (fails under ``CI=true``) if unset."""
    uri = os.environ.get(POSTGRES_URI_ENV)
    if uri:
        return uri
    if os.environ.get("CI") == "true":
        pytest.fail(
            f"{POSTGRES_URI_ENV} is not set but CI=true: CI must not skip PostgreSQL tests. "
            "Run them through `make test` (scripts/with-postgres.sh starts a private server).",
            pytrace=False,
        )
    pytest.skip(f"PostgreSQL tests need {POSTGRES_URI_ENV} (make test starts a private server)")


@pytest.fixture
def postgres_uri(postgres_server_uri: str) -> Iterator[str]:
    """URI of a fresh, uniquely named, empty database, dropped after the test."""
    dbname = f"sqlml_test_{uuid.uuid4().hex[:16]}"
    ident = sql.Identifier(dbname)
    with psycopg.connect(postgres_server_uri, autocommit=True) as conn:
        # template0 never has open connections, so concurrent creations cannot clash.
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(ident))
    try:
        yield with_database(postgres_server_uri, dbname)
    finally:
        with psycopg.connect(postgres_server_uri, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))


@pytest.fixture(scope="session")
def make_postgres_database(postgres_server_uri: str) -> Iterator[Callable[[], str]]:
    """Creates fresh, uniquely named databases (for module-scoped fixtures); all are
    dropped at the end of the run."""
    made: list[str] = []

    def make() -> str:
        dbname = f"sqlml_test_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(postgres_server_uri, autocommit=True) as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(dbname))
            )
        made.append(dbname)
        return with_database(postgres_server_uri, dbname)

    yield make
    with psycopg.connect(postgres_server_uri, autocommit=True) as conn:
        for dbname in made:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
            )


@dataclass(frozen=True)
class Cell:
    """One cell of the engine x catalog matrix."""

    engine: str
    catalog: str
    catalog_uri: str

    def __str__(self) -> str:
        return f"{self.engine}-{self.catalog}"


def _known_gaps(request: pytest.FixtureRequest, engine: str, catalog: str) -> None:
    """Turn the test's ``notimpl`` / ``notyet`` marks naming this cell into strict xfails."""
    for kind in ("notimpl", "notyet"):
        for mark in request.node.iter_markers(kind):
            engines = mark.kwargs.get("engines", ENGINES)
            catalogs = mark.kwargs.get("catalogs", CATALOGS)
            if engine in engines and catalog in catalogs:
                reason = mark.args[0] if mark.args else mark.kwargs["reason"]
                request.applymarker(pytest.mark.xfail(strict=True, reason=f"{kind}: {reason}"))


def _catalog_uri(request: pytest.FixtureRequest, catalog: str, directory: Path) -> str:
    from sqlml.catalog import open_catalog

    if catalog == "sqlite":
        uri = f"sqlite:///{directory / 'catalog.db'}"
    else:
        uri = request.getfixturevalue("make_postgres_database")()
    with open_catalog(uri, migrate=True):
        pass
    return uri


@pytest.fixture(params=CELLS, ids=CELL_IDS)
def cell(request: pytest.FixtureRequest, tmp_path: Path) -> Cell:
    """Each engine x catalog, with a fresh migrated catalog; known gaps become strict xfails."""
    engine, catalog = request.param
    _known_gaps(request, engine, catalog)
    return Cell(engine, catalog, _catalog_uri(request, catalog, tmp_path))


@pytest.fixture(scope="module", params=CELLS, ids=CELL_IDS)
def module_cell(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Cell:
    """Like ``cell``, shared by a module's tests (pytest runs them cell by cell); the
    autouse ``gaps`` fixture applies their marks."""
    engine, catalog = request.param
    directory = tmp_path_factory.mktemp(f"{engine}-{catalog}")
    return Cell(engine, catalog, _catalog_uri(request, catalog, directory))


@pytest.fixture(autouse=True)
def gaps(request: pytest.FixtureRequest) -> None:
    """Applies ``notimpl`` / ``notyet`` marks for tests on ``module_cell``."""
    if "module_cell" in request.fixturenames:
        found: Cell = request.getfixturevalue("module_cell")
        _known_gaps(request, found.engine, found.catalog)
