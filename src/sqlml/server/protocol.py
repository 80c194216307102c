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
_UINT32, _INT64 = _F.TYPE_UINT32, _F.TYPE_INT64
_OPTIONAL, _REPEATED = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED

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
    "DoPutUpdateResult": (("record_count", 1, _INT64, _OPTIONAL),),
    "DoPutPreparedStatementResult": (("prepared_statement_handle", 1, _BYTES, _OPTIONAL),),
}


def _build() -> dict[str, type[Message]]:
    file = descriptor_pb2.FileDescriptorProto(
        name="sqlml/server/FlightSql.proto", package=PACKAGE, syntax="proto2"
    )
    for name, fields in MESSAGES.items():
        message = file.message_type.add(name=name)
        for field_name, number, type_, label in fields:
            message.field.add(name=field_name, number=number, type=type_, label=label)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{PACKAGE}.{name}"))
        for name in MESSAGES
    }


_CLASSES = _build()

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
DoPutUpdateResult = _CLASSES["DoPutUpdateResult"]
DoPutPreparedStatementResult = _CLASSES["DoPutPreparedStatementResult"]


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
