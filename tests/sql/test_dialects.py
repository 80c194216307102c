"""One registry of dialects: engines and compile targets, with a suggestion on a typo."""

from __future__ import annotations

import pytest

from sqlml.errors import UnknownDialect, UnknownEngine
from sqlml.sql.dialect import Sqlml
from sqlml.sql.dialect_datafusion import SqlmlDataFusion
from sqlml.sql.dialects import dialect_names, engine_dialect, get_dialect
from sqlml.sql.frontend import parse_statement, split_statements


@pytest.mark.parametrize(
    ("name", "dialect"), [("duckdb", Sqlml), ("DataFusion", SqlmlDataFusion), (" duckdb ", Sqlml)]
)
def test_engine_names_resolve_to_sqlml_dialects(name: str, dialect: type[Sqlml]) -> None:
    assert engine_dialect(name) is dialect


def test_an_engine_typo_is_answered_with_the_closest_name() -> None:
    with pytest.raises(UnknownEngine) as info:
        engine_dialect("datafusoin")
    assert "did you mean 'datafusion'?" in str(info.value)
    assert info.value.choices == ("datafusion", "duckdb")


def test_compile_targets_are_sqlglots_and_datafusion_without_sqlmls_own() -> None:
    names = dialect_names()
    assert {"postgres", "duckdb", "datafusion", "snowflake"} <= set(names)
    assert not {"sqlml", "sqlmldatafusion"} & set(names)
    assert isinstance(get_dialect("DataFusion"), SqlmlDataFusion)
    with pytest.raises(UnknownDialect, match="did you mean 'snowflake'"):
        get_dialect("snowflak")


def test_the_front_end_reads_each_engine_in_its_own_dialect() -> None:
    with pytest.raises(UnknownEngine, match="did you mean 'duckdb'"):
        parse_statement("SELECT predict('m', *) FROM t", "duckd")
    assert split_statements("SELECT 1; SELECT 2") == ["SELECT 1", "SELECT 2"]
