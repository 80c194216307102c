"""The sqlml SQL dialect: DuckDB's SQL plus sqlml's statements and functions.

:class:`Sqlml` is a sqlglot dialect built on sqlglot's DuckDB dialect. It adds:

- the statements ``CREATE [OR REPLACE] MODEL name [OPTIONS (key = value, ...)] AS <query>``,
  ``SHOW MODELS``, ``DESCRIBE MODEL name``, ``DROP MODEL [IF EXISTS] name [VERSION n]`` and
  ``DEPLOY MODEL name VERSION n [AS alias]``;
- the scalar functions ``predict('model', ...)`` and ``predict_proba('model', ...)``;
- the table functions ``evaluate('model', '<select>')`` and ``feature_importance('model')``.

Each parses into its own expression class (:mod:`sqlml.sql.expressions`). The parser
checks the forms (model names, option values, argument shapes) and reports mistakes as
sqlglot ``ParseError`` with a position; :mod:`sqlml.sql.frontend` turns them into
:class:`sqlml.errors.SqlSyntaxError`.

Nodes produced by the sqlml functions record where they end in the source text
(``meta["sqlml_end"]``, next to sqlglot's own ``meta["start"]``) so the front end can
replace exactly that text and leave the rest of the statement as the user wrote it.
"""

from __future__ import annotations

import typing as t
from collections.abc import Sequence

from sqlglot import exp
from sqlglot.dialects.duckdb import DuckDB
from sqlglot.errors import ParseError
from sqlglot.generator import Generator
from sqlglot.generators.duckdb import DuckDBGenerator
from sqlglot.parsers.duckdb import DuckDBParser
from sqlglot.tokenizer_core import Token, TokenType

from sqlml.catalog.entities import ModelRef, validate_alias, validate_name
from sqlml.errors import AliasInvalid, InvalidModelName
from sqlml.sql.expressions import (
    END_META_KEY as END_META_KEY,
)
from sqlml.sql.expressions import (
    MODEL_FUNCTIONS as MODEL_FUNCTIONS,
)
from sqlml.sql.expressions import (
    QUERY_SPAN_META_KEY as QUERY_SPAN_META_KEY,
)
from sqlml.sql.expressions import (
    SCALAR_FUNCTIONS as SCALAR_FUNCTIONS,
)
from sqlml.sql.expressions import (
    STATEMENTS as STATEMENTS,
)
from sqlml.sql.expressions import (
    TABLE_FUNCTIONS as TABLE_FUNCTIONS,
)
from sqlml.sql.expressions import (
    CreateModel as CreateModel,
)
from sqlml.sql.expressions import (
    DeployModel as DeployModel,
)
from sqlml.sql.expressions import (
    DescribeModel as DescribeModel,
)
from sqlml.sql.expressions import (
    DropModel as DropModel,
)
from sqlml.sql.expressions import (
    Explain as Explain,
)
from sqlml.sql.expressions import (
    ModelFunction as ModelFunction,
)
from sqlml.sql.expressions import (
    OptionValue as OptionValue,
)
from sqlml.sql.expressions import (
    ShowModels as ShowModels,
)
from sqlml.sql.expressions import (
    SqlmlEvaluate as SqlmlEvaluate,
)
from sqlml.sql.expressions import (
    SqlmlFeatureImportance as SqlmlFeatureImportance,
)
from sqlml.sql.expressions import (
    SqlmlPredict as SqlmlPredict,
)
from sqlml.sql.expressions import (
    SqlmlPredictProba as SqlmlPredictProba,
)
from sqlml.sql.expressions import (
    _NotAnOption as _NotAnOption,
)
from sqlml.sql.expressions import (
    _scalar as _scalar,
)
from sqlml.sql.expressions import (
    option_value as option_value,
)

# --------------------------------------------------------------------------- tokens


_STRINGLIKE = DuckDBParser.TEXT_MATCH_EXCLUDED_TOKENS


def _word(token: Token) -> str | None:
    """The upper-cased keyword a token spells, or None for strings and quoted names."""
    return None if token.token_type in _STRINGLIKE else token.text.upper()


