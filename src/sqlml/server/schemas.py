"""The result schemas of the Flight SQL metadata commands, and the fixed results
(GetSqlInfo, GetTableTypes, GetXdbcTypeInfo) this server reports.

The schemas are exactly as FlightSql.proto defines them (ADBC compares them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from sqlml import __version__

CATALOGS_SCHEMA = pa.schema([pa.field("catalog_name", pa.utf8(), nullable=False)])
DB_SCHEMAS_SCHEMA = pa.schema(
    [pa.field("catalog_name", pa.utf8()), pa.field("db_schema_name", pa.utf8(), nullable=False)]
)
TABLES_SCHEMA = pa.schema(
    [
        pa.field("catalog_name", pa.utf8()),
        pa.field("db_schema_name", pa.utf8()),
        pa.field("table_name", pa.utf8(), nullable=False),
        pa.field("table_type", pa.utf8(), nullable=False),
    ]
)
TABLES_WITH_SCHEMA_SCHEMA = TABLES_SCHEMA.append(
    pa.field("table_schema", pa.binary(), nullable=False)
)
TABLE_TYPES_SCHEMA = pa.schema([pa.field("table_type", pa.utf8(), nullable=False)])
SQL_INFO_VALUE_TYPE = pa.dense_union(
    [
        pa.field("string_value", pa.utf8(), nullable=False),
        pa.field("bool_value", pa.bool_(), nullable=False),
        pa.field("bigint_value", pa.int64(), nullable=False),
        pa.field("int32_bitmask", pa.int32(), nullable=False),
        pa.field("string_list", pa.list_(pa.utf8()), nullable=False),
        pa.field(
            "int32_to_int32_list_map", pa.map_(pa.int32(), pa.list_(pa.int32())), nullable=False
        ),
    ]
)
SQL_INFO_SCHEMA = pa.schema(
    [
        pa.field("info_name", pa.uint32(), nullable=False),
        pa.field("value", SQL_INFO_VALUE_TYPE, nullable=False),
    ]
)

PRIMARY_KEYS_SCHEMA = pa.schema(
    [
        pa.field("catalog_name", pa.utf8()),
        pa.field("db_schema_name", pa.utf8()),
        pa.field("table_name", pa.utf8(), nullable=False),
        pa.field("column_name", pa.utf8(), nullable=False),
        pa.field("key_name", pa.utf8()),
        pa.field("key_sequence", pa.int32(), nullable=False),
    ]
)
#: GetImportedKeys, GetExportedKeys and GetCrossReference.
KEYS_SCHEMA = pa.schema(
    [
        pa.field("pk_catalog_name", pa.utf8()),
        pa.field("pk_db_schema_name", pa.utf8()),
        pa.field("pk_table_name", pa.utf8(), nullable=False),
        pa.field("pk_column_name", pa.utf8(), nullable=False),
        pa.field("fk_catalog_name", pa.utf8()),
        pa.field("fk_db_schema_name", pa.utf8()),
        pa.field("fk_table_name", pa.utf8(), nullable=False),
        pa.field("fk_column_name", pa.utf8(), nullable=False),
        pa.field("key_sequence", pa.int32(), nullable=False),
        pa.field("fk_key_name", pa.utf8()),
        pa.field("pk_key_name", pa.utf8()),
        pa.field("update_rule", pa.uint8(), nullable=False),
        pa.field("delete_rule", pa.uint8(), nullable=False),
    ]
)
XDBC_TYPE_INFO_SCHEMA = pa.schema(
    [
        pa.field("type_name", pa.utf8(), nullable=False),
        pa.field("data_type", pa.int32(), nullable=False),
        pa.field("column_size", pa.int32()),
        pa.field("literal_prefix", pa.utf8()),
        pa.field("literal_suffix", pa.utf8()),
        pa.field("create_params", pa.list_(pa.field("item", pa.utf8(), nullable=False))),
        pa.field("nullable", pa.int32(), nullable=False),
        pa.field("case_sensitive", pa.bool_(), nullable=False),
        pa.field("searchable", pa.int32(), nullable=False),
        pa.field("unsigned_attribute", pa.bool_()),
        pa.field("fixed_prec_scale", pa.bool_(), nullable=False),
        pa.field("auto_increment", pa.bool_()),
        pa.field("local_type_name", pa.utf8()),
        pa.field("minimum_scale", pa.int32()),
        pa.field("maximum_scale", pa.int32()),
        pa.field("sql_data_type", pa.int32(), nullable=False),
        pa.field("datetime_subcode", pa.int32()),
        pa.field("num_prec_radix", pa.int32()),
        pa.field("interval_precision", pa.int32()),
    ]
)

#: SqlInfo codes (FlightSql.proto) -> values this server reports.
SQL_INFO: dict[int, str | bool | int] = {
    0: "sqlml",  # FLIGHT_SQL_SERVER_NAME
    1: __version__,  # FLIGHT_SQL_SERVER_VERSION
    2: pa.__version__,  # FLIGHT_SQL_SERVER_ARROW_VERSION
    3: False,  # FLIGHT_SQL_SERVER_READ_ONLY
    4: True,  # FLIGHT_SQL_SERVER_SQL
    5: False,  # FLIGHT_SQL_SERVER_SUBSTRAIT
    8: 0,  # FLIGHT_SQL_SERVER_TRANSACTION: SQL_SUPPORTED_TRANSACTION_NONE (int32)
    9: False,  # FLIGHT_SQL_SERVER_CANCEL
    504: '"',  # SQL_IDENTIFIER_QUOTE_CHAR
}

TABLE_TYPES = ("TABLE", "VIEW", "LOCAL TEMPORARY")

#: The types both engines have, as GetXdbcTypeInfo reports them: (name, XdbcDataType,
#: column size, literal prefix, case sensitive, Searchable, unsigned, fixed precision and
#: scale, SQL data type, datetime subcode, radix); codes as in FlightSql.proto.
XDBC_TYPES: tuple[
    tuple[
        str, int, int | None, str | None, bool, int, bool | None, bool, int, int | None, int | None
    ],
    ...,
] = (
    ("BOOLEAN", -7, 1, None, False, 2, None, False, -7, None, None),
    ("TINYINT", -6, 3, None, False, 2, False, True, -6, None, 10),
    ("SMALLINT", 5, 5, None, False, 2, False, True, 5, None, 10),
    ("INTEGER", 4, 10, None, False, 2, False, True, 4, None, 10),
    ("BIGINT", -5, 19, None, False, 2, False, True, -5, None, 10),
    ("REAL", 7, 7, None, False, 2, False, False, 7, None, 2),
    ("DOUBLE", 8, 15, None, False, 2, False, False, 8, None, 2),
    ("DECIMAL", 3, 38, None, False, 2, False, True, 3, None, 10),
    ("VARCHAR", 12, None, "'", True, 3, None, False, 12, None, None),
    ("BLOB", -3, None, None, False, 0, None, False, -3, None, None),
    ("DATE", 91, 10, "DATE '", False, 2, None, False, 9, 1, None),
    ("TIME", 92, 8, "TIME '", False, 2, None, False, 9, 2, None),
    ("TIMESTAMP", 93, 26, "TIMESTAMP '", False, 2, None, False, 9, 3, None),
)


def sql_info_table(codes: Sequence[int]) -> pa.Table:
    """The GetSqlInfo result for ``codes`` (every known code when empty)."""
    wanted = [c for c in codes if c in SQL_INFO] if codes else list(SQL_INFO)
    children: list[list[Any]] = [[], [], [], [], [], []]
    type_ids: list[int] = []
    offsets: list[int] = []
    for code in wanted:
        value = SQL_INFO[code]
        if isinstance(value, bool):
            slot = 1
        elif isinstance(value, int):
            slot = 3
        else:
            slot = 0
        type_ids.append(slot)
        offsets.append(len(children[slot]))
        children[slot].append(value)
    child_arrays = [
        pa.array(values, type=SQL_INFO_VALUE_TYPE.field(i).type)
        for i, values in enumerate(children)
    ]
    value = pa.Array.from_buffers(
        SQL_INFO_VALUE_TYPE,
        len(wanted),
        [
            None,
            pa.array(type_ids, pa.int8()).buffers()[1],
            pa.array(offsets, pa.int32()).buffers()[1],
        ],
        children=child_arrays,
    )
    return pa.Table.from_arrays([pa.array(wanted, pa.uint32()), value], schema=SQL_INFO_SCHEMA)


def xdbc_type_info(data_type: int | None = None) -> pa.Table:
    """The GetXdbcTypeInfo result: every type of :data:`XDBC_TYPES`, or those of one
    XdbcDataType code.

    >>> xdbc_type_info(4).column("type_name").to_pylist()
    ['INTEGER']
    """
    rows = []
    for name, code, size, prefix, case, search, unsigned, fixed, sql_type, sub, radix in XDBC_TYPES:
        if data_type is not None and code != data_type:
            continue
        decimal = name == "DECIMAL"
        rows.append(
            {
                "type_name": name,
                "data_type": code,
                "column_size": size,
                "literal_prefix": prefix,
                "literal_suffix": "'" if prefix else None,
                "create_params": ["precision", "scale"] if decimal else None,
                "nullable": 1,  # NULLABILITY_NULLABLE
                "case_sensitive": case,
                "searchable": search,
                "unsigned_attribute": unsigned,
                "fixed_prec_scale": fixed,
                "auto_increment": None,
                "local_type_name": name,
                "minimum_scale": 0 if decimal else None,
                "maximum_scale": 38 if decimal else None,
                "sql_data_type": sql_type,
                "datetime_subcode": sub,
                "num_prec_radix": radix,
                "interval_precision": None,
            }
        )
    return pa.Table.from_pylist(rows, schema=XDBC_TYPE_INFO_SCHEMA)
