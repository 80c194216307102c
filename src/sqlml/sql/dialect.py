"""The sqlml SQL dialect: DuckDB's SQL plus sqlml's statements and functions.

:class:`Sqlml` is a sqlglot dialect built on sqlglot's DuckDB dialect. It adds:

- the statements ``CREATE [OR REPLACE] MODEL name [OPTIONS (key = value, ...)] AS <query>``,
  ``SHOW MODELS``, ``DESCRIBE MODEL name[@version | @alias | VERSION n]``,
  ``DROP MODEL [IF EXISTS] name [VERSION n [FORCE]]`` and ``DEPLOY MODEL name {VERSION n |
  ROLLBACK} [AS alias]``;
- the scalar functions ``predict('model', ...)`` and ``predict_proba('model', ...)``;
- the table functions ``evaluate('model', '<select>')`` and ``feature_importance('model')``.

Each parses into its own expression class (:mod:`sqlml.sql.expressions`). The parser
checks the forms (model names, option values, argument shapes) and reports mistakes as
sqlglot ``ParseError`` with a position; sqlglot's own errors are reworded as the engines
word theirs (``syntax error at or near "SELEC"``, ``syntax error at end of input: WHERE
needs a condition``), never with sqlglot's class names. :mod:`sqlml.sql.frontend` turns
them into :class:`sqlml.errors.SqlSyntaxError`.

Nodes produced by the sqlml functions record where they end in the source text
(``meta["sqlml_end"]``, next to sqlglot's own ``meta["start"]``) so the front end can
replace exactly that text and leave the rest of the statement as the user wrote it.
"""

from __future__ import annotations

import typing as t
from collections.abc import Sequence

from sqlglot import exp
from sqlglot.dialects.duckdb import DuckDB
from sqlglot.errors import ParseError, TokenError
from sqlglot.generator import Generator
from sqlglot.generators.duckdb import DuckDBGenerator
from sqlglot.parsers.duckdb import DuckDBParser
from sqlglot.tokenizer_core import Token, TokenType

from sqlml.catalog.entities import ModelRef, validate_alias, validate_name
from sqlml.errors import AliasInvalid, InvalidModelName
from sqlml.sql.expressions import (
    END_META_KEY,
    MODEL_FUNCTIONS,
    PROJECTION_SPAN_META_KEY,
    QUERY_SPAN_META_KEY,
    SCALAR_FUNCTIONS,
    CreateModel,
    DeployModel,
    DescribeModel,
    DropModel,
    Explain,
    ModelFunction,
    ShowModels,
    SqlmlEvaluate,
    SqlmlFeatureImportance,
    SqlmlPredict,
    SqlmlPredictProba,
    _NotAnOption,
    option_value,
)

# --------------------------------------------------------------------------- tokens


_STRINGLIKE = DuckDBParser.TEXT_MATCH_EXCLUDED_TOKENS


def _word(token: Token) -> str | None:
    """The upper-cased keyword a token spells, or None for strings and quoted names."""
    return None if token.token_type in _STRINGLIKE else token.text.upper()


def sqlml_tokens(
    sql: str, dialect: type[Sqlml] | None = None, tokens: list[Token] | None = None
) -> list[Token] | None:
    """The tokens of one statement that may hold a sqlml construct; None for plain SQL.

    This is the one test of "sqlml or plain SQL" before parsing, and it reads the
    parser's own tables: a statement is sqlml's if it begins with the words of one of
    :attr:`SqlmlParser.SQLML_STATEMENTS` (after ``EXPLAIN [ANALYZE]``) or calls one of
    :data:`MODEL_FUNCTIONS` (``predict(`` ...). The parse then has the last word: words
    that turn out not to be sqlml's (``DESCRIBE model.t``, a macro named ``predict``) are
    read as the engine's SQL. Text that spells none of those words is not tokenized at
    all (a 400 kB compiled model is plain SQL), and text the tokenizer cannot read is the
    engine's to report. ``tokens`` are the text's tokens when the caller already has them.

    >>> sqlml_tokens("SELECT 1") is None
    True
    >>> [token.text for token in sqlml_tokens("SHOW MODELS")]
    ['SHOW', 'MODELS']
    """
    folded = sql.casefold()
    if not any(word in folded for word in SQLML_WORDS):
        return None
    if tokens is None:
        try:
            tokens = (dialect or Sqlml)().tokenize(sql)
        except TokenError:
            return None
    return tokens if _holds_sqlml(tokens) else None


