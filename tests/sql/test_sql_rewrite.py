"""predict()/predict_proba() are rewritten to engine calls with a struct built by name.

The rewritten SQL runs in a real DuckDB connection with Python UDFs standing in for the
model functions. ``bind`` is a test double of the catalog: a dict of feature lists.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

import duckdb  # noqa: TID251
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from sqlml.catalog.entities import ModelRef
from sqlml.engines.binding import Binding, argument_call, struct_call
from sqlml.errors import FeatureMissing
from sqlml.sql import TableFunctionCall, replace_table_functions, rewrite_query

FEATURES = {"churn": ("age", "Income Level", "plan"), "tiny": ("age",)}
LATEST = {"churn": 2, "tiny": 1}
ALIASES = {("churn", "production"): 1}

ROWS = [  # id, age, income level, plan
    (1, 30, 1.5, "basic"),
    (2, 40, 2.0, "pro"),
    (3, 50, 0.5, "pro"),
]


def score(age: float, income: float, plan: str, version: int) -> float:
    """What the fake model returns; every feature and the version change it."""
    return age + 100 * income + (1000 if plan == "pro" else 0) + 10000 * version


class FakeCatalog:
    """Resolves references like the catalog would, and counts what it was asked."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def __call__(self, ref: str, kind: Literal["predict", "predict_proba"]) -> Binding:
        self.calls.append((ref, kind))
        model = ModelRef.parse(ref)
        version = (
            model.version or ALIASES.get((model.name, model.alias or "")) or LATEST[model.name]
        )
        return struct_call(f"sqlml_{kind}", f"{model.name}@{version}", FEATURES[model.name])


@pytest.fixture
def bind() -> FakeCatalog:
    return FakeCatalog()


@pytest.fixture
def con() -> Iterator[tuple[duckdb.DuckDBPyConnection, list[pa.DataType]]]:
    """DuckDB with customers (and a copy with reversed, extra columns), orders and UDFs."""
    connection = duckdb.connect()
    connection.execute(
        'CREATE TABLE customers (id INTEGER, age INTEGER, "Income Level" DOUBLE, plan VARCHAR)'
    )
    connection.executemany("INSERT INTO customers VALUES (?, ?, ?, ?)", ROWS)
    connection.execute(
        "CREATE TABLE reversed AS SELECT plan, 'x' AS noise, \"Income Level\", age, id, "
        "age * 7 AS other FROM customers"
    )
    connection.execute(
        "CREATE TABLE orders AS SELECT * FROM (VALUES (10, 1, 5.0), (11, 3, 7.5)) "
        "AS o(order_id, customer_id, amount)"
    )
    seen: list[pa.DataType] = []

    def predict(ref: Any, row: Any) -> pa.Array:
        seen.append(row.type)
        version = pc.cast(pc.list_element(pc.split_pattern(ref, "@"), 1), pa.float64())
        plan = pc.if_else(pc.equal(pc.struct_field(row, "plan"), "pro"), 1000.0, 0.0)
        total = pc.add(
            pc.cast(pc.struct_field(row, "age"), pa.float64()),
            pc.multiply(pc.struct_field(row, "Income Level"), 100.0),
        )
        return pc.add(pc.add(total, plan), pc.multiply(version, 10000.0))

    def predict_proba(ref: Any, row: Any) -> pa.Array:
        return pc.divide(predict(ref, row), 1e6)

    for name, fn in (("sqlml_predict", predict), ("sqlml_predict_proba", predict_proba)):
        connection.create_function(
            name, fn, parameters=None, return_type="DOUBLE", type="arrow", null_handling="special"
        )
    yield connection, seen
    connection.close()


def run(con: Any, sql: str, bind: FakeCatalog) -> list[tuple[Any, ...]]:
    connection, _ = con
    result: list[tuple[Any, ...]] = connection.execute(rewrite_query(sql, bind)).fetchall()
    return result


def expected(version: int) -> list[tuple[int, float]]:
    return [(id_, score(age, inc, plan, version)) for id_, age, inc, plan in ROWS]


def test_star_is_rewritten_to_a_struct_of_exactly_the_features(bind: FakeCatalog) -> None:
    sql = "SELECT id, predict('churn', *) AS p FROM customers"
    assert rewrite_query(sql, bind) == (
        "SELECT id, sqlml_predict('churn@2', "
        """{'age': "age", 'Income Level': "Income Level", 'plan': "plan"}) AS p FROM customers"""
    )


def test_struct_is_built_by_name_so_column_order_and_extras_do_not_matter(
    con: Any, bind: FakeCatalog
) -> None:
    on_customers = run(con, "SELECT id, predict('churn', *) FROM customers ORDER BY id", bind)
    on_reversed = run(con, "SELECT id, predict('churn', *) FROM reversed ORDER BY id", bind)
    assert on_customers == on_reversed == expected(2)
    _, seen = con
    assert {tuple(field.name for field in type_) for type_ in seen} == {FEATURES["churn"]}


