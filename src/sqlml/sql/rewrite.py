"""The rewriter: sqlml's function calls in a parsed query become what the engine runs.

Only the text of sqlml's own constructs is replaced; the rest of the statement reaches
the engine byte for byte.

>>> from sqlml.engines.binding import struct_call
>>> bind = lambda ref, kind: struct_call("sqlml_predict", "churn@3", ("age", "plan"))
>>> print(rewrite_query("SELECT id, predict('churn', *) AS p FROM t", bind))
SELECT id, sqlml_predict('churn@3', {'age': "age", 'plan': "plan"}) AS p FROM t

An unaliased item calling predict is named as written, each call shortened to its model:

>>> print(rewrite_query("SELECT id, predict('churn', *) FROM t", bind))
SELECT id, sqlml_predict('churn@3', {'age': "age", 'plan': "plan"}) AS "predict(churn)" FROM t
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Literal

from sqlglot import exp

from sqlml.engines.binding import Binding
from sqlml.errors import FeatureMissing, SqlSyntaxError, UnknownClass
from sqlml.sql.dialects import engine_dialect
from sqlml.sql.expressions import (
    END_META_KEY,
    PROJECTION_SPAN_META_KEY,
    SCALAR_FUNCTIONS,
    TABLE_FUNCTIONS,
    CreateModel,
    DeployModel,
    DescribeModel,
    DropModel,
    ModelFunction,
    ShowModels,
    SqlmlEvaluate,
    SqlmlPredict,
)
from sqlml.sql.frontend import parse_tree
from sqlml.sql.statements import Bind, QueryStatement, TableFunctionCall, TableFunctionHandler

__all__ = ["replace_table_functions", "rewrite_query"]


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
    edits: list[_Edit] = []
    for call in tree.find_all(*SCALAR_FUNCTIONS):
        kind: Literal["predict", "predict_proba"] = (
            "predict" if isinstance(call, SqlmlPredict) else "predict_proba"
        )
        key = (call.ref, kind)
        if key not in bindings:
            bindings[key] = bind(call.ref, kind)
        _check_key(call, bindings[key])
        edits.append(_replace(call, _render(_bound_call(call, bindings[key]), dialect)))
    edits.extend(_column_names(tree, sql, dialect))
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
    return sql, parse_tree(sql, dialect)


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


#: An edit of the source text: replace ``sql[start:stop]`` (empty: insert) with the text.
_Edit = tuple[int, int, str]


def _replace(node: exp.Expr, text: str) -> _Edit:
    """The edit replacing a sqlml node's source text."""
    return int(node.meta["start"]), int(node.meta[END_META_KEY]) + 1, text


def _splice(sql: str, edits: Sequence[_Edit]) -> str:
    """Apply the edits (they do not overlap) to ``sql``."""
    out = []
    position = 0
    for start, stop, text in sorted(edits, key=lambda edit: (edit[0], edit[1])):
        out.append(sql[position:start])
        out.append(text)
        position = stop
    out.append(sql[position:])
    return "".join(out)


def _column_names(tree: exp.Expr, sql: str, dialect: str) -> Iterator[_Edit]:
    """Name each unaliased SELECT item that calls predict/predict_proba as it was written,
    with each call shortened to its model: ``predict(churn)``,
    ``predict_proba(churn@2)['yes']``, ``1 - predict_proba(churn)['no']``. Without a name
    the engine would name the column by the rewritten call."""
    for select in tree.find_all(exp.Select):
        for item in select.expressions:
            span = item.meta.get(PROJECTION_SPAN_META_KEY)
            if isinstance(item, exp.Alias) or span is None:
                continue
            # The parser records every call's span; calls never nest (they take columns).
            calls = sorted(item.find_all(*SCALAR_FUNCTIONS), key=lambda c: int(c.meta["start"]))
            if not calls:
                continue
            first, last = span
            parts, position = [], first
            for call in calls:
                parts.append(sql[position : call.meta["start"]])
                parts.append(f"{call.sql_name().lower()}({call.ref})")
                position = call.meta[END_META_KEY] + 1
            parts.append(sql[position : last + 1])
            name = " ".join("".join(parts).split())
            alias = exp.to_identifier(name, quoted=True)
            yield last + 1, last + 1, f" AS {_render(alias, dialect)}"


def _check_key(call: ModelFunction, binding: Binding) -> None:
    """Refuse ``predict_proba(...)['key']`` with a literal key the model does not have
    (the map lookup would be NULL on every row)."""
    parent = call.parent
    if not (binding.keys and isinstance(parent, exp.Bracket) and parent.this is call):
        return
    keys = parent.expressions
    if len(keys) == 1 and isinstance(keys[0], exp.Literal) and keys[0].is_string:
        key = str(keys[0].this)
        if key not in binding.keys:
            raise UnknownClass(binding.ref, key, binding.keys)


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
) -> Iterator[_Edit]:
    for call in tree.find_all(*TABLE_FUNCTIONS):
        if isinstance(call, SqlmlEvaluate):
            spec = TableFunctionCall("evaluate", call.ref, str(call.expression.this))
        else:
            spec = TableFunctionCall("feature_importance", call.ref)
        text = _render(exp.to_table(tables(spec)), dialect)
        table = call.parent
        if isinstance(table, exp.Table) and not table.alias:
            text += f" AS {spec.function}"
        yield _replace(call, text)
