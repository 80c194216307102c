"""``sqlml serve``: sqlml over Arrow Flight SQL, for BI tools and ADBC/JDBC clients."""

from __future__ import annotations

import ipaddress
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from sqlml.config import Settings
from sqlml.errors import ConfigError

log = logging.getLogger("sqlml.server")


def parse_users(pairs: Sequence[str], environ_value: str | None = None) -> dict[str, str]:
    """``user:password`` pairs (flags, then ``SQLML_AUTH``'s comma-separated list) as a dict.

    >>> parse_users(["u:p"], "a:b,c:d:e")
    {'a': 'b', 'c': 'd:e', 'u': 'p'}
    """
    items = [p for p in (environ_value or "").split(",") if p.strip()] + list(pairs)
    users: dict[str, str] = {}
    for item in items:
        user, sep, password = item.strip().partition(":")
        if not sep or not user or not password:
            raise ConfigError("--auth", f"expected USER:PASSWORD, got {item.strip()!r}")
        users[user] = password
    return users


def is_loopback(host: str) -> bool:
    """Whether ``host`` is only reachable from this machine.

    >>> is_loopback("127.0.0.1"), is_loopback("localhost"), is_loopback("0.0.0.0")
    (True, True, False)
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    port: int = 31337,
    init_file: str | None = None,
    auth: Sequence[str] = (),
) -> int:
    """Run the Flight SQL server until SIGTERM or Ctrl-C; returns the exit status."""
    from sqlml.server.flight import ServerOptions, SqlmlFlightServer

    users = parse_users(auth, os.environ.get("SQLML_AUTH"))
    if not users and not is_loopback(host):
        raise ConfigError(
            "--host", f"refusing to serve {host} without authentication; add --auth USER:PASSWORD"
        )
    init_sql = None
    if init_file:
        try:
            init_sql = Path(init_file).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError("--init", f"cannot read {init_file}: {exc}") from exc
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    options = ServerOptions(settings.engine, settings.catalog, settings.database, init_sql)
    bind = f"[{host}]" if ":" in host else host
    server = SqlmlFlightServer(f"grpc://{bind}:{port}", options, users)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    print(
        f"sqlml serve: listening on grpc://{bind}:{server.port} "
        f"(engine {settings.engine}, "
        f"auth {'on' if users else 'off'})",
        file=sys.stderr,
        flush=True,
    )
    try:
        while not stop.wait(1.0):
            server.sweep()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.shutdown()
        server.close_sessions()
        print("sqlml serve: stopped", file=sys.stderr, flush=True)
    return 0
