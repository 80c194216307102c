"""Every catalog operation, on SQLite and on the real PostgreSQL."""

from __future__ import annotations

import hashlib
import sqlite3
from urllib.parse import urlsplit

import psycopg
import pytest

from sqlml.catalog import Catalog, Feature, ModelRef, open_catalog
from sqlml.catalog.base import Catalog as CatalogABC
from sqlml.catalog.entities import arrow_type_from_string
from sqlml.errors import (
    AliasInvalid,
    AliasNotFound,
    ArtifactCorrupted,
    CatalogUnavailable,
    InvalidModelName,
    ModelNotFound,
    SqlmlError,
    UnsupportedCatalogURI,
    VersionNotFound,
)

from .conftest import make_spec


def raw_execute(uri: str, query: str, params: tuple[object, ...] = ()) -> None:
    """Change the catalog's database behind the catalog's back, with the plain driver."""
    if uri.startswith("sqlite"):
        with sqlite3.connect(urlsplit(uri).path[1:]) as conn:
            conn.execute(query, params)
    else:
        with psycopg.connect(uri, autocommit=True) as conn:
            conn.execute(query.replace("?", "%s").encode(), params)


def test_register_assigns_consecutive_versions_and_keeps_lineage(catalog: Catalog) -> None:
    first = catalog.register_version("churn", make_spec(), b"model-1")
    second = catalog.register_version("churn", make_spec(row_count=2000), b"model-2")
    assert (first.version, second.version) == (1, 2)
    got = catalog.get_version("churn", 1)
    assert got == first
    assert got.features[1] == Feature("plan", "string", ("basic", "pro"))
    assert got.classes == ("no", "yes")
    assert got.hyperparameters == {"num_leaves": 31, "learning_rate": 0.1}
    assert got.metrics["roc_auc"] == 0.95
    assert got.training_sql == "SELECT * FROM customers"
    assert got.sha256 == hashlib.sha256(b"model-1").hexdigest()
    assert got.created_at.tzinfo is not None
    assert catalog.get_version("churn") == second
    assert catalog.get_version("churn").row_count == 2000


def test_labels_of_every_type_round_trip(catalog: Catalog) -> None:
    for classes in [(False, True), (0, 1, 2), ("a", "b")]:
        catalog.register_version("labels", make_spec(classes=classes), b"x")
        assert catalog.get_version("labels").classes == classes


def test_models_and_versions_are_listed(catalog: Catalog) -> None:
    assert catalog.list_models() == []
    catalog.register_version("b_model", make_spec(task="regression", classes=()), b"1")
    catalog.register_version("a_model", make_spec(), b"2")
    catalog.register_version("a_model", make_spec(), b"3")
    assert [m.name for m in catalog.list_models()] == ["a_model", "b_model"]
    assert catalog.get_model("b_model").task == "regression"
    assert [v.version for v in catalog.list_versions("a_model")] == [1, 2]


def test_aliases_set_move_remove(catalog: Catalog) -> None:
    for payload in (b"1", b"2", b"3"):
        catalog.register_version("churn", make_spec(), payload)
    catalog.set_alias("churn", "production", 1)
    assert catalog.get_alias("churn", "production").version == 1
    assert catalog.resolve("churn@production").version == 1
    catalog.set_alias("churn", "production", 3)
    assert catalog.resolve(ModelRef.parse("churn@production")).version == 3
    catalog.set_alias("churn", "staging", 2)
    assert [(a.alias, a.version) for a in catalog.list_aliases("churn")] == [
        ("production", 3),
        ("staging", 2),
    ]
    catalog.remove_alias("churn", "staging")
    assert [a.alias for a in catalog.list_aliases()] == ["production"]
    with pytest.raises(AliasNotFound, match=r"'staging'.*its aliases: production"):
        catalog.get_alias("churn", "staging")
    with pytest.raises(AliasNotFound):
        catalog.remove_alias("churn", "staging")


def test_alias_to_a_missing_version_or_bad_alias_is_refused(catalog: Catalog) -> None:
    catalog.register_version("churn", make_spec(), b"1")
    with pytest.raises(VersionNotFound, match="no version 9; its versions: 1"):
        catalog.set_alias("churn", "production", 9)
    with pytest.raises(AliasInvalid):
        catalog.set_alias("churn", "12", 1)
    with pytest.raises(AliasInvalid, match="reserved"):
        catalog.set_alias("churn", "latest", 1)
    assert catalog.list_aliases() == []


def test_resolve_forms(catalog: Catalog) -> None:
    catalog.register_version("churn", make_spec(), b"1")
    catalog.register_version("churn", make_spec(), b"2")
    assert catalog.resolve("churn").version == 2
    assert catalog.resolve("churn@latest").version == 2
    assert catalog.resolve("churn@1").version == 1
    assert catalog.resolve("churn@1").ref == "churn@1"


def test_delete_version_takes_its_artifact_and_aliases(catalog_uri: str, catalog: Catalog) -> None:
    catalog.register_version("churn", make_spec(), b"1")
    catalog.register_version("churn", make_spec(), b"2")
    catalog.set_alias("churn", "production", 1)
    catalog.delete_version("churn", 1)
    assert [v.version for v in catalog.list_versions("churn")] == [2]
    assert catalog.list_aliases("churn") == []
    with pytest.raises(VersionNotFound):
        catalog.load_artifact("churn", 1)
    with pytest.raises(VersionNotFound, match="no version 1; its versions: 2"):
        catalog.delete_version("churn", 1)
    # Numbers are never reused within a model.
    assert catalog.register_version("churn", make_spec(), b"3").version == 3


