"""The front end: split, parse and rewrite sqlml SQL for an engine.

Statements without a sqlml construct are handed back exactly as written, whether or not
sqlglot can parse them; only the text of sqlml's own constructs is ever replaced, so the
rest of a statement reaches the engine byte for byte.

>>> parse_statement("DROP MODEL churn VERSION 2")
DropModelStatement(name='churn', version=2, if_exists=False)
>>> from sqlml.engines.binding import struct_call
>>> bind = lambda ref, kind: struct_call("sqlml_predict", "churn@3", ("age", "plan"))
>>> print(rewrite_query("SELECT id, predict('churn', *) FROM t", bind))
SELECT id, sqlml_predict('churn@3', {'age': "age", 'plan': "plan"}) FROM t
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Literal

from sqlglot import exp
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokenizer_core import Token, TokenType

from sqlml.catalog.entities import ModelRef
from sqlml.engines.binding import Binding
from sqlml.errors import FeatureMissing, SqlSyntaxError
from sqlml.sql.dialect import (
    END_META_KEY,
    QUERY_SPAN_META_KEY,
    SCALAR_FUNCTIONS,
    STATEMENTS,
    TABLE_FUNCTIONS,
    CreateModel,
    DeployModel,
    DescribeModel,
    DropModel,
    Explain,
    ModelFunction,
    ShowModels,
    SqlmlEvaluate,
    SqlmlPredict,
    has_sqlml_construct,
)
from sqlml.sql.dialects import engine_dialect
from sqlml.sql.statements import (
    Bind as Bind,
)
from sqlml.sql.statements import (
    CreateModelStatement as CreateModelStatement,
)
from sqlml.sql.statements import (
    DeployModelStatement as DeployModelStatement,
)
from sqlml.sql.statements import (
    DescribeModelStatement as DescribeModelStatement,
)
from sqlml.sql.statements import (
    DropModelStatement as DropModelStatement,
)
from sqlml.sql.statements import (
    QueryStatement as QueryStatement,
)
from sqlml.sql.statements import (
    ShowModelsStatement as ShowModelsStatement,
)
from sqlml.sql.statements import (
    Statement as Statement,
)
from sqlml.sql.statements import (
    TableFunctionCall as TableFunctionCall,
)
from sqlml.sql.statements import (
    TableFunctionHandler as TableFunctionHandler,
)

# --------------------------------------------------------------------------- splitting


def split_statements(sql: str) -> list[str]:
    """Split a script into statements at the semicolons between them.

    Semicolons inside strings, quoted names and comments do not split. Each statement is
    returned as written (comments included, surrounding whitespace stripped); empty
    statements are dropped.

    >>> split_statements("SELECT ';' AS s; -- one; two\\nSELECT 2;")
    ["SELECT ';' AS s", '-- one; two\\nSELECT 2']

    Args:
        sql: one or more statements.

    Returns:
        The statements, in order.
    """
    if ";" not in sql:  # one statement: nothing to tokenize (long compiled models are slow to)
        return [sql.strip()] if sql.strip() else []
    tokens = _tokenize(sql)
    if tokens is None:  # the engine will report what the tokenizer could not read
        return [sql.strip()] if sql.strip() else []
    statements = []
    start = 0
    for segment in _segments(tokens):
        if segment[-1].token_type == TokenType.SEMICOLON:
            end, next_start = segment[-1].start, segment[-1].end + 1
            segment = segment[:-1]
        else:
            end = next_start = len(sql)
        if segment:
            statements.append(sql[start:end].strip())
        start = next_start
    return statements


def _segments(tokens: Sequence[Token]) -> Iterator[Sequence[Token]]:
    """Token runs up to and including each semicolon (the last run may lack one)."""
    start = 0
    for index, token in enumerate(tokens):
        if token.token_type == TokenType.SEMICOLON:
            yield tokens[start : index + 1]
            start = index + 1
    if start < len(tokens):
        yield tokens[start:]


# --------------------------------------------------------------------------- parsing


def parse_statement(sql: str, dialect: str = "duckdb") -> Statement:
    """Parse one statement of sqlml SQL.

    Args:
        sql: a single statement (use :func:`split_statements` on scripts).
        dialect: the engine the SQL is written for.

    Returns:
        The sqlml statement, or a :class:`QueryStatement` for the engine.

    Raises:
        SqlSyntaxError: the text holds more than one statement, or a sqlml construct in it
            is malformed (bad model name, missing argument, unparsable SQL around it...).
        UnknownEngine: ``dialect`` is not a supported engine.
    """
    tree = _parse(sql, dialect)
    if tree is None:
        return QueryStatement(sql)
    if isinstance(tree, CreateModel):
        first, last = tree.meta[QUERY_SPAN_META_KEY]
        return CreateModelStatement(
            name=tree.this.name,
            replace=bool(tree.args.get("replace")),
            options=tree.options,
            query_sql=sql[first : last + 1],
        )
    if isinstance(tree, ShowModels):
        return ShowModelsStatement()
    if isinstance(tree, DescribeModel):
        return DescribeModelStatement(tree.this.name)
    if isinstance(tree, DropModel):
        version = tree.args.get("version")
        return DropModelStatement(
            tree.this.name,
            version=None if version is None else int(version.this),
            if_exists=bool(tree.args.get("exists")),
        )
    if isinstance(tree, DeployModel):
        alias = tree.args.get("alias")
        return DeployModelStatement(
            tree.this.name,
            version=int(tree.args["version"].this),
            alias="production" if alias is None else alias.name,
        )
    refs = dict.fromkeys(
        ModelRef.parse(call.ref) for call in tree.find_all(*SCALAR_FUNCTIONS, *TABLE_FUNCTIONS)
    )
    return QueryStatement(sql, tuple(refs), explain=isinstance(tree, Explain), tree=tree)


class Script:
    """A script split into its statements, each parsed at most once however often the
    script runs (a prepared statement is described, then executed, perhaps many times).

    >>> script = Script("SHOW MODELS; SELECT 1")
    >>> script.texts
    ('SHOW MODELS', 'SELECT 1')
    >>> script.statement(0) is script.statement(0)
    True
    """

    def __init__(self, sql: str, dialect: str = "duckdb") -> None:
        self.sql = sql
        self.dialect = dialect
        self.texts = tuple(split_statements(sql))
        self._parsed: dict[int, Statement] = {}

    def statement(self, index: int) -> Statement:
        """The statement at ``index``, parsed on first use.

        Raises:
            SqlSyntaxError: the statement is malformed.
        """
        if index not in self._parsed:
            self._parsed[index] = parse_statement(self.texts[index], self.dialect)
        return self._parsed[index]


def _tokenize(sql: str, dialect: str = "duckdb") -> list[Token] | None:
    try:
        return engine_dialect(dialect)().tokenize(sql)
    except TokenError:
        return None


#: Words every sqlml construct holds, in some case: its statements say MODEL, its functions
#: are predict, predict_proba, evaluate and feature_importance.
_SQLML_WORDS = ("model", "predict", "evaluate", "feature_importance")


def _parse(sql: str, dialect: str) -> exp.Expr | None:
    """The statement's tree, or None when it holds no sqlml construct."""
    dialect_class = engine_dialect(dialect)
    if ";" not in sql and not any(word in sql.casefold() for word in _SQLML_WORDS):
        return None  # one statement without sqlml: no need to tokenize it
    tokens = _tokenize(sql, dialect)
    if tokens is None:
        return None
    if sum(1 for segment in _segments(tokens) if segment[0].token_type != TokenType.SEMICOLON) > 1:
        raise SqlSyntaxError(
            "expected one statement, got several; split scripts with split_statements()", sql
        )
    if not has_sqlml_construct(tokens):
        return None
    try:
        trees = dialect_class().parser().parse(tokens, sql)
    except ParseError as exc:
        raise SqlSyntaxError(_describe(exc), sql) from exc
    tree = next(tree for tree in trees if tree is not None)
    if isinstance(tree, Explain) and isinstance(tree.this, STATEMENTS):
        raise SqlSyntaxError("EXPLAIN takes a query, not a sqlml statement", sql)
    if not isinstance(tree, STATEMENTS) and not tree.find(*SCALAR_FUNCTIONS, *TABLE_FUNCTIONS):
        # Plain SQL after all (a table named ``predict``, or a statement sqlglot keeps as
        # an opaque command): the engine gets it as written.
        return None
    _check_placement(tree, sql)
    return tree


