"""The SQL front end: the sqlml dialect (sqlglot), its parser, binder and rewriter."""

from __future__ import annotations

from sqlml.engines.binding import Binding
from sqlml.sql.dialect import Sqlml
from sqlml.sql.frontend import (
    Bind,
    CreateModelStatement,
    DeployModelStatement,
    DescribeModelStatement,
    DropModelStatement,
    QueryStatement,
    ShowModelsStatement,
    Statement,
    TableFunctionCall,
    TableFunctionHandler,
    parse_statement,
    split_statements,
)
from sqlml.sql.rewrite import replace_table_functions, rewrite_query

__all__ = [
    "Bind",
    "Binding",
    "CreateModelStatement",
    "DeployModelStatement",
    "DescribeModelStatement",
    "DropModelStatement",
    "QueryStatement",
    "ShowModelsStatement",
    "Sqlml",
    "Statement",
    "TableFunctionCall",
    "TableFunctionHandler",
    "parse_statement",
    "replace_table_functions",
    "rewrite_query",
    "split_statements",
]