@pytest.mark.parametrize("table", ["customers", "reversed"])
@pytest.mark.parametrize(
    ("sql", "rows"),
    [
        (  # WHERE
            "SELECT id FROM {t} WHERE predict('churn', *) > 21000 ORDER BY id",
            [(2,), (3,)],
        ),
        (  # ORDER BY
            "SELECT id FROM {t} ORDER BY predict('churn@1', *) DESC",
            [(2,), (3,), (1,)],
        ),
        (  # CTE, with a version
            "WITH s AS (SELECT id, predict('churn@3', *) AS p FROM {t}) "
            "SELECT id, p FROM s ORDER BY id",
            expected(3),
        ),
        (  # alias, resolved by bind
            "SELECT id, predict('churn@production', *) FROM {t} ORDER BY 1",
            expected(1),
        ),
        (  # 'latest' is the newest version
            "SELECT id, predict('churn@latest', *) FROM {t} ORDER BY 1",
            expected(2),
        ),
        (  # subquery in FROM
            "SELECT id, p FROM (SELECT *, predict('churn', *) AS p FROM {t}) AS s ORDER BY id",
            expected(2),
        ),
        (  # correlated scalar subquery, qualified star
            "SELECT c.id, (SELECT max(predict('churn', c2.*)) FROM {t} AS c2 "
            "WHERE c2.id = c.id) FROM {t} AS c ORDER BY 1",
            expected(2),
        ),
        (  # native form: the row of an alias
            "SELECT id, predict('churn', c) FROM {t} AS c ORDER BY id",
            expected(2),
        ),
        (  # native form: the row of a table by name
            "SELECT id, predict('churn', {t}) FROM {t} ORDER BY id",
            expected(2),
        ),
        (  # listed columns, any order, extras ignored
            "SELECT id, predict('churn', plan, \"Income Level\", id, age) FROM {t} ORDER BY id",
            expected(2),
        ),
        (  # listed qualified columns
            "SELECT c.id, predict('churn', c.age, c.plan, c.\"Income Level\") "
            "FROM {t} AS c ORDER BY 1",
            expected(2),
        ),
        (  # predict_proba
            "SELECT id, predict_proba('churn@1', *) FROM {t} ORDER BY id",
            [(id_, value / 1e6) for id_, value in expected(1)],
        ),
        (  # in an expression and an aggregate
            "SELECT count(*) FILTER (WHERE predict('churn', *) - 20000 >= 1100) FROM {t}",
            [(2,)],
        ),
    ],
)
def test_predict_everywhere_an_expression_stands(
    con: Any, bind: FakeCatalog, table: str, sql: str, rows: list[tuple[Any, ...]]
) -> None:
    assert run(con, sql.format(t=table), bind) == rows


def test_in_a_join_star_leaves_features_unqualified(con: Any, bind: FakeCatalog) -> None:
    sql = (
        "SELECT o.order_id, predict('churn', *) FROM orders AS o "
        "JOIN reversed AS c ON c.id = o.customer_id ORDER BY 1"
    )
    assert "{'age': \"age\"" in rewrite_query(sql, bind)
    by_id = dict(expected(2))
    assert run(con, sql, bind) == [(10, by_id[1]), (11, by_id[3])]


def test_in_a_join_a_qualified_star_qualifies_the_features(con: Any, bind: FakeCatalog) -> None:
    # Both sides have every feature, so only the qualifier decides which is used.
    sql = (
        "SELECT a.id, predict('churn', b.*) FROM customers AS a "
        "JOIN customers AS b ON b.id = 4 - a.id ORDER BY 1"
    )
    assert "{'age': b.\"age\", 'Income Level': b.\"Income Level\"" in rewrite_query(sql, bind)
    by_id = dict(expected(2))
    assert run(con, sql, bind) == [(1, by_id[3]), (2, by_id[2]), (3, by_id[1])]


def test_text_around_the_calls_is_kept_exactly(bind: FakeCatalog) -> None:
    sql = (
        "FROM customers  -- who churns?\n"
        "SELECT  list_transform([1], lambda x: x + age) AS l,\n"
        "        PREDICT( 'tiny' ,\n * ) AS p, predict_proba('tiny@1', t.*)\n"
        "QUALIFY row_number() OVER (ORDER BY id) = 1"
    )
    assert rewrite_query(sql, bind) == (
        "FROM customers  -- who churns?\n"
        "SELECT  list_transform([1], lambda x: x + age) AS l,\n"
        """        sqlml_predict('tiny@1', {'age': "age"}) AS p, """
        """sqlml_predict_proba('tiny@1', {'age': t."age"}) AS "predict_proba(tiny@1)"\n"""
        "QUALIFY row_number() OVER (ORDER BY id) = 1"
    )


def test_bind_is_asked_once_per_reference_and_kind(bind: FakeCatalog) -> None:
    rewrite_query(
        "SELECT predict('churn', *), predict('churn', *), predict_proba('churn', *), "
        "predict('churn@2', *) FROM t",
        bind,
    )
    assert bind.calls == [
        ("churn", "predict"),
        ("churn", "predict_proba"),
        ("churn@2", "predict"),
    ]


