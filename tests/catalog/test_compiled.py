"""Compiled expressions in the catalog (``sqlml compile --save``), on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import sqlite3
from urllib.parse import urlsplit

import psycopg
import pytest

import sqlml
from sqlml.catalog import Catalog, CompiledExpression, open_catalog
from sqlml.errors import (
    CatalogError,
    CompiledNotFound,
    ModelNotFound,
    SchemaOutOfDate,
    VersionNotFound,
)

from .conftest import make_spec
from .test_catalog import raw_execute


def raw_count(uri: str, table: str) -> int:
    """The number of rows of a catalog table, read with the plain driver."""
    query = f"SELECT count(*) FROM {table}"
    if uri.startswith("sqlite"):
        with sqlite3.connect(urlsplit(uri).path[1:]) as conn:
            return int(conn.execute(query).fetchone()[0])
    with psycopg.connect(uri) as pg:
        row = pg.execute(query.encode()).fetchone()
    assert row is not None
    return int(row[0])


def test_save_then_get(catalog: Catalog) -> None:
    catalog.register_version("churn", make_spec(), b"1")
    before = dt.datetime.now(dt.UTC)
    saved = catalog.save_compiled("churn", 1, "postgres", "predict", "CASE WHEN 1 END")
    got = catalog.get_compiled("churn", 1, "postgres")
    assert got == saved
    assert (got.model, got.version, got.dialect, got.kind) == ("churn", 1, "postgres", "predict")
    assert got.expression == "CASE WHEN 1 END"
    assert got.ref == "churn@1"
    assert before <= got.created_at <= dt.datetime.now(dt.UTC)
    assert isinstance(got, CompiledExpression)


def test_kinds_and_dialects_are_kept_apart_and_dialect_case_is_ignored(
    catalog_uri: str, catalog: Catalog
) -> None:
    catalog.register_version("churn", make_spec(), b"1")
    catalog.save_compiled("churn", 1, "Postgres", "predict", "p_label")
    catalog.save_compiled("churn", 1, "postgres", "proba", "p_proba")
    catalog.save_compiled("churn", 1, "duckdb", "predict", "d_label")
    assert catalog.get_compiled("churn", 1, "POSTGRES", "predict").expression == "p_label"
    assert catalog.get_compiled("churn", 1, "postgres", "proba").expression == "p_proba"
    assert catalog.get_compiled("churn", 1, "duckdb").expression == "d_label"
    assert catalog.get_compiled("churn", 1, "postgres").dialect == "postgres"
    assert raw_count(catalog_uri, "model_compiled") == 3


def test_saving_again_replaces(catalog_uri: str, catalog: Catalog) -> None:
    catalog.register_version("churn", make_spec(), b"1")
    first = catalog.save_compiled("churn", 1, "postgres", "predict", "old")
    second = catalog.save_compiled("churn", 1, "postgres", "predict", "new")
    got = catalog.get_compiled("churn", 1, "postgres", "predict")
    assert got.expression == "new"
    assert got.created_at == second.created_at >= first.created_at
    assert raw_count(catalog_uri, "model_compiled") == 1


def test_absent_says_which_command_stores_it(catalog: Catalog) -> None:
    catalog.register_version("churn", make_spec(), b"1")
    catalog.register_version("churn", make_spec(), b"2")
    catalog.register_version("churn", make_spec(), b"3")
    catalog.save_compiled("churn", 1, "postgres", "predict", "x")
    catalog.save_compiled("churn", 2, "duckdb", "predict", "x")
    with pytest.raises(CompiledNotFound) as info:
        catalog.get_compiled("churn", 2, "postgres", "proba")
    assert str(info.value) == (
        "model 'churn' version 2 has no compiled 'proba' expression for dialect 'postgres' "
        "(saved for this version: duckdb predict); store it with "
        "`sqlml compile churn@2 --dialect postgres --proba --save`"
    )
    assert (info.value.name, info.value.version) == ("churn", 2)
    assert (info.value.dialect, info.value.kind) == ("postgres", "proba")
    assert info.value.available_compiled == (("duckdb", "predict"),)
    assert isinstance(info.value, ModelNotFound)
    with pytest.raises(CompiledNotFound, match=r"\(saved for this version: none\).*--save`$"):
        catalog.get_compiled("churn", 3, "datafusion")


def test_unknown_model_or_version(catalog: Catalog) -> None:
    catalog.register_version("churn", make_spec(), b"1")
    with pytest.raises(ModelNotFound, match="model 'nope' does not exist"):
        catalog.save_compiled("nope", 1, "postgres", "predict", "x")
    with pytest.raises(VersionNotFound, match="no version 7"):
        catalog.save_compiled("churn", 7, "postgres", "predict", "x")
    with pytest.raises(ModelNotFound, match="model 'nope' does not exist"):
        catalog.get_compiled("nope", 1, "postgres")
    with pytest.raises(VersionNotFound, match="no version 7"):
        catalog.get_compiled("churn", 7, "postgres")


def test_an_unknown_kind_is_refused(catalog_uri: str, catalog: Catalog) -> None:
    catalog.register_version("churn", make_spec(), b"1")
    with pytest.raises(CatalogError, match="kind"):
        catalog.save_compiled("churn", 1, "postgres", "label", "x")  # type: ignore[arg-type]
    assert raw_count(catalog_uri, "model_compiled") == 0


def test_deleting_a_version_or_model_deletes_its_expressions(
    catalog_uri: str, catalog: Catalog
) -> None:
    catalog.register_version("churn", make_spec(), b"1")
    catalog.register_version("churn", make_spec(), b"2")
    for version in (1, 2):
        catalog.save_compiled("churn", version, "postgres", "predict", "x")
    catalog.delete_version("churn", 1)
    assert raw_count(catalog_uri, "model_compiled") == 1
    assert catalog.get_compiled("churn", 2, "postgres").expression == "x"
    catalog.delete_model("churn")
    assert raw_count(catalog_uri, "model_compiled") == 0


def test_a_catalog_made_before_0002_is_upgraded_with_its_models(catalog_uri: str) -> None:
    # A catalog as sqlml left it before model_compiled existed: only 0001 applied.
    with open_catalog(catalog_uri, migrate=True) as catalog:
        catalog.register_version("churn", make_spec(), b"1")
    raw_execute(catalog_uri, "DROP TABLE model_alias_history")
    raw_execute(catalog_uri, "DROP TABLE model_compiled")
    raw_execute(catalog_uri, "ALTER TABLE models DROP COLUMN owner")
    raw_execute(catalog_uri, "DELETE FROM schema_migrations WHERE version >= 2")
    if catalog_uri.startswith("postgresql"):
        with pytest.raises(SchemaOutOfDate) as info:
            open_catalog(catalog_uri)
        assert (info.value.current, info.value.expected) == (1, 4)
        with open_catalog(catalog_uri, check_schema=False) as catalog:
            migrated = [m.name for m in catalog.migrate()]
            assert migrated == ["compiled_models", "model_owner", "alias_history"]
    with open_catalog(catalog_uri) as catalog:  # SQLite migrates on open
        assert [s.applied for s in catalog.migration_status()] == [True, True, True, True]
        assert catalog.get_model("churn").owner is None
        catalog.save_compiled("churn", 1, "postgres", "predict", "x")
        assert catalog.get_compiled("churn", 1, "postgres").expression == "x"
        assert catalog.load_artifact("churn", 1) == b"1"


def test_session_compile_model_saves_under_the_resolved_version(catalog: Catalog) -> None:
    with sqlml.connect(catalog=catalog) as session:
        session.sql(
            "CREATE TABLE t AS SELECT i::DOUBLE AS x, i % 2 = 0 AS even FROM range(60) r(i)"
        )
        for _ in range(2):
            session.sql(
                "CREATE OR REPLACE MODEL m OPTIONS (algorithm = 'logistic', target = 'even') "
                "AS SELECT * FROM t"
            )
        session.catalog.set_alias("m", "prod", 1)
        label = session.compile_model("m@prod", "Postgres", save=True)
        proba = session.compile_model("m@prod", "postgres", proba=True, save=True)
        session.compile_model("m", "postgres")  # without save: version 2 stays unsaved
        assert catalog.get_compiled("m", 1, "postgres", "predict").expression == label
        assert catalog.get_compiled("m", 1, "postgres", "proba").expression == proba
        assert label != proba
        with pytest.raises(CompiledNotFound):
            catalog.get_compiled("m", 2, "postgres")
