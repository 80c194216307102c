"""Shared pytest fixtures.

PostgreSQL tests get their server from ``SQLML_TEST_POSTGRES_URI``. ``make test``
(via ``scripts/with-postgres.sh``) starts a private server and sets it; a developer may
point it at their own server instead. Each test using ``postgres_uri`` gets a fresh,
empty database that is dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

POSTGRES_URI_ENV = "SQLML_TEST_POSTGRES_URI"


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
