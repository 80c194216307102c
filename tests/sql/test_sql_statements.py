"""The sqlml statements and functions parse into the right objects; mistakes are clear."""

from __future__ import annotations

import doctest

import pytest
import sqlglot
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlglot import exp

import sqlml.sql
from sqlml.catalog.entities import ModelRef
from sqlml.errors import SqlSyntaxError, UnknownEngine
from sqlml.sql import (
    CreateModelStatement,
    DeployModelStatement,
    DescribeModelStatement,
    DropModelStatement,
    QueryStatement,
    ShowModelsStatement,
    Sqlml,
    dialect_datafusion,
    expressions,
    frontend,
    parse_statement,
    references,
    rewrite,
    rewrite_query,
)
from sqlml.sql import dialect as sqlml_dialect


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        (
            "CREATE MODEL churn OPTIONS (task = 'classification', target = 'churned') "
            "AS SELECT * FROM customers",
            CreateModelStatement(
                "churn",
                False,
                {"task": "classification", "target": "churned"},
                "SELECT * FROM customers",
            ),
        ),
        (
            "create or replace model Churn_2\n  options (TARGET='y', Num_Leaves=31, "
            "learning_rate=0.05, lambda_l1=-1e-3, verbose=false, exclude=('id', 'signup'), "
            "cats=['plan'], one=('x'), algorithm=lightgbm, seed=NULL)\n"
            "as select *  from t  -- the data\n",
            CreateModelStatement(
                "Churn_2",
                True,
                {
                    "target": "y",
                    "num_leaves": 31,
                    "learning_rate": 0.05,
                    "lambda_l1": -0.001,
                    "verbose": False,
                    "exclude": ["id", "signup"],
                    "cats": ["plan"],
                    "one": ["x"],
                    "algorithm": "lightgbm",
                    "seed": None,
                },
                "select *  from t",
            ),
        ),
        (
            "CREATE MODEL m OPTIONS (target = 'y') AS (SELECT a, y FROM t WHERE a > 1)",
            CreateModelStatement("m", False, {"target": "y"}, "SELECT a, y FROM t WHERE a > 1"),
        ),
        (
            "CREATE MODEL m AS WITH s AS (SELECT 1 AS a) SELECT * FROM s",
            CreateModelStatement("m", False, {}, "WITH s AS (SELECT 1 AS a) SELECT * FROM s"),
        ),
        (
            "CREATE MODEL m OPTIONS () AS (SELECT 1) UNION ALL (SELECT 2)",
            CreateModelStatement("m", False, {}, "(SELECT 1) UNION ALL (SELECT 2)"),
        ),
        (
            "CREATE MODEL \"m\" OPTIONS (target = 'y') AS FROM t SELECT a, y",
            CreateModelStatement("m", False, {"target": "y"}, "FROM t SELECT a, y"),
        ),
        ("SHOW MODELS", ShowModelsStatement()),
        ("show models;", ShowModelsStatement()),
        ("DESCRIBE MODEL churn", DescribeModelStatement("churn")),
        ("DROP MODEL churn", DropModelStatement("churn", None, False)),
        ("DROP MODEL IF EXISTS churn", DropModelStatement("churn", None, True)),
        ("DROP MODEL churn VERSION 3", DropModelStatement("churn", 3, False)),
        ("drop model if exists churn version 12", DropModelStatement("churn", 12, True)),
        ("DEPLOY MODEL churn VERSION 2", DeployModelStatement("churn", 2, "production")),
        ("DEPLOY MODEL churn VERSION 2 AS staging", DeployModelStatement("churn", 2, "staging")),
        (
            "-- go live\nDEPLOY MODEL churn VERSION 7 AS canary",
            DeployModelStatement("churn", 7, "canary"),
        ),
    ],
)
def test_statements_parse(sql: str, expected: object) -> None:
    assert parse_statement(sql) == expected