def _describe(exc: ParseError) -> str:
    if not exc.errors:
        return str(exc)
    error = exc.errors[0]
    where = f"line {error.get('line')}, column {error.get('col')}"
    near = error.get("highlight")
    return f"{error.get('description')} ({where}{f', near {near!r}' if near else ''})"


def _position(node: exp.Expr) -> str:
    return f"line {node.meta.get('line')}, column {node.meta.get('col')}"


def _check_placement(tree: exp.Expr, sql: str) -> None:
    """Scalar functions stand where expressions do; table functions where tables do."""
    for call in tree.find_all(*SCALAR_FUNCTIONS, *TABLE_FUNCTIONS):
        name = call.sql_name().lower()
        in_from = isinstance(call.parent, exp.Table)
        if isinstance(call, SCALAR_FUNCTIONS) and in_from:
            raise SqlSyntaxError(
                f"{name}() is a scalar function; call it where a value stands, e.g. "
                f"SELECT {name}('model', *) FROM t ({_position(call)})",
                sql,
            )
        if isinstance(call, TABLE_FUNCTIONS) and not in_from:
            raise SqlSyntaxError(
                f"{name}() is a table function; use it in FROM, e.g. "
                f"SELECT * FROM {name}(...) ({_position(call)})",
                sql,
            )