def _holds_sqlml(tokens: Sequence[Token]) -> bool:
    """Whether a token stream begins a sqlml statement (at the start or after a ``;``) or
    calls a sqlml function anywhere."""
    start = 0
    for index, token in enumerate(tokens):
        if token.token_type == TokenType.SEMICOLON:
            if _begins_statement(tokens[start:index]):
                return True
            start = index + 1
        elif _calls_model_function(tokens, index):
            return True
    return _begins_statement(tokens[start:])


def _begins_statement(tokens: Sequence[Token]) -> bool:
    while tokens and _word(tokens[0]) in ("EXPLAIN", "ANALYZE"):
        tokens = tokens[1:]
    words = tuple(_word(token) for token in tokens[:4])
    return any(words[: len(head)] == head for head in SqlmlParser.SQLML_STATEMENTS)


def _calls_model_function(tokens: Sequence[Token], index: int) -> bool:
    token = tokens[index]
    return (
        token.token_type in (TokenType.VAR, TokenType.IDENTIFIER)
        and token.text.upper() in MODEL_FUNCTIONS
        and index + 1 < len(tokens)
        and tokens[index + 1].token_type == TokenType.L_PAREN
        and (index == 0 or tokens[index - 1].token_type != TokenType.DOT)
    )


# --------------------------------------------------------------------------- errors


#: Keys sqlml adds to each entry of a ``ParseError``'s ``errors``: the offset in the text
#: where the mistake is (the offending token's start, or just past the last token when the
#: statement ends too soon), and the words that say where ("near "FROM"", "at end of
#: input") when the description does not already say it.
ERROR_OFFSET_KEY = "sqlml_offset"
ERROR_NEAR_KEY = "sqlml_near"

#: What a statement ending with these tokens lacks (``WHERE needs a condition``).
_NEEDS: dict[TokenType, str] = {
    **dict.fromkeys(
        [TokenType.WHERE, TokenType.HAVING, TokenType.QUALIFY, TokenType.ON, TokenType.NOT],
        "a condition",
    ),
    **dict.fromkeys([TokenType.AND, TokenType.OR], "another condition"),
    **dict.fromkeys([TokenType.LIMIT, TokenType.OFFSET], "a number"),
    **dict.fromkeys([TokenType.FROM, TokenType.JOIN], "a table"),
    **dict.fromkeys([TokenType.ORDER_BY, TokenType.GROUP_BY], "a list of expressions"),
    TokenType.SELECT: "something to select",
    TokenType.COMMA: "another item",
    TokenType.ALIAS: "a name",
    **dict.fromkeys(
        [
            TokenType.EQ,
            TokenType.NEQ,
            TokenType.GT,
            TokenType.GTE,
            TokenType.LT,
            TokenType.LTE,
            TokenType.PLUS,
            TokenType.DASH,
            TokenType.SLASH,
            TokenType.STAR,
            TokenType.MOD,
            TokenType.DPIPE,
            TokenType.IS,
            TokenType.IN,
            TokenType.LIKE,
            TokenType.BETWEEN,
        ],
        "a value after it",
    ),
}


# --------------------------------------------------------------------------- parser