def starts_sqlml_statement(tokens: Sequence[Token]) -> bool:
    """Whether ``tokens`` begin one of sqlml's statements (CREATE MODEL, SHOW MODELS...)."""
    while tokens and _word(tokens[0]) in ("EXPLAIN", "ANALYZE"):
        tokens = tokens[1:]
    words = [_word(token) for token in tokens[:4]]
    words += [None] * (4 - len(words))
    first, second = words[0], words[1]
    if first == "CREATE":
        return second == "MODEL" or words[1:4] == ["OR", "REPLACE", "MODEL"]
    if first == "SHOW":
        return second == "MODELS" and len(tokens) == 2
    if first == "DESCRIBE":
        # ``DESCRIBE model`` and ``DESCRIBE model.t`` describe tables named ``model``.
        return second == "MODEL" and len(tokens) > 2 and tokens[2].token_type != TokenType.DOT
    return first in ("DROP", "DEPLOY") and second == "MODEL"


def calls_model_function(tokens: Sequence[Token], index: int) -> bool:
    """Whether ``tokens[index]`` starts a call of a sqlml function (``predict(`` ...)."""
    token = tokens[index]
    return (
        token.token_type in (TokenType.VAR, TokenType.IDENTIFIER)
        and token.text.upper() in MODEL_FUNCTIONS
        and index + 1 < len(tokens)
        and tokens[index + 1].token_type == TokenType.L_PAREN
        and (index == 0 or tokens[index - 1].token_type != TokenType.DOT)
    )