@pytest.mark.parametrize(
    ("sql", "refs"),
    [
        ("SELECT predict('churn', *) FROM t", [ModelRef("churn")]),
        (
            "SELECT predict('churn@3', *), predict_proba('churn@production', a, b) FROM t "
            "WHERE predict('churn@3', t) > 0 ORDER BY predict('other@latest', *)",
            [ModelRef("churn", 3), ModelRef("churn", alias="production"), ModelRef("other")],
        ),
        (
            "WITH s AS (SELECT predict('a', c.*) AS p FROM c JOIN o USING (id)) "
            "SELECT * FROM s WHERE p > (SELECT avg(predict_proba('b', *)) FROM u)",
            [ModelRef("a"), ModelRef("b")],
        ),
        (
            "SELECT * FROM evaluate('churn@2', 'SELECT * FROM holdout') AS e "
            "JOIN feature_importance('churn') USING (feature)",
            [ModelRef("churn", 2), ModelRef("churn")],
        ),
        ("EXPLAIN SELECT predict('churn', *) FROM t", [ModelRef("churn")]),
        ("INSERT INTO scores SELECT id, predict('churn', *) FROM t", [ModelRef("churn")]),
    ],
)
def test_queries_list_their_model_references(sql: str, refs: list[ModelRef]) -> None:
    explain = sql.startswith("EXPLAIN")
    assert parse_statement(sql) == QueryStatement(sql, tuple(refs), explain=explain)


def test_custom_expressions_come_out_of_the_dialect() -> None:
    tree = sqlglot.parse_one(
        "SELECT predict('m', *), predict_proba('m@2', a) FROM t", dialect=Sqlml
    )
    calls = list(tree.find_all(expressions.ModelFunction))
    assert [type(call) for call in calls] == [
        expressions.SqlmlPredict,
        expressions.SqlmlPredictProba,
    ]
    assert [call.ref for call in calls] == ["m", "m@2"]
    assert not list(tree.find_all(exp.Predict))
    # The DuckDB dialect itself is left alone.
    duck = sqlglot.parse_one("SELECT predict('m', *) FROM t", dialect="duckdb")
    assert isinstance(duck.expressions[0], exp.Predict)


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE OR REPLACE MODEL m OPTIONS (target = 'y', exclude = ('a', 'b')) AS SELECT * FROM t",
        "SHOW MODELS",
        "DESCRIBE MODEL m",
        "DROP MODEL IF EXISTS m VERSION 2",
        "DEPLOY MODEL m VERSION 2 AS staging",
        "EXPLAIN SELECT PREDICT('m', *) FROM t",
    ],
)
def test_the_dialect_generates_what_it_parses(sql: str) -> None:
    assert sqlglot.parse_one(sql, dialect=Sqlml).sql(dialect=Sqlml) == sql


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ('CREATE MODEL "bad name" AS SELECT 1', "invalid model name 'bad name'"),
        ("CREATE MODEL db.m AS SELECT 1", "Model names are not qualified"),
        ("CREATE MODEL AS SELECT 1", "Expected a model name after CREATE MODEL"),
        ("CREATE MODEL m OPTIONS (a = 1, A = 2) AS SELECT 1", "Option 'a' is given twice"),
        ("CREATE MODEL m OPTIONS (a = b + 1) AS SELECT 1", "must be a string, number, boolean"),
        ("CREATE MODEL m OPTIONS (a 1) AS SELECT 1", "Expected '=' after option 'a'"),
        ("CREATE MODEL m OPTIONS target = 'y' AS SELECT 1", "Expected '(' after OPTIONS"),
        ("CREATE MODEL m OPTIONS (target = 'y')", "Expected AS <select>"),
        ("CREATE MODEL m SELECT 1", "Expected AS <select>"),
        ("CREATE MODEL m AS 1", "Expected a SELECT query after AS"),
        ("DROP MODEL m VERSION x", "Expected a version number (1, 2, ...) after VERSION"),
        ("DROP MODEL m VERSION 1.5", "Expected a version number"),
        ("DROP MODEL m VERSION 0", "Expected a version number"),
        ("DROP MODEL m VERSION", "Expected a version number"),
        ("DEPLOY MODEL m", "Expected VERSION <number> or ROLLBACK after DEPLOY MODEL m"),
        ("DEPLOY MODEL m VERSION 2 AS latest", "'latest' is reserved"),
        ("DEPLOY MODEL m VERSION 2 AS 'prod'", "Expected an alias name after AS"),
        ("DESCRIBE MODEL m extra", 'syntax error at or near "extra"'),
        ("SELECT predict() FROM t", "predict() needs the model name as its first argument"),
        ("SELECT predict(m, *) FROM t", "takes the model name as a string literal first"),
        ("SELECT predict(1, *) FROM t", "takes the model name as a string literal first"),
        ("SELECT predict('m') FROM t", "predict() needs its input columns"),
        ("SELECT predict_proba('m', a + 1) FROM t", "takes column names, *, t.* or a table"),
        ("SELECT predict('bad name', *) FROM t", "invalid model name 'bad name'"),
        ("SELECT predict('m@bad-alias', *) FROM t", "invalid alias 'bad-alias'"),
        ("SELECT * FROM predict('m', *)", "predict() is a scalar function"),
        ("SELECT evaluate('m', 'SELECT 1')", "evaluate() is a table function"),
        ("SELECT * FROM evaluate('m')", "evaluate() takes a model name and a query"),
        ("SELECT * FROM evaluate('m', (SELECT 1))", "evaluate() takes a model name and a query"),
        ("SELECT * FROM feature_importance('m', 1)", "feature_importance() takes only"),
        ("SELECT predict('m', *) FROM WHERE", "line 1, column"),
        ("SELECT predict('m', *) FROM t; SELECT 1", "expected one statement"),
        ("EXPLAIN CREATE MODEL m AS SELECT 1", "EXPLAIN takes a query"),
    ],
)
def test_mistakes_are_syntax_errors_saying_what_was_expected(sql: str, message: str) -> None:
    with pytest.raises(SqlSyntaxError) as info:
        parse_statement(sql)
    assert message in str(info.value)
    assert info.value.sql == sql


