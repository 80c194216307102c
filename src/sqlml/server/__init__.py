"""``sqlml serve``: sqlml over Arrow Flight SQL, for BI tools and ADBC/JDBC clients."""

from __future__ import annotations

import errno
import ipaddress
import logging
import os
import signal
import socket
import ssl
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import pyarrow as pa

from sqlml.config import Settings
from sqlml.engines.base import HostAccess
from sqlml.errors import ConfigError
from sqlml.server.users import load_users, parse_users

if TYPE_CHECKING:
    from sqlml.server.rpc import SqlmlFlightServer

log = logging.getLogger("sqlml.server")


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


def read_tls(cert: str | None, key: str | None) -> list[tuple[bytes, bytes]]:
    """The ``[(cert_pem, key_pem)]`` of ``--tls-cert``/``--tls-key``; empty without them.

    >>> read_tls(None, None)
    []
    >>> read_tls("cert.pem", None)
    Traceback (most recent call last):
    ...
    sqlml.errors.ConfigError: --tls-key: --tls-cert and --tls-key must be given together
    """
    if cert is None and key is None:
        return []
    if cert is None or key is None:
        flag = "--tls-cert" if cert is None else "--tls-key"
        raise ConfigError(flag, "--tls-cert and --tls-key must be given together")
    pems = []
    for flag, path in (("--tls-cert", cert), ("--tls-key", key)):
        try:
            pems.append(Path(path).read_bytes())
        except OSError as exc:
            raise ConfigError(flag, f"cannot read {path}: {exc}") from exc
    # gRPC would only say "Server did not start properly": check the pair with OpenSSL.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert, key)
    except ssl.SSLError as exc:
        why = (
            "the key does not belong to the certificate"
            if "KEY_VALUES_MISMATCH" in str(exc)
            else "they must be a PEM certificate and its PEM private key"
        )
        raise ConfigError("--tls-cert", f"cannot use {cert} and {key}: {why} ({exc})") from exc
    return [(pems[0], pems[1])]