def has_sqlml_construct(tokens: Sequence[Token]) -> bool:
    """Whether a token stream holds any sqlml statement or function call.

    Statements are recognised at the start of the text and after each semicolon.
    """
    start = 0
    for index, token in enumerate(tokens):
        if token.token_type == TokenType.SEMICOLON:
            if starts_sqlml_statement(tokens[start:index]):
                return True
            start = index + 1
        elif calls_model_function(tokens, index):
            return True
    return starts_sqlml_statement(tokens[start:])


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

    STATEMENT_PARSERS: t.ClassVar[dict[TokenType, t.Callable[..., exp.Expr | None]]] = {
        **DuckDBParser.STATEMENT_PARSERS,
        TokenType.CREATE: lambda self: self._parse_create_or_model(),
        TokenType.DESCRIBE: lambda self: self._parse_describe_or_model(),
        TokenType.DROP: lambda self: self._parse_drop_or_model(),
        TokenType.SHOW: lambda self: self._parse_show_or_models(),
    }

    def _fail(self, message: str, token: Token | None = None) -> t.NoReturn:
        self.raise_error(message, token or self._curr or self._prev)
        raise ParseError(message)  # reached only when the error level does not raise

    def _parse_statement(self) -> exp.Expr | None:
        if _word(self._curr) == "EXPLAIN":
            self._advance()
            analyze = self._match_text_seq("ANALYZE")
            statement = self._parse_statement()
            if statement is None:
                self._fail("Expected a statement after EXPLAIN")
            return self.expression(Explain(this=statement, analyze=analyze))
        if (
            _word(self._curr) == "DEPLOY"
            and _word(self._next) == "MODEL"
            and self._index == 0  # a statement's first token
        ):
            self._advance(2)
            return self._parse_deploy_model()
        return super()._parse_statement()

    # ----- statements

    def _parse_create_or_model(self) -> exp.Expr:
        index = self._index
        replace = self._match_text_seq("OR", "REPLACE")
        if self._match_text_seq("MODEL"):
            return self._parse_create_model(replace)
        self._retreat(index)
        return self._parse_create()

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

    def _parse_describe_or_model(self) -> exp.Expr:
        if self._match_text_seq("MODEL"):
            if self._curr and self._curr.token_type != TokenType.DOT:
                return self.expression(DescribeModel(this=self._parse_model_name("DESCRIBE MODEL")))
            self._retreat(self._index - 1)
        return self._parse_describe()

    def _parse_drop_or_model(self) -> exp.Expr:
        if not self._match_text_seq("MODEL"):
            return self._parse_drop()
        exists = self._parse_exists()
        name = self._parse_model_name("DROP MODEL")
        version = None
        if self._match_text_seq("VERSION"):
            version = self._parse_version_number(f"DROP MODEL {name.name} VERSION 3")
        return self.expression(DropModel(this=name, exists=exists, version=version))

    def _parse_deploy_model(self) -> DeployModel:
        name = self._parse_model_name("DEPLOY MODEL")
        example = f"DEPLOY MODEL {name.name} VERSION 3 [AS production]"
        if not self._match_text_seq("VERSION"):
            self._fail(f"Expected VERSION <number> after DEPLOY MODEL {name.name}: {example}")
        version = self._parse_version_number(example)
        alias = None
        if self._match(TokenType.ALIAS):
            alias = self._parse_id_var(any_token=True)
            if not isinstance(alias, exp.Identifier) or self._prev.token_type == TokenType.STRING:
                self._fail(f"Expected an alias name after AS: {example}")
            try:
                validate_alias(alias.name)
            except AliasInvalid as exc:
                self._fail(str(exc), self._prev)
        return self.expression(DeployModel(this=name, version=version, alias=alias))

    def _parse_show_or_models(self) -> exp.Expr | None:
        if self._match_text_seq("MODELS"):
            if not self._curr:
                return self.expression(ShowModels())
            self._retreat(self._index - 1)
        return self._parse_show()

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

    def _parse_version_number(self, example: str) -> exp.Literal:
        token = self._curr
        if not (self._match(TokenType.NUMBER) and token.text.isdigit() and int(token.text) >= 1):
            self._fail(f"Expected a version number (1, 2, ...) after VERSION, e.g. {example}")
        return exp.Literal(this=token.text, is_string=False)

    # ----- functions

    def _parse_model_function(self, kind: type[ModelFunction]) -> ModelFunction:
        name = kind.sql_name().lower()
        usage = {
            SqlmlPredict: "predict('churn', *)",
            SqlmlPredictProba: "predict_proba('churn', *)",
            SqlmlEvaluate: "evaluate('churn', 'SELECT * FROM new_customers')",
            SqlmlFeatureImportance: "feature_importance('churn')",
        }[kind]
        name_token = self._tokens[self._index - 2]  # the parser is past `name(`
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
        DescribeModel: lambda self, e: f"DESCRIBE MODEL {self.sql(e, 'this')}",
        DropModel: lambda self, e: (
            f"DROP MODEL {'IF EXISTS ' if e.args.get('exists') else ''}{self.sql(e, 'this')}"
            + (f" VERSION {self.sql(e, 'version')}" if e.args.get("version") else "")
        ),
        Explain: lambda self, e: (
            f"EXPLAIN {'ANALYZE ' if e.args.get('analyze') else ''}{self.sql(e, 'this')}"
        ),
        DeployModel: lambda self, e: (
            f"DEPLOY MODEL {self.sql(e, 'this')} VERSION {self.sql(e, 'version')}"
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


# --------------------------------------------------------------------------- DataFusion


def _named_struct_sql(gen: Generator, node: exp.Struct) -> str:
    """``named_struct('a', x, 'b', y)``: DataFusion's struct with named fields."""
    args: list[str] = []
    for i, field in enumerate(node.expressions):
        if isinstance(field, exp.PropertyEQ):
            args += [gen.sql(exp.Literal.string(field.name)), gen.sql(field, "expression")]
        else:
            args += [gen.sql(exp.Literal.string(f"c{i}")), gen.sql(field)]
    return f"named_struct({', '.join(args)})"


class SqlmlDataFusionGenerator(SqlmlGenerator):
    """The generator for DataFusion: what the front end writes into DataFusion statements.

    The front end only writes its own constructs (bound function calls, quoted column
    names, relation names); everything else in a statement reaches DataFusion as written.
    """

    TRANSFORMS: t.ClassVar[dict[type[exp.Expr], t.Callable[..., str]]] = {
        **SqlmlGenerator.TRANSFORMS,
        exp.Struct: _named_struct_sql,
    }

    def extract_sql(self, expression: exp.Extract) -> str:
        # DataFusion knows PostgreSQL's EXTRACT(DOY ...), not DuckDB's EXTRACT(DAYOFYEAR ...).
        return f"EXTRACT({expression.this.name} FROM {self.sql(expression, 'expression')})"


class SqlmlDataFusion(Sqlml):
    """The sqlml dialect for DataFusion.

    sqlglot has no DataFusion dialect. DataFusion's SQL (sqlparser-rs, PostgreSQL-like)
    is read with the DuckDB-based grammar of :class:`Sqlml`, which accepts what surrounds
    sqlml's calls (``::`` casts, ``arrow_cast(...)``, ``named_struct``, subqueries without
    aliases, ...); statements without sqlml constructs are never parsed and reach
    DataFusion unchanged. Structs are written as DataFusion's ``named_struct``.

    >>> from sqlglot import parse_one
    >>> parse_one("SELECT {'a': x} AS s", dialect=SqlmlDataFusion).sql(dialect=SqlmlDataFusion)
    "SELECT named_struct('a', x) AS s"
    """

    Generator = SqlmlDataFusionGenerator
