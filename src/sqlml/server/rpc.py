"""An Arrow Flight SQL server over sqlml sessions (``sqlml serve``).

The RPCs unpack the Flight SQL command and call its handler in
:data:`~sqlml.server.handlers.COMMANDS`; actions go by name through
:data:`~sqlml.server.actions.ACTIONS`. Client state lives in
:class:`~sqlml.server.state.ServerState`, authentication in :mod:`sqlml.server.auth`,
and :mod:`sqlml.server.errors` says how errors reach clients.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import pyarrow.flight as flight
from google.protobuf.message import Message

from sqlml.server import handlers
from sqlml.server import protocol as pb
from sqlml.server.actions import ACTIONS
from sqlml.server.auth import AuthMiddlewareFactory, Handshake
from sqlml.server.errors import flight_errors
from sqlml.server.metrics import Metrics
from sqlml.server.state import ServerOptions, ServerState
from sqlml.server.users import User


class SqlmlFlightServer(flight.FlightServerBase):  # type: ignore[misc]
    """The Flight SQL server: a session per client, results streamed from it.

    Args:
        location: ``grpc://host:port`` (``grpc+tls://`` with ``tls_certificates``).
        options: how client sessions are opened.
        users: the users by name (a password for a trainer, or a :class:`User`); empty
            for no authentication (every client then acts as an admin, as local use does).
        tls_certificates: ``[(cert_pem, key_pem)]`` to serve TLS.
        metrics: where to record Prometheus metrics; ``None`` for none.
        clock: the time tokens and login throttling go by (``time.monotonic``).
    """

    def __init__(
        self,
        location: str,
        options: ServerOptions,
        users: Mapping[str, User | str] | None = None,
        tls_certificates: Sequence[tuple[bytes, bytes]] | None = None,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.options = options
        self.metrics = metrics
        known = {
            name: user if isinstance(user, User) else User(name, password=user)
            for name, user in (users or {}).items()
        }
        self.auth = AuthMiddlewareFactory(known, token_ttl=options.token_ttl, clock=clock)
        self.state = ServerState(options, metrics, revoke=self.auth.revoke, users=known)
        super().__init__(
            location,
            auth_handler=Handshake(),
            middleware={"auth": self.auth},
            tls_certificates=list(tls_certificates or []),
        )

    def sweep(self, now: float | None = None) -> None:
        """Drop results never fetched and prepared statements no longer used, and close
        sessions idle for too long (see :meth:`ServerState.sweep`); drop expired tokens."""
        self.state.sweep(now)
        self.auth.sweep(now)

    def stop_streams(self) -> None:
        """Make every result stream end at its next batch (before shutting down)."""
        self.state.stopping.set()

    def close_sessions(self) -> None:
        """Close every client session (after shutdown)."""
        self.state.close_sessions()

    # --- Flight RPCs ------------------------------------------------------------------------

    def get_flight_info(self, context: Any, descriptor: Any) -> Any:
        with flight_errors():
            command = _command(descriptor)
            info = handlers.command_of(command).info or handlers.UNSUPPORTED
            key, owner, stream = info(self.state, context, command)
            handle = self.state.add_result(key, stream, owner)
            ticket = pb.pack_bytes(pb.TicketStatementQuery(statement_handle=handle))
            endpoint = flight.FlightEndpoint(ticket, [])
            return flight.FlightInfo(stream.schema, descriptor, [endpoint], -1, -1)

    def get_schema(self, context: Any, descriptor: Any) -> Any:
        with flight_errors():
            command = _command(descriptor)
            schema = handlers.command_of(command).schema
            if schema is None:
                raise NotImplementedError(f"{pb.name_of(command)} is not supported")
            return flight.SchemaResult(schema(self.state, context, command))

    def do_get(self, context: Any, ticket: Any) -> Any:
        with flight_errors():
            message = pb.unpack(ticket.ticket)
            get = handlers.command_of(message).get
            if get is None:
                raise pb.ProtocolError(f"unsupported ticket {pb.name_of(message)}")
            return get(self.state, context, message)

    def do_put(self, context: Any, descriptor: Any, reader: Any, writer: Any) -> None:
        with flight_errors():
            command = _command(descriptor)
            put = handlers.command_of(command).put
            if put is None:
                raise NotImplementedError(f"DoPut of {pb.name_of(command)} is not supported")
            put(self.state, context, command, reader, writer)

    def list_actions(self, context: Any) -> list[tuple[str, str]]:
        return [(name, description) for name, (description, _) in ACTIONS.items()]

    def do_action(self, context: Any, action: Any) -> Iterator[Any]:
        with flight_errors():
            body = action.body.to_pybytes() if action.body is not None else b""
            entry = ACTIONS.get(action.type)
            if entry is None:
                raise NotImplementedError(f"action {action.type!r} is not supported")
            _, handler = entry
            return iter([flight.Result(data) for data in handler(self.state, context, body)])


def _command(descriptor: Any) -> Message:
    if descriptor.descriptor_type != flight.DescriptorType.CMD:
        raise pb.ProtocolError("only command descriptors are supported")
    return pb.unpack(descriptor.command)
