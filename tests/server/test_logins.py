"""Bearer tokens expire and failed logins are throttled: a real in-process server, the
pyarrow Flight client, and a clock the test moves (no sleeps)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pyarrow.flight as flight
import pytest

from sqlml.server.auth import FREE_FAILURES, LOCKOUT, STORM_FAILURES, STORM_WINDOW
from sqlml.server.rpc import SqlmlFlightServer
from sqlml.server.state import ServerOptions

from .conftest import in_process_server


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def server(tmp_path: Path, clock: Clock) -> Iterator[SqlmlFlightServer]:
    options = ServerOptions(
        engine="duckdb", catalog=f"sqlite:///{tmp_path / 'catalog.db'}", token_ttl=600.0
    )
    with in_process_server(options, {"ann": "one", "bob": "two"}, clock=clock) as running:
        yield running


def _client(server: SqlmlFlightServer) -> flight.FlightClient:
    return flight.FlightClient(f"grpc://127.0.0.1:{server.port}")


def _login(client: flight.FlightClient, user: str, password: str) -> flight.FlightCallOptions:
    header = client.authenticate_basic_token(user, password)
    return flight.FlightCallOptions(headers=[header])


def _works(client: flight.FlightClient, options: flight.FlightCallOptions) -> bool:
    try:
        list(client.list_actions(options))
    except flight.FlightUnauthenticatedError:
        return False
    return True


def test_tokens_expire_and_are_swept_without_a_session(
    server: SqlmlFlightServer, clock: Clock
) -> None:
    client = _client(server)
    try:
        options = _login(client, "ann", "one")
        assert _works(client, options)
        clock.now += 599
        assert _works(client, options)
        clock.now += 2
        with pytest.raises(flight.FlightUnauthenticatedError, match="invalid or expired token"):
            list(client.list_actions(options))
        # Logins that never open a session leave tokens behind until they expire.
        for _ in range(20):
            _login(client, "bob", "two")
        assert len(server.auth.tokens) == 20
        server.sweep(now=clock.now + 300)
        assert len(server.auth.tokens) == 20
        server.sweep(now=clock.now + 601)
        assert server.auth.tokens == {}
        # A fresh login works again.
        assert _works(client, _login(client, "ann", "one"))
    finally:
        client.close()


def test_failed_logins_are_throttled_per_user_then_locked_out(
    server: SqlmlFlightServer, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    client = _client(server)
    caplog.set_level(logging.WARNING, logger="sqlml.server")
    try:
        for _ in range(FREE_FAILURES):
            with pytest.raises(flight.FlightUnauthenticatedError, match="invalid user or password"):
                _login(client, "ann", "wrong-password")
        assert _works(client, _login(client, "ann", "one"))  # a success clears the count
        for _ in range(FREE_FAILURES + 1):
            with pytest.raises(flight.FlightUnauthenticatedError, match="invalid user or password"):
                _login(client, "ann", "wrong-password")
        # Now refused for a second, right password or not; other users are not affected.
        with pytest.raises(flight.FlightUnauthenticatedError, match="too many failed logins"):
            _login(client, "ann", "one")
        assert _works(client, _login(client, "bob", "two"))
        clock.now += 1.5
        assert _works(client, _login(client, "ann", "one"))
        # Each failure past the free ones doubles the wait, up to the lockout.
        seconds = []
        for failure in range(1, FREE_FAILURES + 13):
            clock.now += LOCKOUT + 1  # wait out any block, so the password is checked
            with pytest.raises(flight.FlightUnauthenticatedError, match="invalid user"):
                _login(client, "ann", "wrong-password")
            if failure > FREE_FAILURES:  # (before, a right password would clear the count)
                with pytest.raises(flight.FlightUnauthenticatedError) as refused:
                    _login(client, "ann", "one")
                message = str(refused.value)
                seconds.append(int(message.split("try again in ")[1].split(" s")[0]))
    finally:
        client.close()
    assert seconds == [min(2**n, int(LOCKOUT)) for n in range(12)]
    logged = caplog.text
    assert "failed login for user ann" in logged
    assert "wrong-password" not in logged


def test_a_storm_of_failed_logins_takes_every_users_free_failures(
    server: SqlmlFlightServer, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    # One address trying many user names: the server cannot see the address, so past
    # STORM_FAILURES failures in STORM_WINDOW seconds nobody gets free failures.
    client = _client(server)
    caplog.set_level(logging.WARNING, logger="sqlml.server")
    try:
        for n in range(STORM_FAILURES - 1):
            with pytest.raises(flight.FlightUnauthenticatedError, match="invalid user"):
                _login(client, f"guess{n}", "password1")
        # Below the storm, a user still has their free failures.
        with pytest.raises(flight.FlightUnauthenticatedError, match="invalid user"):
            _login(client, "bob", "wrong")
        assert _works(client, _login(client, "bob", "two"))
        # In the storm, one failure refuses that user's logins for a second...
        with pytest.raises(flight.FlightUnauthenticatedError, match="invalid user"):
            _login(client, "ann", "wrong")
        with pytest.raises(flight.FlightUnauthenticatedError, match="too many failed logins"):
            _login(client, "ann", "one")
        # ...while users who type their password right log in as usual.
        assert _works(client, _login(client, "bob", "two"))
        clock.now += 1.5
        assert _works(client, _login(client, "ann", "one"))
        # Once the window has passed, free failures are back.
        clock.now += STORM_WINDOW
        for _ in range(FREE_FAILURES):
            with pytest.raises(flight.FlightUnauthenticatedError, match="invalid user"):
                _login(client, "ann", "wrong")
        assert _works(client, _login(client, "ann", "one"))
    finally:
        client.close()
    assert f"failed logins in {STORM_WINDOW:g} s" in caplog.text