class SqlmlParser(DuckDBParser):
    """DuckDB's parser, plus sqlml's statements and functions."""

    FUNCTIONS: t.ClassVar[dict[str, t.Callable[..., exp.Expr]]] = {
        k: v for k, v in DuckDBParser.FUNCTIONS.items() if k != "PREDICT"
    }

    FUNCTION_PARSERS: t.ClassVar[dict[str, t.Callable[..., exp.Expr]]] = {
        **DuckDBParser.FUNCTION_PARSERS,
        "PREDICT": lambda self: self._parse_model_function(SqlmlPredict),
        "PREDICT_PROBA": lambda self: self._parse_model_function(SqlmlPredictProba),
        "EVALUATE": lambda self: self._parse_model_function(SqlmlEvaluate),
        "FEATURE_IMPORTANCE": lambda self: self._parse_model_function(SqlmlFeatureImportance),
    }

    #: sqlml's statements by the words they begin with, tried in order wherever a
    #: statement starts. A parser returning None means "not sqlml's after all" (``SHOW
    #: MODELS LIKE ...``, ``DESCRIBE model.t``): the words are read as the engine's SQL.
    #: :func:`sqlml_tokens` looks for the same words.
    SQLML_STATEMENTS: t.ClassVar[dict[tuple[str, ...], t.Callable[..., exp.Expr | None]]] = {
        ("CREATE", "OR", "REPLACE", "MODEL"): lambda self: self._parse_create_model(True),
        ("CREATE", "MODEL"): lambda self: self._parse_create_model(False),
        ("SHOW", "MODELS"): lambda self: self._parse_show_models(),
        ("DESCRIBE", "MODEL"): lambda self: self._parse_describe_model(),
        ("DROP", "MODEL"): lambda self: self._parse_drop_model(),
        ("DEPLOY", "MODEL"): lambda self: self._parse_deploy_model(),
    }

    def _fail(self, message: str, token: Token | None = None) -> t.NoReturn:
        """Report a mistake in sqlml's own words, at ``token`` (default: the current one)."""
        self._report(message, token, own=True)
        raise ParseError(message)  # reached only when the error level does not raise

    def raise_error(self, message: str, token: Token | None = None) -> None:
        """Report one of sqlglot's own errors as the engines word theirs: ``syntax error at
        or near "x"``, or ``syntax error at end of input`` with what the last word needs."""
        self._report(message, token, own=False)

    def _report(self, message: str, token: Token | None, own: bool) -> None:
        """Raise (or, at a lenient error level, record) the error at ``token``, or at the
        current token; at the end of the input when there is none."""
        offender = token or self._curr
        if offender:
            offset, blamed = offender.start, offender
            near = f'near "{self.sql[offender.start : offender.end + 1]}"'
            plain = f"syntax error at or {near}"
        else:
            last = self._prev
            offset, blamed = (last.end + 1, last) if last else (0, Token.string(""))
            near = "at end of input"
            plain = f"syntax error {near}{self._lacking(last)}"
        where = {ERROR_OFFSET_KEY: offset, ERROR_NEAR_KEY: near if own else ""}
        try:
            super().raise_error(message if own else plain, blamed)
        except ParseError as error:
            error.errors[0].update(where)
            raise
        self.errors[-1].errors[0].update(where)

    def _lacking(self, last: Token | None) -> str:
        """What a statement that ends with ``last`` lacks, as ``: WHERE needs a condition``."""
        if last is not None and last.token_type in _NEEDS:
            return f": {last.text.upper()} needs {_NEEDS[last.token_type]}"
        kinds = [token.token_type for token in self._tokens]
        if kinds.count(TokenType.L_PAREN) > kinds.count(TokenType.R_PAREN):
            return ": a '(' is not closed"
        return ""

    def _parse_statement(self) -> exp.Expr | None:
        if self._curr and _word(self._curr) == "EXPLAIN":
            self._advance()
            analyze = self._match_text_seq("ANALYZE")
            statement = self._parse_statement()
            if statement is None:
                self._fail("Expected a statement after EXPLAIN")
            return self.expression(Explain(this=statement, analyze=analyze))
        start, comments = self._index, self._curr.comments if self._curr else None
        for head, parse in self.SQLML_STATEMENTS.items():
            if self._curr and self._match_text_seq(*head):
                node = parse(self)
                if node is not None:
                    node.add_comments(comments, prepend=True)
                    return node
                self._retreat(start)
                break
        first = self._curr
        node = super()._parse_statement()
        if (
            first
            and first.token_type == TokenType.VAR
            and not isinstance(node, exp.Query)
            and self._curr
            and self._curr.token_type != TokenType.SEMICOLON
        ):
            # An unknown word read as an expression and more after it: no statement begins
            # so (``SELEC predict(...) FROM t``), and the word is the mistake.
            self.raise_error("Expected a statement", first)
        return node

    def _parse_projections(self) -> tuple[list[exp.Expr], list[exp.Expr] | None]:
        """SELECT's items, each with its span in the source text (so that an unaliased
        item calling predict can be named as it was written). A comma with no item before
        it (``SELECT a,, b``) is a mistake; one after the last item is allowed."""
        items: list[exp.Expr] = []
        while True:
            first = self._curr
            item = self._parse_expression()
            if item is None and self._match(TokenType.COMMA, advance=False):
                self.raise_error("Expected an item before ','", self._curr)
            if item is not None:
                if first is not None and self._prev is not None:
                    item.meta[PROJECTION_SPAN_META_KEY] = (first.start, self._prev.end)
                items.append(item)
            if not self._match(TokenType.COMMA):
                return items, None
            if item is not None:
                self._add_comments(item)

    # ----- statements

    def _parse_create_model(self, replace: bool) -> CreateModel:
        name = self._parse_model_name("CREATE MODEL")
        options: list[exp.Property] = []
        if self._match_text_seq("OPTIONS"):
            if not self._match(TokenType.L_PAREN):
                self._fail("Expected '(' after OPTIONS, e.g. OPTIONS (target = 'churned')")
            if not self._match(TokenType.R_PAREN):
                options = self._parse_csv(self._parse_model_option)
                if not self._match(TokenType.R_PAREN):
                    self._fail("Expected ',' or ')' in OPTIONS (key = value, ...)")
            seen: set[str] = set()
            for option in options:
                if option.name in seen:
                    self._fail(f"Option {option.name!r} is given twice in OPTIONS")
                seen.add(option.name)
        if not self._match(TokenType.ALIAS):
            self._fail(
                f"Expected AS <select> after CREATE MODEL {name.name}"
                + ("" if options else " [OPTIONS (...)]")
                + ", e.g. CREATE MODEL churn OPTIONS (target = 'churned') AS SELECT * FROM t"
            )
        first = self._index
        query = self._parse_ddl_select()
        if not isinstance(query, exp.Query):
            self._fail("Expected a SELECT query after AS in CREATE MODEL")
        last = self._index - 1
        while (
            isinstance(query, exp.Subquery)
            and not any(v for k, v in query.args.items() if k != "this")
            and self._tokens[first].token_type == TokenType.L_PAREN
            and self._tokens[last].token_type == TokenType.R_PAREN
        ):
            query, first, last = query.this, first + 1, last - 1
        node = self.expression(
            CreateModel(this=name, replace=replace, options=options, expression=query)
        )
        node.meta[QUERY_SPAN_META_KEY] = (self._tokens[first].start, self._tokens[last].end)
        return node

    def _parse_model_option(self) -> exp.Property:
        key = self._parse_id_var(any_token=False)
        if not isinstance(key, exp.Identifier):
            self._fail("Expected an option name in OPTIONS (key = value, ...)")
        key_token = self._prev
        if not self._match(TokenType.EQ):
            self._fail(f"Expected '=' after option {key.name!r}, e.g. {key.name} = 'value'")
        value = self._parse_assignment()
        if value is None:
            self._fail(f"Expected a value for option {key.name!r}")
        try:
            option_value(value)
        except _NotAnOption as exc:
            self._fail(
                f"Option {key.name!r} must be a string, number, boolean or a list of those "
                f"such as ('a', 'b'); got {exc}",
                key_token,
            )
        return self.expression(exp.Property(this=exp.var(key.name.lower()), value=value))

    def _parse_describe_model(self) -> DescribeModel | None:
        if not self._curr or self._curr.token_type == TokenType.DOT:
            return None  # ``DESCRIBE model`` or ``DESCRIBE model.t``: a table named model
        name = self._parse_model_name("DESCRIBE MODEL")
        example = f"DESCRIBE MODEL {name.name}@2, {name.name}@production or {name.name} VERSION 2"
        version = alias = None
        if self._match_text_seq("VERSION"):
            version = self._parse_version_number(example)
        elif self._match(TokenType.PARAMETER):  # name@2, name@production
            if self._curr and self._curr.token_type == TokenType.NUMBER:
                version = self._parse_version_number(example, after="@")
            else:
                token = self._curr
                alias = self._parse_id_var(any_token=True)
                if not isinstance(alias, exp.Identifier) or token.token_type in _STRINGLIKE:
                    self._fail(
                        f"Expected a version number or an alias after @, e.g. {example}", token
                    )
                try:
                    if ModelRef.parse(f"{name.name}@{alias.name}").alias is None:
                        alias = None  # name@latest: the latest version
                except AliasInvalid as exc:
                    self._fail(str(exc), token)
        return self.expression(DescribeModel(this=name, version=version, alias=alias))

    def _parse_drop_model(self) -> DropModel:
        exists = self._parse_exists()
        name = self._parse_model_name("DROP MODEL")
        version = None
        force = False
        if self._match_text_seq("VERSION"):
            version = self._parse_version_number(f"DROP MODEL {name.name} VERSION 3 [FORCE]")
            force = self._match_text_seq("FORCE")
        return self.expression(DropModel(this=name, exists=exists, version=version, force=force))

    def _parse_deploy_model(self) -> DeployModel:
        name = self._parse_model_name("DEPLOY MODEL")
        example = f"DEPLOY MODEL {name.name} VERSION 3 [AS production]"
        version = None
        rollback = self._match_text_seq("ROLLBACK")
        if rollback:
            example = f"DEPLOY MODEL {name.name} ROLLBACK [AS production]"
        elif self._match_text_seq("VERSION"):
            version = self._parse_version_number(example)
        else:
            self._fail(
                f"Expected VERSION <number> or ROLLBACK after DEPLOY MODEL {name.name}: "
                f"{example}, or DEPLOY MODEL {name.name} ROLLBACK to go back to the version "
                "deployed before"
            )
        alias = None
        if self._match(TokenType.ALIAS):
            alias = self._parse_id_var(any_token=True)
            if not isinstance(alias, exp.Identifier) or self._prev.token_type == TokenType.STRING:
                self._fail(f"Expected an alias name after AS: {example}")
            try:
                validate_alias(alias.name)
            except AliasInvalid as exc:
                self._fail(str(exc), self._prev)
        return self.expression(
            DeployModel(this=name, version=version, alias=alias, rollback=rollback)
        )

    def _parse_show_models(self) -> ShowModels | None:
        return None if self._curr else self.expression(ShowModels())

    def _parse_model_name(self, statement: str) -> exp.Identifier:
        name = self._parse_id_var(any_token=False)
        if not isinstance(name, exp.Identifier):
            self._fail(f"Expected a model name after {statement}, e.g. {statement} churn")
        token = self._prev
        if self._match(TokenType.DOT, advance=False):
            self._fail(f"Model names are not qualified: {statement} takes a plain name")
        try:
            validate_name(name.name)
        except InvalidModelName as exc:
            self._fail(str(exc), token)
        return name

    def _parse_version_number(self, example: str, after: str = "VERSION") -> exp.Literal:
        token = self._curr
        if not (self._match(TokenType.NUMBER) and token.text.isdigit() and int(token.text) >= 1):
            self._fail(
                f"Expected a version number (1, 2, ...) after {after}, e.g. {example}", token
            )
        return exp.Literal(this=token.text, is_string=False)

    # ----- functions

    def _parse_rewritten_predict(self, usage: str) -> list[exp.Expr] | None:
        """The arguments of ``predict`` as a client that regenerates SQL with sqlglot
        sends it: sqlglot reads ``predict('m', *)`` as BigQuery ML's PREDICT and writes
        ``PREDICT(MODEL 'm', *)`` (or ``TABLE *``, ``TABLE c``, ``TABLE a, b``; the model
        may come back unquoted). None when the call is not in that form."""
        first, model = self._curr, self._next
        if not (first and model and _word(first) == "MODEL"):
            return None
        if model.token_type not in (TokenType.STRING, TokenType.VAR, TokenType.IDENTIFIER):
            return None
        self._advance(2)
        if not self._match(TokenType.COMMA):
            self._fail(
                f"Expected ', *' after PREDICT(MODEL {model.text!r}: your client rewrote "
                f"predict(...) as BigQuery's PREDICT(MODEL ...); write {usage}"
            )
        self._match(TokenType.TABLE)
        return [exp.Literal.string(model.text), *self._parse_function_args()]

    def _parse_model_function(self, kind: type[ModelFunction]) -> ModelFunction:
        name = kind.sql_name().lower()
        usage = {
            SqlmlPredict: "predict('churn', *)",
            SqlmlPredictProba: "predict_proba('churn', *)",
            SqlmlEvaluate: "evaluate('churn', 'SELECT * FROM new_customers')",
            SqlmlFeatureImportance: "feature_importance('churn')",
        }[kind]
        name_token = self._tokens[self._index - 2]  # the parser is past `name(`
        args = self._parse_rewritten_predict(usage) if kind is SqlmlPredict else None
        if args is None:
            args = self._parse_function_args()
        if not self._match(TokenType.R_PAREN, advance=False):
            self._fail(f"Expected ')' to close {name}(...), e.g. {usage}")
        closing = self._curr
        if not args:
            self._fail(f"{name}() needs the model name as its first argument, e.g. {usage}")
        model, rest = args[0], args[1:]
        if not (isinstance(model, exp.Literal) and model.is_string):
            self._fail(
                f"{name}() takes the model name as a string literal first, e.g. {usage}; "
                f"got {model.sql(dialect='duckdb')}"
            )
        try:
            ModelRef.parse(model.name)
        except (InvalidModelName, AliasInvalid) as exc:
            self._fail(f"{name}(): {exc}")

        node: ModelFunction
        if kind in SCALAR_FUNCTIONS:
            if not rest:
                self._fail(f"{name}() needs its input columns after the model name, e.g. {usage}")
            for arg in rest:
                if not isinstance(arg, (exp.Star, exp.Column)):
                    self._fail(
                        f"{name}() takes column names, *, t.* or a table alias after the model "
                        f"name, e.g. {usage}; got {arg.sql(dialect='duckdb')}"
                    )
            node = kind(this=model, expressions=rest)
        elif kind is SqlmlEvaluate:
            if len(rest) != 1 or not (isinstance(rest[0], exp.Literal) and rest[0].is_string):
                self._fail(f"evaluate() takes a model name and a query as a string: {usage}")
            node = kind(this=model, expression=rest[0])
        else:
            if rest:
                self._fail(f"feature_importance() takes only the model name: {usage}")
            node = kind(this=model)
        node.update_positions(name_token)
        node.meta[END_META_KEY] = closing.end
        return node