# --------------------------------------------------------------------------- rewriting


def rewrite_query(
    sql: str | QueryStatement,
    bind: Bind,
    *,
    tables: TableFunctionHandler | None = None,
    dialect: str = "duckdb",
) -> str:
    """Rewrite a query's sqlml function calls into what the engine runs.

    Each ``predict('m', ...)`` becomes ``<function>('<ref>', <struct>)`` with the
    :class:`Binding` that ``bind`` returns for it (or ``<function>(<feature>, ...)`` when
    the binding's ``arguments`` is ``"features"``): the struct holds exactly the model's
    features, each taken by name:

    - ``predict('m', *)``: from the columns in scope (unqualified; extra columns ignored);
    - ``predict('m', c.*)`` or ``predict('m', c)`` (c a table or alias in scope): from c;
    - ``predict('m', a, b, ...)``: from the listed columns; one the model needs but not
      listed is an error.

    Table functions are replaced when ``tables`` is given (see
    :func:`replace_table_functions`) and otherwise left as written. The rest of the text is
    kept exactly; a statement without sqlml calls is returned unchanged.

    Args:
        sql: one statement, as text or as the QueryStatement :func:`parse_statement` made.
        bind: resolves a model reference as written for ``"predict"`` or
            ``"predict_proba"``; called once per distinct pair.
        tables: optional handler for evaluate()/feature_importance().
        dialect: the engine the SQL is written for.

    Returns:
        The statement for the engine.

    Raises:
        SqlSyntaxError: the statement is malformed, or is a sqlml statement, not a query.
        FeatureMissing: a feature the model needs is not among the listed columns.
    """
    sql, tree = _tree_of(sql, dialect)
    if tree is None:
        return sql
    _require_query(tree, sql)
    bindings: dict[tuple[str, str], Binding] = {}
    edits: list[tuple[exp.Expr, str]] = []
    for call in tree.find_all(*SCALAR_FUNCTIONS):
        kind: Literal["predict", "predict_proba"] = (
            "predict" if isinstance(call, SqlmlPredict) else "predict_proba"
        )
        key = (call.ref, kind)
        if key not in bindings:
            bindings[key] = bind(call.ref, kind)
        edits.append((call, _render(_bound_call(call, bindings[key]), dialect)))
    if tables is not None:
        edits.extend(_table_function_edits(tree, tables, dialect))
    return _splice(sql, edits)


def replace_table_functions(
    sql: str | QueryStatement, tables: TableFunctionHandler, dialect: str = "duckdb"
) -> str:
    """Replace each evaluate()/feature_importance() in a query with a relation.

    Engines without Python table functions (DuckDB) cannot run them: the caller computes
    each result, registers it (e.g. as a view) and returns its name from ``tables``. An
    alias written in the query is kept; without one the relation is aliased by the
    function's name, so ``evaluate.accuracy`` still resolves.

    >>> replace_table_functions("SELECT * FROM feature_importance('m')", lambda c: "fi_1")
    'SELECT * FROM fi_1 AS feature_importance'

    Args:
        sql: one statement, as text or as the QueryStatement :func:`parse_statement` made.
        tables: called with each call; returns the name of the relation to use instead.
        dialect: the engine the SQL is written for.

    Returns:
        The statement with the calls replaced; other text unchanged.

    Raises:
        SqlSyntaxError: the statement is malformed, or is a sqlml statement, not a query.
    """
    sql, tree = _tree_of(sql, dialect)
    if tree is None:
        return sql
    _require_query(tree, sql)
    return _splice(sql, list(_table_function_edits(tree, tables, dialect)))