def test_plain_sql_needs_no_binding(bind: FakeCatalog) -> None:
    sql = "SELECT predict FROM t  -- a column, not a call"
    assert rewrite_query(sql, bind) is sql
    assert bind.calls == []


@pytest.mark.parametrize(
    ("sql", "column", "available"),
    [
        ("SELECT predict('churn', age, plan) FROM t", "Income Level", ("age", "plan")),
        ("SELECT predict('churn', t.age) FROM t", "Income Level", ("age",)),
        ("SELECT predict('tiny', * EXCLUDE (age)) FROM t", "age", ()),
    ],
)
def test_a_missing_feature_is_named(
    bind: FakeCatalog, sql: str, column: str, available: tuple[str, ...]
) -> None:
    with pytest.raises(FeatureMissing) as info:
        rewrite_query(sql, bind)
    assert info.value.column == column
    assert info.value.available == available
    assert info.value.model.startswith(sql.split("'")[1])


def test_table_functions_are_replaced_by_the_callers_relations(con: Any) -> None:
    connection, _ = con
    calls: list[TableFunctionCall] = []

    def tables(call: TableFunctionCall) -> str:
        calls.append(call)
        name = f"sqlml_{call.function}_{len(calls)}"
        if call.function == "evaluate":
            data = pa.table({"metric": ["accuracy"], "value": [0.9]})
        else:
            data = pa.table({"feature": ["age", "plan"], "importance": [0.7, 0.3]})
        connection.register(name, data)
        return name

    sql = (
        "SELECT e.metric, evaluate.value, fi.importance FROM evaluate('churn@2', "
        "'SELECT * FROM holdout') AS e, evaluate('churn', 'SELECT 1'), "
        "feature_importance('churn@production') fi WHERE fi.feature = 'age'"
    )
    rewritten = replace_table_functions(sql, tables)
    assert rewritten == (
        "SELECT e.metric, evaluate.value, fi.importance FROM sqlml_evaluate_1 AS e, "
        "sqlml_evaluate_2 AS evaluate, sqlml_feature_importance_3 fi WHERE fi.feature = 'age'"
    )
    assert calls == [
        TableFunctionCall("evaluate", "churn@2", "SELECT * FROM holdout"),
        TableFunctionCall("evaluate", "churn", "SELECT 1"),
        TableFunctionCall("feature_importance", "churn@production"),
    ]
    assert calls[2].model_ref == ModelRef("churn", alias="production")
    assert connection.execute(rewritten).fetchall() == [("accuracy", 0.9, 0.7)]


def test_rewrite_query_can_replace_table_functions_too(bind: FakeCatalog) -> None:
    sql = "SELECT f.feature, predict('tiny', *) FROM feature_importance('tiny') AS f, customers"
    assert rewrite_query(sql, bind) == (
        """SELECT f.feature, sqlml_predict('tiny@1', {'age': "age"}) AS "predict(tiny)" """
        "FROM feature_importance('tiny') AS f, customers"
    )
    assert rewrite_query(sql, bind, tables=lambda call: "main.fi") == (
        """SELECT f.feature, sqlml_predict('tiny@1', {'age': "age"}) AS "predict(tiny)" """
        "FROM main.fi AS f, customers"
    )


def test_offsets_are_characters_not_bytes() -> None:
    def bind(ref: str, kind: str) -> Binding:
        return struct_call("f", ref, ("näme",))

    sql = "SELECT 'héllo 😀' AS \"naïve\", predict('m', *) FROM t -- ü"
    assert rewrite_query(sql, bind) == (
        "SELECT 'héllo 😀' AS \"naïve\", f('m', {'näme': \"näme\"}) AS \"predict(m)\" FROM t -- ü"
    )


def test_datafusion_calls_a_version_function_with_the_features_as_arguments() -> None:
    def bind(ref: str, kind: Literal["predict", "predict_proba"]) -> Binding:
        return argument_call(f"f_{kind}_2", "churn@2", FEATURES["churn"])

    sql = "SELECT id, predict('churn', c) AS p FROM customers c WHERE predict_proba('churn', *) > 0"
    assert rewrite_query(sql, bind, dialect="datafusion") == (
        'SELECT id, f_predict_2(c."age", c."Income Level", c."plan") AS p '
        'FROM customers c WHERE f_predict_proba_2("age", "Income Level", "plan") > 0'
    )
    struct = struct_call("f", "churn@2", ("age", "plan"))
    assert rewrite_query(
        "SELECT predict('churn', age, plan) FROM t", lambda ref, kind: struct, dialect="datafusion"
    ) == (
        "SELECT f('churn@2', named_struct('age', age, 'plan', plan)) AS \"predict(churn)\" FROM t"
    )
    assert (
        replace_table_functions(
            "SELECT * FROM feature_importance('m')", lambda call: "fi_1", dialect="datafusion"
        )
        == "SELECT * FROM fi_1 AS feature_importance"
    )
