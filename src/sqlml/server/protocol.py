"""The Flight SQL protocol messages sqlml's server speaks, built without code generation.

Flight SQL commands travel as protobuf messages packed in ``google.protobuf.Any`` with type
URLs ``type.googleapis.com/arrow.flight.protocol.sql.<Message>``. The messages below are
wire-compatible with Apache Arrow's ``FlightSql.proto`` (same package, names, field numbers
and types). They are declared as proto2 so every field has presence (``HasField``), which
FlightSql.proto's ``optional`` fields need; presence does not change the wire format.

They live in a private descriptor pool, so they never clash with another copy of the
protocol in the same process (flightsql-dbapi ships its own generated module).

>>> msg = CommandStatementQuery(query="SELECT 1")
>>> any_ = pack(msg)
>>> any_.type_url
'type.googleapis.com/arrow.flight.protocol.sql.CommandStatementQuery'
>>> unpack(any_.SerializeToString()).query
'SELECT 1'
"""

from __future__ import annotations

from typing import Any

from google.protobuf import any_pb2, descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError, Message

PACKAGE = "arrow.flight.protocol.sql"
TYPE_URL_PREFIX = f"type.googleapis.com/{PACKAGE}."

_F = descriptor_pb2.FieldDescriptorProto
_STRING, _BYTES, _BOOL = _F.TYPE_STRING, _F.TYPE_BYTES, _F.TYPE_BOOL
_UINT32, _INT32, _INT64 = _F.TYPE_UINT32, _F.TYPE_INT32, _F.TYPE_INT64
_SFIXED64, _DOUBLE, _MESSAGE = _F.TYPE_SFIXED64, _F.TYPE_DOUBLE, _F.TYPE_MESSAGE
_OPTIONAL, _REPEATED = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED

_TABLE_REF = (
    ("catalog", 1, _STRING, _OPTIONAL),
    ("db_schema", 2, _STRING, _OPTIONAL),
    ("table", 3, _STRING, _OPTIONAL),
)

#: message name -> (field name, number, type, label); numbers as in FlightSql.proto.
MESSAGES: dict[str, tuple[tuple[str, int, int, int], ...]] = {
    "CommandGetSqlInfo": (("info", 1, _UINT32, _REPEATED),),
    "CommandGetCatalogs": (),
    "CommandGetDbSchemas": (
        ("catalog", 1, _STRING, _OPTIONAL),
        ("db_schema_filter_pattern", 2, _STRING, _OPTIONAL),
    ),
    "CommandGetTables": (
        ("catalog", 1, _STRING, _OPTIONAL),
        ("db_schema_filter_pattern", 2, _STRING, _OPTIONAL),
        ("table_name_filter_pattern", 3, _STRING, _OPTIONAL),
        ("table_types", 4, _STRING, _REPEATED),
        ("include_schema", 5, _BOOL, _OPTIONAL),
    ),
    "CommandGetTableTypes": (),
    "CommandStatementQuery": (
        ("query", 1, _STRING, _OPTIONAL),
        ("transaction_id", 2, _BYTES, _OPTIONAL),
    ),
    "TicketStatementQuery": (("statement_handle", 1, _BYTES, _OPTIONAL),),
    "CommandStatementUpdate": (
        ("query", 1, _STRING, _OPTIONAL),
        ("transaction_id", 2, _BYTES, _OPTIONAL),
    ),
    "CommandPreparedStatementQuery": (("prepared_statement_handle", 1, _BYTES, _OPTIONAL),),
    "CommandPreparedStatementUpdate": (("prepared_statement_handle", 1, _BYTES, _OPTIONAL),),
    "ActionCreatePreparedStatementRequest": (
        ("query", 1, _STRING, _OPTIONAL),
        ("transaction_id", 2, _BYTES, _OPTIONAL),
    ),
    "ActionCreatePreparedStatementResult": (
        ("prepared_statement_handle", 1, _BYTES, _OPTIONAL),
        ("dataset_schema", 2, _BYTES, _OPTIONAL),
        ("parameter_schema", 3, _BYTES, _OPTIONAL),
    ),
    "ActionClosePreparedStatementRequest": (("prepared_statement_handle", 1, _BYTES, _OPTIONAL),),
    "CommandGetXdbcTypeInfo": (("data_type", 1, _INT32, _OPTIONAL),),
    "CommandGetPrimaryKeys": _TABLE_REF,
    "CommandGetExportedKeys": _TABLE_REF,
    "CommandGetImportedKeys": _TABLE_REF,
    "CommandGetCrossReference": (
        ("pk_catalog", 1, _STRING, _OPTIONAL),
        ("pk_db_schema", 2, _STRING, _OPTIONAL),
        ("pk_table", 3, _STRING, _OPTIONAL),
        ("fk_catalog", 4, _STRING, _OPTIONAL),
        ("fk_db_schema", 5, _STRING, _OPTIONAL),
        ("fk_table", 6, _STRING, _OPTIONAL),
    ),
    "DoPutUpdateResult": (("record_count", 1, _INT64, _OPTIONAL),),
    "DoPutPreparedStatementResult": (("prepared_statement_handle", 1, _BYTES, _OPTIONAL),),
}