def test_syntax_errors_carry_the_position() -> None:
    with pytest.raises(SqlSyntaxError, match=r"line 2, column \d+"):
        parse_statement("SELECT id,\n  predict(churn, *) FROM t")


def test_create_model_without_options_is_left_to_the_trainer() -> None:
    assert parse_statement("CREATE MODEL m AS SELECT 1") == CreateModelStatement(
        "m", False, {}, "SELECT 1"
    )


@pytest.mark.parametrize(
    "sql", ["SHOW MODELS", "CREATE MODEL m AS SELECT 1", "DROP MODEL m", "DEPLOY MODEL m VERSION 1"]
)
def test_rewrite_rejects_statements_that_are_not_queries(sql: str) -> None:
    with pytest.raises(SqlSyntaxError, match="is a sqlml statement, not a query"):
        rewrite_query(sql, lambda ref, kind: pytest.fail("no binding needed"))


def test_an_unknown_dialect_names_the_choices() -> None:
    with pytest.raises(UnknownEngine, match="duckdb"):
        parse_statement("SELECT predict('m', *) FROM t", dialect="oracle")


def test_public_api_is_sorted_and_complete() -> None:
    assert sqlml.sql.__all__ == sorted(sqlml.sql.__all__)
    assert all(hasattr(sqlml.sql, name) for name in sqlml.sql.__all__)


@pytest.mark.parametrize(
    "module", [frontend, sqlml_dialect, dialect_datafusion, rewrite, references]
)
def test_docstring_examples_run(module: object) -> None:
    result = doctest.testmod(module)  # type: ignore[arg-type]
    assert result.attempted > 0
    assert result.failed == 0


@given(
    words=st.lists(
        st.sampled_from(
            [
                "SELECT",
                "*",
                "FROM",
                "t",
                "predict('m',",
                "*)",
                "PREDICT('m', t)",
                "Model",
                "create",
                "MODEL",
                "m",
                "OPTIONS",
                "(target",
                "=",
                "'y')",
                "AS",
                "evaluate(",
                "'x')",
                "Feature_Importance('m')",
                "'predict(''m'', *)'",
                "-- predict(",
                "\n",
                ",",
                "x",
                "1.5",
                '"model"',
                "show",
                "models",
                "drop",
                "deploy",
                '"PREDICT"(',
                "describe",
                "(",
                ")",
            ]
        ),
        max_size=12,
    )
)
@settings(max_examples=300, deadline=None)
def test_only_text_with_sqlml_words_can_hold_sqlml(words: list[str]) -> None:
    # sqlml_tokens skips tokenizing text that spells none of the dialect's words: that
    # shortcut must never hide a construct the token scan would find.
    sql = " ".join(words)
    tokens = sqlml_dialect.Sqlml().tokenize(sql)
    if sqlml_dialect._holds_sqlml(tokens):
        found = sqlml_dialect.sqlml_tokens(sql)
        assert found is not None
        assert [token.text for token in found] == [token.text for token in tokens]
    if tokens:
        assert frontend.split_statements(sql) == [sql.strip()]