def test_delete_model_takes_everything(catalog: Catalog) -> None:
    catalog.register_version("churn", make_spec(), b"1")
    catalog.set_alias("churn", "production", 1)
    catalog.register_version("other", make_spec(), b"1")
    catalog.delete_model("churn")
    assert [m.name for m in catalog.list_models()] == ["other"]
    assert [a.model for a in catalog.list_aliases()] == []
    with pytest.raises(ModelNotFound, match="models in the catalog: other"):
        catalog.get_version("churn")
    with pytest.raises(ModelNotFound):
        catalog.delete_model("churn")
    # A re-created model starts again at version 1.
    assert catalog.register_version("churn", make_spec(), b"again").version == 1


def test_model_not_found_lists_existing_models(catalog: Catalog) -> None:
    catalog.register_version("alpha", make_spec(), b"1")
    catalog.register_version("beta", make_spec(), b"1")
    with pytest.raises(ModelNotFound) as info:
        catalog.get_model("gamma")
    assert info.value.name == "gamma"
    assert info.value.available == ("alpha", "beta")
    assert "alpha, beta" in str(info.value)
    with pytest.raises(VersionNotFound) as vinfo:
        catalog.resolve("alpha@4")
    assert (vinfo.value.name, vinfo.value.version) == ("alpha", 4)
    assert isinstance(vinfo.value, ModelNotFound)


def test_model_without_versions(catalog: Catalog) -> None:
    catalog.register_version("churn", make_spec(), b"1")
    catalog.delete_version("churn", 1)
    with pytest.raises(VersionNotFound, match="has no versions"):
        catalog.get_version("churn")


@pytest.mark.parametrize("name", ["", "1abc", "churn-model", "a b", "x" * 64, "drop;table"])
def test_bad_model_names_are_refused(catalog: Catalog, name: str) -> None:
    with pytest.raises(InvalidModelName, match="invalid model name"):
        catalog.register_version(name, make_spec(), b"1")
    assert catalog.list_models() == []


def test_artifact_round_trips_and_tampering_is_refused(catalog_uri: str, catalog: Catalog) -> None:
    payload = bytes(range(256)) * 100
    mv = catalog.register_version("churn", make_spec(), payload)
    assert catalog.load_artifact("churn", mv.version) == payload
    raw_execute(
        catalog_uri,
        "UPDATE model_artifacts SET data = ? WHERE model = ? AND version = ?",
        (payload[:-1] + b"\x00", "churn", 1),
    )
    with pytest.raises(ArtifactCorrupted) as info:
        catalog.load_artifact("churn", 1)
    assert (info.value.name, info.value.version) == ("churn", 1)
    assert "'churn' version 1 is corrupted" in str(info.value)


def test_failure_mid_registration_leaves_nothing(
    catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog.register_version("kept", make_spec(), b"1")

    def fail(*args: object) -> None:
        raise RuntimeError("disk full while writing the artifact")

    # The model and version rows are written by now; the artifact write fails.
    monkeypatch.setattr(catalog, "_insert_artifact", fail)
    with pytest.raises(RuntimeError, match="disk full"):
        catalog.register_version("churn", make_spec(), b"1")
    with pytest.raises(RuntimeError, match="disk full"):
        catalog.register_version("kept", make_spec(), b"2")
    monkeypatch.undo()
    assert [m.name for m in catalog.list_models()] == ["kept"]
    assert [v.version for v in catalog.list_versions("kept")] == [1]
    # The failed attempt consumed no version number.
    assert catalog.register_version("kept", make_spec(), b"2").version == 2


def test_a_new_catalog_object_sees_the_same_state(catalog_uri: str, catalog: Catalog) -> None:
    mv = catalog.register_version("churn", make_spec(), b"1")
    catalog.set_alias("churn", "production", 1)
    with open_catalog(catalog_uri) as again:
        assert again.resolve("churn@production") == mv


def test_incomplete_catalog_subclass_cannot_be_instantiated() -> None:
    class Incomplete(CatalogABC):
        def list_models(self) -> list[object]:  # type: ignore[override]
            return []

    with pytest.raises(TypeError, match="abstract"):
        Incomplete()  # type: ignore[abstract]


def test_unknown_scheme_lists_supported_ones() -> None:
    with pytest.raises(UnsupportedCatalogURI, match="supported schemes: sqlite, postgresql"):
        open_catalog("mysql://localhost/db")
    with pytest.raises(UnsupportedCatalogURI):
        open_catalog("catalog.db")


def test_unreachable_postgres_names_the_uri_without_password() -> None:
    uri = "postgresql://ada:s3cret@127.0.0.1:1/nowhere"
    with pytest.raises(CatalogUnavailable) as info:
        open_catalog(uri)
    message = str(info.value)
    assert "postgresql://ada:***@127.0.0.1:1/nowhere" in message
    assert "s3cret" not in message
    assert isinstance(info.value, SqlmlError)
    assert isinstance(info.value.__cause__, psycopg.Error)


def test_default_catalog_is_a_sqlite_file_in_the_working_directory(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # type: ignore[arg-type]
    with open_catalog() as catalog:
        assert catalog.uri == "sqlite:///sqlml.db"
        catalog.register_version("churn", make_spec(), b"1")
    with open_catalog("sqlite:///sqlml.db") as catalog:
        assert catalog.get_version("churn").version == 1


@pytest.mark.parametrize(
    "text", ["int64", "double", "string", "bool", "date32[day]", "timestamp[us, tz=UTC]"]
)
def test_feature_types_round_trip(text: str) -> None:
    assert str(arrow_type_from_string(text)) == text
    assert str(Feature("x", text).arrow_type) == text
