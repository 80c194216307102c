"""GetCatalogs, GetDbSchemas and GetTables, listed from the engine's information_schema."""

from __future__ import annotations

import re

import pyarrow as pa
from google.protobuf.message import Message

from sqlml.server import protocol as pb
from sqlml.server.schemas import (
    CATALOGS_SCHEMA,
    DB_SCHEMAS_SCHEMA,
    TABLES_SCHEMA,
    TABLES_WITH_SCHEMA_SCHEMA,
)
from sqlml.session import Session


def _like(pattern: str | None) -> re.Pattern[str] | None:
    """A SQL LIKE pattern (``%``, ``_``) as a regular expression; None matches anything."""
    if pattern is None:
        return None
    parts = [".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern]
    return re.compile("".join(parts), re.DOTALL)


def _matches(regex: re.Pattern[str] | None, value: str) -> bool:
    return regex is None or regex.fullmatch(value) is not None


def catalog_metadata(session: Session, command: Message) -> pa.Table:
    """GetCatalogs, GetDbSchemas and GetTables, from what the session lists."""
    schemata = [
        {"catalog_name": catalog, "schema_name": schema} for catalog, schema in session.schemata()
    ]
    if isinstance(command, pb.CommandGetCatalogs):
        names = sorted({row["catalog_name"] for row in schemata})
        return pa.table([pa.array(names, pa.utf8())], schema=CATALOGS_SCHEMA)
    catalog = command.catalog if command.HasField("catalog") else None
    schema_re = _like(
        command.db_schema_filter_pattern if command.HasField("db_schema_filter_pattern") else None
    )
    if isinstance(command, pb.CommandGetDbSchemas):
        pairs = sorted(
            {
                (row["catalog_name"], row["schema_name"])
                for row in schemata
                if (catalog is None or row["catalog_name"] == catalog)
                and _matches(schema_re, row["schema_name"])
            }
        )
        return pa.Table.from_pylist(
            [{"catalog_name": c, "db_schema_name": s} for c, s in pairs], schema=DB_SCHEMAS_SCHEMA
        )
    table_re = _like(
        command.table_name_filter_pattern if command.HasField("table_name_filter_pattern") else None
    )
    types = set(command.table_types)
    rows = []
    keys = ("table_catalog", "table_schema", "table_name", "table_type")
    for row in (dict(zip(keys, relation, strict=True)) for relation in session.relations()):
        table_type = "TABLE" if row["table_type"] == "BASE TABLE" else row["table_type"]
        if (
            (catalog is None or row["table_catalog"] == catalog)
            and _matches(schema_re, row["table_schema"])
            and _matches(table_re, row["table_name"])
            and (not types or table_type in types)
        ):
            rows.append(
                {
                    "catalog_name": row["table_catalog"],
                    "db_schema_name": row["table_schema"],
                    "table_name": row["table_name"],
                    "table_type": table_type,
                }
            )
    rows.sort(key=lambda r: (r["catalog_name"], r["db_schema_name"], r["table_name"]))
    if not command.include_schema:
        return pa.Table.from_pylist(rows, schema=TABLES_SCHEMA)
    for row in rows:
        parts = (row["catalog_name"], row["db_schema_name"], row["table_name"])
        schema = session.relation_schema(*parts)
        row["table_schema"] = schema.serialize().to_pybytes()
    return pa.Table.from_pylist(rows, schema=TABLES_WITH_SCHEMA_SCHEMA)
