"""The sqlml.dbt plugin's functions on a DuckDB connection, in-process and without dbt.

dbt-duckdb installs plugins on its connection and runs each statement on a cursor of it,
inside a transaction; these tests do the same.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import sqlml
from sqlml.dbt import Plugin
from sqlml.engines.duckdb import DuckDBEngine
from tests.conftest import Cell

SEED = Path(__file__).resolve().parents[2] / "examples" / "dbt_churn" / "seeds" / "customers.csv"


@pytest.fixture(scope="module")
def catalog(module_cell: Cell) -> str:
    """The cell's catalog with ``churn`` (a classifier) and ``spend`` (a regression),
    trained on the cell's engine; the plugin scores them in DuckDB (dbt-duckdb's)."""
    uri = module_cell.catalog_uri
    with sqlml.connect(engine=module_cell.engine, catalog=uri) as session:
        session.read_csv("customers", SEED)
        session.sql(
            "CREATE MODEL churn OPTIONS (algorithm = 'logistic', target = 'churned', "
            "exclude = 'customer_id') AS SELECT * FROM customers"
        )
        session.sql(
            "CREATE MODEL spend OPTIONS (task = 'regression', algorithm = 'linear', "
            "target = 'monthly_spend', exclude = ('customer_id', 'churned')) "
            "AS SELECT * FROM customers WHERE monthly_spend IS NOT NULL"
        )
    return uri


@pytest.fixture
def connection(catalog: str) -> Iterator[Any]:
    """A DuckDB connection with the plugin installed and the seed as ``customers``."""
    engine = DuckDBEngine()
    engine.execute(f"CREATE TABLE customers AS SELECT * FROM read_csv('{SEED}')")
    plugin = Plugin("sqlml", {"catalog": catalog})
    plugin.configure_connection(engine.con)
    yield engine.con
    engine.close()
    plugin.catalog.close()


def scalar(con: Any, sql: str, *params: object) -> Any:
    """The one value a statement returns, run as dbt does: on a cursor, in a transaction."""
    cursor = con.cursor()
    cursor.execute("BEGIN")
    value = cursor.execute(sql, list(params)).fetchone()[0]
    cursor.execute("COMMIT")
    return value


def test_rewrite_gives_typed_columns(connection: Any, catalog: str, module_cell: Cell) -> None:
    # DuckDB's read_csv reads the yes/no labels as booleans, whose keys are 'true'/'false'.
    yes = "true" if module_cell.engine == "duckdb" else "yes"
    model = (
        "select c.customer_id, predict('churn', c) as label, predict('spend@1', c.*) as spend,"
        f" predict_proba('churn', c) as proba, predict_proba('churn', c)['{yes}'] as p_yes,"
        " predict('churn', c)::varchar as cast_label"
        " from customers c"
    )
    rewritten = scalar(connection, "select sqlml_rewrite($1)", model)
    assert "predict(" not in rewritten
    assert "'churn@1'" in rewritten
    # As in dbt: the rewritten SQL runs in a transaction begun after the plugin was installed.
    cursor = connection.cursor()
    cursor.execute("BEGIN")
    cursor.execute(f"CREATE TABLE scores AS {rewritten}")
    cursor.execute("COMMIT")
    types = dict(
        connection.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = 'scores'"
        ).fetchall()
    )
    # predict gives the target's type as trained: DuckDB's read_csv reads the yes/no
    # labels as booleans, DataFusion's as text.
    label = "BOOLEAN" if module_cell.engine == "duckdb" else "VARCHAR"
    assert types == {
        "customer_id": "BIGINT",
        "label": label,
        "spend": "DOUBLE",
        "proba": "MAP(VARCHAR, DOUBLE)",
        "p_yes": "DOUBLE",
        "cast_label": "VARCHAR",
    }
    built = connection.execute(
        "SELECT label, spend, p_yes FROM scores ORDER BY customer_id"
    ).fetchall()
    with sqlml.connect(catalog=catalog) as session:
        session.read_csv("customers", SEED)
        expected = session.sql(
            "SELECT predict('churn', *) AS label, predict('spend', *) AS spend, "
            f"predict_proba('churn', *)['{yes}'] AS p_yes FROM customers ORDER BY customer_id"
        ).to_pylist()
    assert [row[0] for row in built] == [row["label"] for row in expected]
    assert [row[1] for row in built] == pytest.approx([row["spend"] for row in expected])
    assert [row[2] for row in built] == pytest.approx([row["p_yes"] for row in expected])
    assert all(row[2] is not None for row in built)


def test_rewrite_keeps_sql_without_calls(connection: Any) -> None:
    sql = "select 'predict(' as s, plan as predict_plan -- predict('churn', c)\nfrom customers"
    assert scalar(connection, "select sqlml_rewrite($1)", sql) == sql


def test_rewrite_names_a_missing_model(connection: Any) -> None:
    with pytest.raises(Exception, match="model 'nope' does not exist; models in the catalog"):
        scalar(connection, "select sqlml_rewrite($1)", "select predict('nope', c) from t c")


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("select predict_proba('spend', *) from t", "NotAClassifier: model 'spend@1' is a regr"),
        ("select predict('churn', plan) from t", "FeatureMissing: model 'churn@1' needs feat"),
        ("select predict('churn' from t", "SqlSyntaxError: Expected ')' to close predict"),
    ],
)
def test_rewrite_errors_say_what_is_wrong(connection: Any, sql: str, message: str) -> None:
    with pytest.raises(Exception, match=re.escape(message)):
        scalar(connection, "select sqlml_rewrite($1)", sql)


@pytest.mark.parametrize(
    ("sql", "calls"),
    [
        ("select predict('churn', c) from customers c", True),
        ("select predict_proba('churn', *)['yes'] from customers", True),
        ("select PREDICT ('churn', customer_id, plan) from customers", True),
        ("select 'predict(' as s from customers", False),
        ("select 1 as x -- predict('churn', c)\nfrom customers", False),
        ("select 1 /* predict_proba('churn', *) */ from customers", False),
        ('select plan as predict_plan, "predict(" from customers', False),
    ],
)
def test_calls_predict(connection: Any, sql: str, calls: bool) -> None:
    assert scalar(connection, "select sqlml_calls_predict($1)", sql) is calls