#: Flight's session actions (``Flight.proto``, package ``arrow.flight.protocol``): their
#: bodies and results are these messages serialized as they are, not packed in an ``Any``.
SESSION_PACKAGE = "arrow.flight.protocol"


def _build_session(pool: descriptor_pool.DescriptorPool) -> dict[str, type[Message]]:
    file = descriptor_pb2.FileDescriptorProto(
        name="sqlml/server/Flight.proto", package=SESSION_PACKAGE, syntax="proto3"
    )
    value = file.message_type.add(name="SessionOptionValue")
    value.nested_type.add(name="StringListValue").field.add(
        name="values", number=1, type=_STRING, label=_REPEATED
    )
    value.oneof_decl.add(name="option_value")
    for name, number, type_ in (
        ("string_value", 1, _STRING),
        ("bool_value", 2, _BOOL),
        ("int64_value", 3, _SFIXED64),
        ("double_value", 4, _DOUBLE),
    ):
        value.field.add(name=name, number=number, type=type_, label=_OPTIONAL, oneof_index=0)
    value.field.add(
        name="string_list_value",
        number=5,
        type=_MESSAGE,
        label=_OPTIONAL,
        oneof_index=0,
        type_name=f".{SESSION_PACKAGE}.SessionOptionValue.StringListValue",
    )

    def add_map(message: Any, field: str, entry: str, value_type: str) -> None:
        nested = message.nested_type.add(name=entry)
        nested.options.map_entry = True
        nested.field.add(name="key", number=1, type=_STRING, label=_OPTIONAL)
        nested.field.add(
            name="value", number=2, type=_MESSAGE, label=_OPTIONAL, type_name=value_type
        )
        message.field.add(
            name=field,
            number=1,
            type=_MESSAGE,
            label=_REPEATED,
            type_name=f".{SESSION_PACKAGE}.{message.name}.{entry}",
        )

    option_value = f".{SESSION_PACKAGE}.SessionOptionValue"
    add_map(
        file.message_type.add(name="ActionSetSessionOptionsRequest"),
        "session_options",
        "SessionOptionsEntry",
        option_value,
    )
    result = file.message_type.add(name="SetSessionOptionsResult")
    # ErrorValue is an enum in Flight.proto; an int32 has the same encoding.
    result.nested_type.add(name="Error").field.add(
        name="value", number=1, type=_INT32, label=_OPTIONAL
    )
    add_map(result, "errors", "ErrorsEntry", f".{SESSION_PACKAGE}.SetSessionOptionsResult.Error")
    file.message_type.add(name="ActionGetSessionOptionsRequest")
    add_map(
        file.message_type.add(name="ActionGetSessionOptionsResult"),
        "session_options",
        "SessionOptionsEntry",
        option_value,
    )
    file.message_type.add(name="ActionCloseSessionRequest")
    file.message_type.add(name="ActionCloseSessionResult").field.add(
        name="status",
        number=1,
        type=_INT32,
        label=_OPTIONAL,  # enum Status
    )
    pool.Add(file)
    names = [m.name for m in file.message_type]
    return {
        name: message_factory.GetMessageClass(
            pool.FindMessageTypeByName(f"{SESSION_PACKAGE}.{name}")
        )
        for name in names
    }


#: SetSessionOptionsResult.ErrorValue
SESSION_OPTION_INVALID_NAME, SESSION_OPTION_INVALID_VALUE = 1, 2
#: ActionCloseSessionResult.Status
SESSION_CLOSED = 1


