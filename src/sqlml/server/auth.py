"""Authentication of Flight SQL clients.

A client sends ``authorization: Basic base64(user:password)`` (on the Handshake, as ADBC
and pyarrow do); the server answers with ``authorization: Bearer <token>`` and checks the
token on every later call.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import secrets
import threading
from collections.abc import Mapping
from typing import Any

import pyarrow.flight as flight

log = logging.getLogger("sqlml.server")


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

    def __init__(self, users: Mapping[str, str]) -> None:
        super().__init__()
        self.users = dict(users)
        self.tokens: dict[str, str] = {}  # token -> user
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
                self.tokens[token] = user
            log.info("authenticated user %s", user)
            return CallMiddleware(token, issued=token, user=user)
        if scheme.lower() == "bearer":
            token = credentials.strip()
            with self._lock:
                known = self.tokens.get(token)
            if known is None:
                raise flight.FlightUnauthenticatedError("invalid or expired token")
            return CallMiddleware(token, user=known)
        raise flight.FlightUnauthenticatedError("authentication required (user and password)")

    def _check_basic(self, credentials: str) -> str:
        padded = credentials + "=" * (-len(credentials) % 4)  # ADBC sends no padding
        try:
            user, sep, password = base64.b64decode(padded).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            sep, user, password = "", "", ""
        expected = self.users.get(user)
        if (
            not sep
            or expected is None
            or not hmac.compare_digest(expected.encode(), password.encode())
        ):
            raise flight.FlightUnauthenticatedError("invalid user or password")
        return user

    def revoke(self, token: str) -> None:
        with self._lock:
            self.tokens.pop(token, None)
