"""The Flight SQL actions (DoAction): prepared statements and session options."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from sqlml.server import protocol as pb
from sqlml.server.state import Prepared, ServerState

#: An action's handler: ``(state, context, body) -> the bodies of its results``.
ActionHandler = Callable[[ServerState, Any, bytes], list[bytes]]


def create_prepared(state: ServerState, context: Any, body: bytes) -> list[bytes]:
    """CreatePreparedStatement: a handle, and the schema of the query's result."""
    request = pb.unpack(body)
    if not isinstance(request, pb.ActionCreatePreparedStatementRequest):
        raise pb.ProtocolError("expected ActionCreatePreparedStatementRequest")
    _, client = state.client(context)
    handle = secrets.token_bytes(16)
    with client.use() as session:
        # Known without running it for a query (statements are never run here); a
        # query that fails reports why when it is executed.
        script = session.script(request.query)
        schema = session.result_schema(script)
        client.prepared[handle] = Prepared(script)
    result = pb.ActionCreatePreparedStatementResult(prepared_statement_handle=handle)
    if schema is not None:
        result.dataset_schema = schema.serialize().to_pybytes()
    # parameter_schema stays empty: neither engine's Python API reports the types of
    # a statement's parameters, so the client's types are taken as they come.
    return [pb.pack_bytes(result)]


def close_prepared(state: ServerState, context: Any, body: bytes) -> list[bytes]:
    """ClosePreparedStatement."""
    request = pb.unpack(body)
    if not isinstance(request, pb.ActionClosePreparedStatementRequest):
        raise pb.ProtocolError("expected ActionClosePreparedStatementRequest")
    _, client = state.client(context)
    with client.lock:
        client.prepared.pop(request.prepared_statement_handle, None)
    return []


def set_session_options(state: ServerState, context: Any, body: bytes) -> list[bytes]:
    """SetSessionOptions: an empty value erases the option."""
    request = pb.ActionSetSessionOptionsRequest.FromString(body)
    _, client = state.client(context)
    result = pb.SetSessionOptionsResult()
    with client.lock:
        for name, value in request.session_options.items():
            kind = value.WhichOneof("option_value")
            if kind is None:  # an empty value erases the option
                client.options.pop(name, None)
            elif kind == "string_list_value":
                client.options[name] = list(value.string_list_value.values)
            else:
                client.options[name] = getattr(value, kind)
    return [result.SerializeToString()]


def get_session_options(state: ServerState, context: Any, body: bytes) -> list[bytes]:
    """GetSessionOptions."""
    _, client = state.client(context)
    result = pb.ActionGetSessionOptionsResult()
    with client.lock:
        options = dict(client.options)
    for name, value in options.items():
        slot = result.session_options[name]
        if isinstance(value, list):
            slot.string_list_value.values.extend(value)
        elif isinstance(value, bool):
            slot.bool_value = value
        elif isinstance(value, int):
            slot.int64_value = value
        elif isinstance(value, float):
            slot.double_value = value
        else:
            slot.string_value = str(value)
    return [result.SerializeToString()]


def close_session(state: ServerState, context: Any, body: bytes) -> list[bytes]:
    """CloseSession: the client's session, results and token."""
    state.close_client(state.client_key(context))
    return [pb.ActionCloseSessionResult(status=pb.SESSION_CLOSED).SerializeToString()]


#: Action type -> its description (ListActions) and handler.
ACTIONS: dict[str, tuple[str, ActionHandler]] = {
    "CreatePreparedStatement": (
        "prepare a query; returns its handle and schema",
        create_prepared,
    ),
    "ClosePreparedStatement": ("close a prepared statement", close_prepared),
    "SetSessionOptions": ("set options of the client's session", set_session_options),
    "GetSessionOptions": ("the options of the client's session", get_session_options),
    "CloseSession": (
        "close the client's session (TEMP tables go with it)",
        close_session,
    ),
}