def _build(pool: descriptor_pool.DescriptorPool) -> dict[str, type[Message]]:
    file = descriptor_pb2.FileDescriptorProto(
        name="sqlml/server/FlightSql.proto", package=PACKAGE, syntax="proto2"
    )
    for name, fields in MESSAGES.items():
        message = file.message_type.add(name=name)
        for field_name, number, type_, label in fields:
            message.field.add(name=field_name, number=number, type=type_, label=label)
    pool.Add(file)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{PACKAGE}.{name}"))
        for name in MESSAGES
    }


_POOL = descriptor_pool.DescriptorPool()
_SESSION_CLASSES = _build_session(_POOL)


_CLASSES = _build(_POOL)

CommandGetSqlInfo = _CLASSES["CommandGetSqlInfo"]
CommandGetCatalogs = _CLASSES["CommandGetCatalogs"]
CommandGetDbSchemas = _CLASSES["CommandGetDbSchemas"]
CommandGetTables = _CLASSES["CommandGetTables"]
CommandGetTableTypes = _CLASSES["CommandGetTableTypes"]
CommandStatementQuery = _CLASSES["CommandStatementQuery"]
TicketStatementQuery = _CLASSES["TicketStatementQuery"]
CommandStatementUpdate = _CLASSES["CommandStatementUpdate"]
CommandPreparedStatementQuery = _CLASSES["CommandPreparedStatementQuery"]
CommandPreparedStatementUpdate = _CLASSES["CommandPreparedStatementUpdate"]
ActionCreatePreparedStatementRequest = _CLASSES["ActionCreatePreparedStatementRequest"]
ActionCreatePreparedStatementResult = _CLASSES["ActionCreatePreparedStatementResult"]
ActionClosePreparedStatementRequest = _CLASSES["ActionClosePreparedStatementRequest"]
CommandGetXdbcTypeInfo = _CLASSES["CommandGetXdbcTypeInfo"]
CommandGetPrimaryKeys = _CLASSES["CommandGetPrimaryKeys"]
CommandGetExportedKeys = _CLASSES["CommandGetExportedKeys"]
CommandGetImportedKeys = _CLASSES["CommandGetImportedKeys"]
CommandGetCrossReference = _CLASSES["CommandGetCrossReference"]
DoPutUpdateResult = _CLASSES["DoPutUpdateResult"]
DoPutPreparedStatementResult = _CLASSES["DoPutPreparedStatementResult"]

SessionOptionValue = _SESSION_CLASSES["SessionOptionValue"]
ActionSetSessionOptionsRequest = _SESSION_CLASSES["ActionSetSessionOptionsRequest"]
SetSessionOptionsResult = _SESSION_CLASSES["SetSessionOptionsResult"]
ActionGetSessionOptionsRequest = _SESSION_CLASSES["ActionGetSessionOptionsRequest"]
ActionGetSessionOptionsResult = _SESSION_CLASSES["ActionGetSessionOptionsResult"]
ActionCloseSessionRequest = _SESSION_CLASSES["ActionCloseSessionRequest"]
ActionCloseSessionResult = _SESSION_CLASSES["ActionCloseSessionResult"]


class ProtocolError(ValueError):
    """Bytes that are not a Flight SQL command this server knows."""


def pack(message: Message) -> Any:
    """``message`` packed in a ``google.protobuf.Any``."""
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def pack_bytes(message: Message) -> bytes:
    """``message`` packed in a ``google.protobuf.Any``, serialized."""
    data: bytes = pack(message).SerializeToString()
    return data


def unpack(data: bytes) -> Message:
    """The Flight SQL message in a serialized ``google.protobuf.Any``.

    Raises:
        ProtocolError: the bytes are not an ``Any`` or hold a message this server does not
            know.
    """
    packed = any_pb2.Any()
    try:
        packed.ParseFromString(data)
    except DecodeError as exc:
        raise ProtocolError("not a Flight SQL command (protobuf Any)") from exc
    url: str = packed.type_url
    name = url.removeprefix(TYPE_URL_PREFIX)
    cls = _CLASSES.get(name) if url.startswith(TYPE_URL_PREFIX) else None
    if cls is None:
        raise ProtocolError(f"unsupported Flight SQL command {url or '(empty)'}")
    message = cls()
    try:
        message.ParseFromString(packed.value)
    except DecodeError as exc:
        raise ProtocolError(f"malformed {name}") from exc
    return message


def name_of(message: Message) -> str:
    """The message's short name, e.g. ``CommandStatementQuery``."""
    name: str = message.DESCRIPTOR.name
    return name