# --------------------------------------------------------------------------- generator


#: Words every sqlml construct spells, in some case: the last word of each statement's
#: beginning (MODEL, MODELS) and the function names.
SQLML_WORDS = frozenset(
    [head[-1].casefold() for head in SqlmlParser.SQLML_STATEMENTS]
    + [name.casefold() for name in MODEL_FUNCTIONS]
)


def _options_sql(gen: Generator, node: CreateModel) -> str:
    options = node.args.get("options") or []
    if not options:
        return ""
    items = ", ".join(f"{o.name} = {gen.sql(o, 'value')}" for o in options)
    return f" OPTIONS ({items})"


class SqlmlGenerator(DuckDBGenerator):
    """DuckDB's generator, plus sqlml's statements (for display and round trips)."""

    TRANSFORMS: t.ClassVar[dict[type[exp.Expr], t.Callable[..., str]]] = {
        **DuckDBGenerator.TRANSFORMS,
        CreateModel: lambda self, e: (
            f"CREATE {'OR REPLACE ' if e.args.get('replace') else ''}MODEL "
            f"{self.sql(e, 'this')}{_options_sql(self, e)} AS {self.sql(e, 'expression')}"
        ),
        ShowModels: lambda self, e: "SHOW MODELS",
        DescribeModel: lambda self, e: (
            f"DESCRIBE MODEL {self.sql(e, 'this')}"
            + (f"@{self.sql(e, 'alias')}" if e.args.get("alias") else "")
            + (f" VERSION {self.sql(e, 'version')}" if e.args.get("version") else "")
        ),
        DropModel: lambda self, e: (
            f"DROP MODEL {'IF EXISTS ' if e.args.get('exists') else ''}{self.sql(e, 'this')}"
            + (f" VERSION {self.sql(e, 'version')}" if e.args.get("version") else "")
            + (" FORCE" if e.args.get("force") else "")
        ),
        Explain: lambda self, e: (
            f"EXPLAIN {'ANALYZE ' if e.args.get('analyze') else ''}{self.sql(e, 'this')}"
        ),
        DeployModel: lambda self, e: (
            f"DEPLOY MODEL {self.sql(e, 'this')} "
            + ("ROLLBACK" if e.args.get("rollback") else f"VERSION {self.sql(e, 'version')}")
            + (f" AS {self.sql(e, 'alias')}" if e.args.get("alias") else "")
        ),
    }


class SqlmlTokenizer(DuckDB.Tokenizer):
    """DuckDB's tokenizer, reading EXPLAIN's statement as tokens rather than one string."""

    KEYWORDS: t.ClassVar[dict[str, TokenType]] = {
        **DuckDB.Tokenizer.KEYWORDS,
        "EXPLAIN": TokenType.VAR,
    }


class Sqlml(DuckDB):
    """The sqlml dialect: DuckDB's SQL with sqlml's statements and functions.

    >>> from sqlglot import parse_one
    >>> parse_one("DROP MODEL churn VERSION 2", dialect=Sqlml).sql(dialect=Sqlml)
    'DROP MODEL churn VERSION 2'
    """

    Tokenizer = SqlmlTokenizer
    Parser = SqlmlParser
    Generator = SqlmlGenerator
