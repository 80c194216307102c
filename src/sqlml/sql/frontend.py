"""The front end: split scripts and parse sqlml SQL into statements, once each.

Statements without a sqlml construct are handed back exactly as written, whether or not
sqlglot can parse them (:func:`sqlml.sql.dialect.sqlml_tokens` decides);
:mod:`sqlml.sql.rewrite` then replaces only the text of sqlml's own constructs.

>>> parse_statement("DROP MODEL churn VERSION 2")
DropModelStatement(name='churn', version=2, if_exists=False, force=False)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from sqlglot import exp
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokenizer_core import Token, TokenType

from sqlml.catalog.entities import ModelRef
from sqlml.errors import SqlSyntaxError
from sqlml.sql.dialect import ERROR_NEAR_KEY, ERROR_OFFSET_KEY, sqlml_tokens
from sqlml.sql.dialects import engine_dialect
from sqlml.sql.expressions import (
    QUERY_SPAN_META_KEY,
    SCALAR_FUNCTIONS,
    STATEMENTS,
    TABLE_FUNCTIONS,
    CreateModel,
    DeployModel,
    DescribeModel,
    DropModel,
    Explain,
    ShowModels,
)
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
    tree = parse_tree(sql, dialect)
    if tree is None:
        return QueryStatement(sql)
    if isinstance(tree, CreateModel):
        first, last = tree.meta[QUERY_SPAN_META_KEY]
        return CreateModelStatement(
            name=tree.this.name,
            replace=bool(tree.args.get("replace")),
            options=tree.options,
            query_sql=sql[first : last + 1],
            tree=tree,
        )
    if isinstance(tree, ShowModels):
        return ShowModelsStatement()
    if isinstance(tree, DescribeModel):
        version, alias = tree.args.get("version"), tree.args.get("alias")
        return DescribeModelStatement(
            tree.this.name,
            version=None if version is None else int(version.this),
            alias=None if alias is None else alias.name,
        )
    if isinstance(tree, DropModel):
        version = tree.args.get("version")
        return DropModelStatement(
            tree.this.name,
            version=None if version is None else int(version.this),
            if_exists=bool(tree.args.get("exists")),
            force=bool(tree.args.get("force")),
        )
    if isinstance(tree, DeployModel):
        alias = tree.args.get("alias")
        version = tree.args.get("version")
        return DeployModelStatement(
            tree.this.name,
            version=None if version is None else int(version.this),
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


def parse_tree(sql: str, dialect: str = "duckdb") -> exp.Expr | None:
    """One statement's tree, or None when it holds no sqlml construct (plain SQL).

    Raises:
        SqlSyntaxError: several statements, or a malformed sqlml construct.
    """
    dialect_class = engine_dialect(dialect)
    known = None
    if ";" in sql:
        known = _tokenize(sql, dialect)
        if known is None:
            return None  # the engine reports what the tokenizer could not read
        statements = (s for s in _segments(known) if s[0].token_type != TokenType.SEMICOLON)
        if sum(1 for _ in statements) > 1:
            raise SqlSyntaxError(
                "expected one statement, got several; split scripts with split_statements()",
                sql,
            )
    tokens = sqlml_tokens(sql, dialect_class, known)
    if tokens is None:
        return None
    try:
        trees = dialect_class().parser().parse(tokens, sql)
    except ParseError as exc:
        raise SqlSyntaxError(_describe(exc, sql), sql) from None
    tree = next(tree for tree in trees if tree is not None)
    if isinstance(tree, Explain) and isinstance(tree.this, STATEMENTS):
        raise SqlSyntaxError("EXPLAIN takes a query, not a sqlml statement", sql)
    if not isinstance(tree, STATEMENTS) and not tree.find(*SCALAR_FUNCTIONS, *TABLE_FUNCTIONS):
        # Plain SQL after all (a table named ``predict``, or a statement sqlglot keeps as
        # an opaque command): the engine gets it as written.
        return None
    _check_placement(tree, sql)
    return tree


def _describe(exc: ParseError, sql: str) -> str:
    """A parse error as the engines show theirs: the words, where (line and column), and
    the statement's line with a caret under the spot.

    >>> try:
    ...     parse_statement("SELECT predict('churn', *)\\nFROM t WHERE")
    ... except SqlSyntaxError as exc:
    ...     print(exc)
    syntax error at end of input: WHERE needs a condition (line 2, column 13)
    LINE 2: FROM t WHERE
                        ^
    """
    if not exc.errors or ERROR_OFFSET_KEY not in exc.errors[0]:
        return str(exc).split("\n", 1)[0]
    error = exc.errors[0]
    offset = min(int(error[ERROR_OFFSET_KEY]), len(sql))
    line = sql.count("\n", 0, offset) + 1
    line_start = sql.rfind("\n", 0, offset) + 1
    column = offset - line_start + 1
    near = f"{error[ERROR_NEAR_KEY]}, " if error.get(ERROR_NEAR_KEY) else ""
    return f"{error['description']} ({near}line {line}, column {column})\n" + _caret(
        sql, line, line_start, column
    )


def _caret(sql: str, line: int, line_start: int, column: int, width: int = 100) -> str:
    """``LINE n: <the line>`` and a caret under ``column`` (long lines cut around it)."""
    end = sql.find("\n", line_start)
    text = sql[line_start : len(sql) if end < 0 else end]
    first = max(0, min(column - 1 - width // 2, len(text) - width))
    shown = ("..." if first else "") + text[first : first + width]
    if first + width < len(text):
        shown += "..."
    prefix = f"LINE {line}: "
    return f"{prefix}{shown}\n{' ' * (len(prefix) + column - 1 - first + (3 if first else 0))}^"


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
