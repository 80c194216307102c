"""Expiry of results never fetched, swept in-process at an injected time."""

from __future__ import annotations

import time

import pyarrow as pa
import pytest

from sqlml.server.errors import NotFound
from sqlml.server.state import ServerOptions, ServerState, Stream


class Context:
    """The part of a Flight call's context the server state reads."""

    def get_middleware(self, name: str) -> None:
        return None

    def peer(self) -> str:
        return "ipv4:127.0.0.1:50000"


def test_sweep_drops_results_not_fetched_within_the_ticket_ttl() -> None:
    state = ServerState(ServerOptions(ticket_ttl=10.0))
    context = Context()
    key = state.client_key(context)
    finished: list[str] = []

    def stream() -> Stream:
        reader = pa.table({"x": [1, 2]}).to_reader()
        return Stream(reader, lambda status, rows: finished.append(status))

    early, late = state.add_result(key, stream(), None), state.add_result(key, stream(), None)
    state.sweep(now=time.monotonic() + 5)
    assert state.take_result(context, early).stream.next() is not None
    state.sweep(now=time.monotonic() + 11)
    assert finished == ["expired"]
    with pytest.raises(NotFound) as raised:  # match= would read its __notes__, which raise
        state.take_result(context, late)
    assert "unknown or expired ticket" in str(raised.value)
