"""Authentication of Flight SQL clients.

A client sends ``authorization: Basic base64(user:password)`` (on the Handshake, as ADBC
and pyarrow do); the server answers with ``authorization: Bearer <token>`` and checks the
token on every later call. Tokens expire ``token_ttl`` seconds after they were issued
(and go when the client's session is closed); :meth:`AuthMiddlewareFactory.sweep` drops
expired ones whether or not the client opened a session.

Failed logins are throttled per user: after :data:`FREE_FAILURES` failures in a row, each
further failure refuses that user's logins for twice as long as the last (from one
second), up to :data:`LOCKOUT` seconds, right password or not; a successful login clears
the count. Every failure is logged with the user's name, never the password.

A Flight server's middleware is not told the caller's address (pyarrow's
``ServerMiddlewareFactory.start_call`` gets the method and headers alone), so logins are
not throttled per address. What one address trying many user names does is met server
wide instead: while more than :data:`STORM_FAILURES` logins failed in the last
:data:`STORM_WINDOW` seconds, no user gets free failures (the first one refuses that
user's logins for a second, and so on). Throttling per address belongs to a proxy in
front of the server.
"""

from __future__ import annotations

import base64
import binascii
import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow.flight as flight

from sqlml.server.users import User

log = logging.getLogger("sqlml.server")

#: Seconds a bearer token is valid after it was issued, by default.
TOKEN_TTL = 12 * 3600.0
#: Failed logins in a row a user gets before later ones are refused for a while.
FREE_FAILURES = 3
#: The longest a user's logins are refused after failures, in seconds.
LOCKOUT = 900.0
#: Failed logins of all users within :data:`STORM_WINDOW` seconds past which no user gets
#: free failures.
STORM_FAILURES = 20
STORM_WINDOW = 60.0


@dataclass
class _Failures:
    count: int = 0
    blocked_until: float = 0.0


class Handshake(flight.ServerAuthHandler):  # type: ignore[misc]
    """Accepts the Handshake RPC (pyarrow answers it UNIMPLEMENTED without an auth handler);
    the credentials are checked by :class:`AuthMiddlewareFactory` on the call's headers."""

    def authenticate(self, outgoing: Any, incoming: Any) -> None:
        pass

    def is_valid(self, token: bytes) -> str:
        return ""


class CallMiddleware(flight.ServerMiddleware):  # type: ignore[misc]
    """One call's client (its token, or None to go by its gRPC peer), user, and the token
    issued to it, if any."""

    def __init__(
        self, client: str | None, issued: str | None = None, user: str | None = None
    ) -> None:
        self.client = client
        self.issued = issued
        self.user = user

    def sending_headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.issued}"} if self.issued else {}


class AuthMiddlewareFactory(flight.ServerMiddlewareFactory):  # type: ignore[misc]
    """Turns ``Basic`` credentials into a bearer token and checks bearer tokens.

    Without users every call is let through, and the client is its gRPC peer.
    """

    def __init__(
        self,
        users: Mapping[str, User],
        *,
        token_ttl: float = TOKEN_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.users = dict(users)
        self.token_ttl = token_ttl
        self.tokens: dict[str, tuple[str, float]] = {}  # token -> (user, expires)
        self._failures: dict[str, _Failures] = {}
        self._recent: deque[float] = deque()  # when the last logins failed, all users
        self._clock = clock
        self._lock = threading.Lock()

    def start_call(self, info: Any, headers: Mapping[str, list[str]]) -> CallMiddleware:
        if not self.users:
            return CallMiddleware(None)
        values = headers.get("authorization") or []
        value = values[0] if values else ""
        scheme, _, credentials = value.partition(" ")
        if scheme.lower() == "basic":
            user = self._check_basic(credentials.strip())
            token = secrets.token_urlsafe(32)
            with self._lock:
                self.tokens[token] = (user, self._clock() + self.token_ttl)
            log.info("authenticated user %s", user)
            return CallMiddleware(token, issued=token, user=user)
        if scheme.lower() == "bearer":
            token = credentials.strip()
            with self._lock:
                known = self.tokens.get(token)
                if known is not None and known[1] <= self._clock():
                    del self.tokens[token]
                    known = None
            if known is None:
                raise flight.FlightUnauthenticatedError(
                    "invalid or expired token; log in again with user and password"
                )
            return CallMiddleware(token, user=known[0])
        raise flight.FlightUnauthenticatedError("authentication required (user and password)")

    def _check_basic(self, credentials: str) -> str:
        padded = credentials + "=" * (-len(credentials) % 4)  # ADBC sends no padding
        try:
            user, sep, password = base64.b64decode(padded).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            sep, user, password = "", "", ""
        now = self._clock()
        with self._lock:
            failures = self._failures.get(user)
            wait = failures.blocked_until - now if failures is not None else 0.0
        if wait > 0:
            log.warning("refused login for user %s: locked for %.0f s more", user, wait)
            raise flight.FlightUnauthenticatedError(
                f"too many failed logins for user {user!r}; try again in {wait:.0f} s"
            )
        known = self.users.get(user)
        if not sep or known is None or not known.check(password):
            self._failed(user, now)
            raise flight.FlightUnauthenticatedError("invalid user or password")
        with self._lock:
            self._failures.pop(user, None)
        return user

    def _failed(self, user: str, now: float) -> None:
        with self._lock:
            while self._recent and self._recent[0] <= now - STORM_WINDOW:
                self._recent.popleft()
            self._recent.append(now)
            storm = len(self._recent) > STORM_FAILURES
            failures = self._failures.setdefault(user, _Failures())
            failures.count += 1
            extra = failures.count - (0 if storm else FREE_FAILURES)
            if extra > 0:
                failures.blocked_until = now + min(2.0 ** (extra - 1), LOCKOUT)
            count = failures.count
        log.warning(
            "failed login for user %s (%d in a row%s)",
            user,
            count,
            f"; {len(self._recent)} failed logins in {STORM_WINDOW:g} s" if storm else "",
        )

    def sweep(self, now: float | None = None) -> None:
        """Drop expired tokens, and failure counts of users no longer refused.

        Args:
            now: the time of the factory's clock to expire things at; ``None`` for now.
        """
        now = self._clock() if now is None else now
        with self._lock:
            for token in [t for t, (_, expires) in self.tokens.items() if expires <= now]:
                del self.tokens[token]
            for user in [u for u, f in self._failures.items() if f.blocked_until + LOCKOUT <= now]:
                del self._failures[user]

    def revoke(self, token: str) -> None:
        with self._lock:
            self.tokens.pop(token, None)