def check_port(host: str, port: int) -> None:
    """Fail with one line if ``host:port`` cannot be listened on (in use, not an address
    of this machine, ...); port 0 picks a free one.

    Raises:
        ConfigError: naming ``--port`` or ``--host`` and the reason.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as exc:
        flag = "--port" if exc.errno == errno.EADDRINUSE else "--host"
        raise ConfigError(flag, f"cannot listen on {host}:{port}: {exc.strerror}") from exc


def host_access(
    settings: Settings, data_dirs: Sequence[str], writable_dirs: Sequence[str]
) -> HostAccess:
    """What clients' SQL may reach of the host: the directories given, which must exist
    and must not hold the catalog's file (nor the server's own files then)."""
    found: dict[str, list[Path]] = {"--data-dir": [], "--writable-dir": []}
    for flag, paths in (("--data-dir", data_dirs), ("--writable-dir", writable_dirs)):
        for path in paths:
            directory = Path(path).expanduser().resolve()
            if not directory.is_dir():
                raise ConfigError(flag, f"{path} is not a directory")
            found[flag].append(directory)
    catalog = settings.catalog.removeprefix("sqlite:///") if settings.catalog else ""
    if catalog and catalog != settings.catalog and catalog != ":memory:":
        catalog_file = Path(catalog).expanduser().resolve()
        for flag, directories in found.items():
            for directory in directories:
                if catalog_file.is_relative_to(directory):
                    raise ConfigError(
                        flag,
                        f"{directory} holds the catalog {catalog_file}: clients could read "
                        "or replace every model; keep the catalog outside data directories",
                    )
    return HostAccess(tuple(found["--data-dir"]), tuple(found["--writable-dir"]))


def serve(
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    port: int = 31337,
    init_file: str | None = None,
    auth: Sequence[str] = (),
    users_file: str | None = None,
    metrics_port: int | None = None,
    tls_cert: str | None = None,
    tls_key: str | None = None,
    ticket_ttl: float | None = None,
    prepared_ttl: float | None = None,
    session_ttl: float | None = None,
    token_ttl: float | None = None,
    max_sessions: int | None = None,
    max_sessions_per_user: int | None = None,
    statement_timeout: float | None = None,
    catalog_pool: int | None = None,
    data_dirs: Sequence[str] = (),
    writable_dirs: Sequence[str] = (),
) -> int:
    """Run the Flight SQL server until SIGTERM or Ctrl-C; returns the exit status.

    ``ticket_ttl``, ``prepared_ttl``, ``session_ttl`` and ``token_ttl`` are the seconds a
    result waits for its DoGet, an unused prepared statement is kept, an idle session is
    kept and a login's token is valid (``None`` for
    :class:`~sqlml.server.state.ServerOptions`'s defaults). Clients' SQL reaches no file
    of the host but those under ``data_dirs`` (reading) and ``writable_dirs``.
    ``max_sessions``, ``max_sessions_per_user`` and ``catalog_pool`` bound what clients
    can hold, and ``statement_timeout`` the seconds a statement may run (0 for no limit)
    (``None`` for the defaults).
    """
    from sqlml.server.auth import TOKEN_TTL
    from sqlml.server.metrics import Metrics
    from sqlml.server.rpc import SqlmlFlightServer
    from sqlml.server.state import (
        CATALOG_POOL,
        MAX_SESSIONS,
        MAX_SESSIONS_PER_USER,
        PREPARED_TTL,
        SESSION_TTL,
        STATEMENT_TIMEOUT,
        TICKET_TTL,
        ServerOptions,
    )

    users = load_users(users_file) if users_file else {}
    users |= parse_users(auth, os.environ.get("SQLML_AUTH"))
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
    tls = read_tls(tls_cert, tls_key)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for flag, seconds in (
        ("--ticket-ttl", ticket_ttl),
        ("--prepared-ttl", prepared_ttl),
        ("--session-ttl", session_ttl),
        ("--token-ttl", token_ttl),
    ):
        if seconds is not None and not seconds > 0:
            raise ConfigError(flag, f"expected a positive number of seconds, got {seconds}")
    if statement_timeout is not None and not statement_timeout >= 0:
        raise ConfigError(
            "--statement-timeout", f"expected seconds (0 for no limit), got {statement_timeout}"
        )
    if statement_timeout is None:
        statement_timeout = STATEMENT_TIMEOUT
    for flag, count in (
        ("--max-sessions", max_sessions),
        ("--max-sessions-per-user", max_sessions_per_user),
        ("--catalog-pool", catalog_pool),
    ):
        if count is not None and count < 1:
            raise ConfigError(flag, f"expected a positive whole number, got {count}")
    options = ServerOptions(
        settings.engine,
        settings.catalog,
        settings.database,
        init_sql,
        ticket_ttl=TICKET_TTL if ticket_ttl is None else ticket_ttl,
        prepared_ttl=PREPARED_TTL if prepared_ttl is None else prepared_ttl,
        session_ttl=SESSION_TTL if session_ttl is None else session_ttl,
        token_ttl=TOKEN_TTL if token_ttl is None else token_ttl,
        max_sessions=MAX_SESSIONS if max_sessions is None else max_sessions,
        max_sessions_per_user=(
            MAX_SESSIONS_PER_USER if max_sessions_per_user is None else max_sessions_per_user
        ),
        statement_timeout=statement_timeout or None,
        catalog_pool=CATALOG_POOL if catalog_pool is None else catalog_pool,
        host_access=host_access(settings, data_dirs, writable_dirs),
    )
    bind = f"[{host}]" if ":" in host else host
    scheme = "grpc+tls" if tls else "grpc"
    metrics = Metrics() if metrics_port is not None else None
    check_port(host, port)
    try:
        server = SqlmlFlightServer(
            f"{scheme}://{bind}:{port}", options, users, tls_certificates=tls, metrics=metrics
        )
    except pa.ArrowException as exc:  # gRPC tells no more than "did not start properly"
        raise ConfigError("--port", f"cannot serve on {host}:{port}: {exc}") from exc
    try:
        server.state.check()
    except BaseException:
        server.shutdown()
        raise
    if metrics is not None and metrics_port is not None:
        try:
            metrics.serve(metrics_port)
        except OSError as exc:
            server.shutdown()
            raise ConfigError("--metrics-port", f"cannot listen on {metrics_port}: {exc}") from exc
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    print(
        f"sqlml serve: listening on {scheme}://{bind}:{server.port} "
        f"(engine {settings.engine}, "
        f"auth {'on' if users else 'off'}"
        + (f", metrics on http://127.0.0.1:{metrics_port}/metrics" if metrics else "")
        + ")",
        file=sys.stderr,
        flush=True,
    )
    try:
        while not stop.wait(min(1.0, options.ticket_ttl / 2)):
            server.sweep()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if not _shutdown(server):
            # gRPC waits for every call to end; a client that stopped reading a stream
            # never ends its call, so the process leaves without closing sessions
            # (their engines are in the middle of those streams).
            print("sqlml serve: stopped (streams still open were cut)", file=sys.stderr, flush=True)
            os._exit(0)
        server.close_sessions()
        print("sqlml serve: stopped", file=sys.stderr, flush=True)
    return 0


#: Seconds that calls in flight get to end when the server stops.
SHUTDOWN_GRACE = 5.0


def _shutdown(server: SqlmlFlightServer) -> bool:
    """Stop serving; whether every call in flight ended within :data:`SHUTDOWN_GRACE`."""
    server.stop_streams()
    stopping = threading.Thread(target=server.shutdown, name="sqlml-shutdown", daemon=True)
    stopping.start()
    stopping.join(SHUTDOWN_GRACE)
    return not stopping.is_alive()