def _tree_of(sql: str | QueryStatement, dialect: str) -> tuple[str, exp.Expr | None]:
    """A statement's text and tree: the tree a :class:`QueryStatement` already carries
    (parsed once, by :func:`parse_statement`), or a fresh parse of text."""
    if isinstance(sql, QueryStatement):
        return sql.sql, sql.tree
    return sql, _parse(sql, dialect)


_STATEMENT_NAMES: Mapping[type[exp.Expr], str] = {
    CreateModel: "CREATE MODEL",
    ShowModels: "SHOW MODELS",
    DescribeModel: "DESCRIBE MODEL",
    DropModel: "DROP MODEL",
    DeployModel: "DEPLOY MODEL",
}


def _require_query(tree: exp.Expr, sql: str) -> None:
    if type(tree) in _STATEMENT_NAMES:
        raise SqlSyntaxError(
            f"{_STATEMENT_NAMES[type(tree)]} is a sqlml statement, not a query; "
            "run it through parse_statement()",
            sql,
        )


def _render(node: exp.Expr, dialect: str) -> str:
    return node.sql(dialect=engine_dialect(dialect), normalize_functions=False)


def _splice(sql: str, edits: Sequence[tuple[exp.Expr, str]]) -> str:
    """Replace each node's source text (they do not overlap) with the given text."""
    out = []
    position = 0
    for node, text in sorted(edits, key=lambda edit: int(edit[0].meta["start"])):
        out.append(sql[position : node.meta["start"]])
        out.append(text)
        position = node.meta[END_META_KEY] + 1
    out.append(sql[position:])
    return "".join(out)


def _bound_call(call: ModelFunction, binding: Binding) -> exp.Expr:
    """A predict/predict_proba call as the engine writes it (see
    :mod:`sqlml.engines.binding`), from the value the call takes for each feature."""
    features = {name.casefold() for name in binding.features}
    in_scope = _relations_in_scope(call)
    listed: dict[str, exp.Column] = {}
    sources: list[exp.Identifier | None] = []  # None: the columns in scope, unqualified
    excluded: set[str] = set()
    for arg in call.expressions:
        if isinstance(arg, exp.Star):
            sources.append(None)
            excluded.update(col.name.casefold() for col in arg.args.get("except_") or [])
        elif isinstance(arg.this, exp.Star):
            sources.append(arg.args["table"])
        elif (
            not arg.table
            and arg.name.casefold() not in features
            and arg.name.casefold() in in_scope
        ):
            sources.append(arg.this)  # the native form: a table's row
        else:
            listed[arg.name.casefold()] = arg

    values: dict[str, exp.Expr] = {}
    for feature in binding.features:
        if feature.casefold() in listed:
            values[feature] = listed[feature.casefold()].copy()
        elif sources and not (sources == [None] and feature.casefold() in excluded):
            qualifier = sources[0] if len(sources) == 1 else None  # several: let the engine
            values[feature] = exp.column(
                exp.to_identifier(feature, quoted=True),
                table=None if qualifier is None else qualifier.copy(),
            )
        else:
            raise FeatureMissing(binding.ref, feature, [col.name for col in listed.values()])
    return binding.write(values)


def _relations_in_scope(node: exp.Expr) -> set[str]:
    """Case-folded names and aliases of the relations of every SELECT around ``node``."""
    names: set[str] = set()
    for select in _ancestors(node, exp.Select):
        from_ = select.args.get("from_")
        relations = [from_.this] if from_ else []
        relations += [join.this for join in select.args.get("joins") or []]
        names.update(rel.alias_or_name.casefold() for rel in relations if rel.alias_or_name)
    return names


def _ancestors(node: exp.Expr, kind: type[exp.Select]) -> Iterator[exp.Select]:
    parent = node.parent
    while parent is not None:
        if isinstance(parent, kind):
            yield parent
        parent = parent.parent


def _table_function_edits(
    tree: exp.Expr, tables: TableFunctionHandler, dialect: str
) -> Iterator[tuple[exp.Expr, str]]:
    for call in tree.find_all(*TABLE_FUNCTIONS):
        if isinstance(call, SqlmlEvaluate):
            spec = TableFunctionCall("evaluate", call.ref, str(call.expression.this))
        else:
            spec = TableFunctionCall("feature_importance", call.ref)
        text = _render(exp.to_table(tables(spec)), dialect)
        table = call.parent
        if isinstance(table, exp.Table) and not table.alias:
            text += f" AS {spec.function}"
        yield call, text
