"""A circuit breaker for a catalog server that may go away.

After a connection failure the breaker is open: calls fail at once, without waiting for a
connection timeout, for :attr:`CircuitBreaker.retry_after` seconds. Then one call is let
through as a probe; its success closes the breaker, its failure opens it again.
"""

from __future__ import annotations

import logging
import threading
import time

from sqlml.errors import CatalogUnavailable

log = logging.getLogger("sqlml")


class CircuitBreaker:
    """Fails calls to ``uri`` fast while it is known to be unreachable.

    Args:
        uri: the catalog, for messages (without its password).
        retry_after: seconds after a failure before one call may try again.
    """

    def __init__(self, uri: str, retry_after: float) -> None:
        self.uri = uri
        self.retry_after = retry_after
        self._lock = threading.Lock()
        self._reason: str | None = None
        self._retry_at = 0.0
        self._probing = False

    @property
    def open(self) -> bool:
        """Whether the catalog is taken to be unreachable now."""
        return self._reason is not None

    def before(self) -> bool:
        """Call before trying the server.

        Returns:
            True when this call is the probe after an outage (it must then report
            :meth:`success` or :meth:`failure`), False in normal operation.

        Raises:
            CatalogUnavailable: the breaker is open and it is not yet time to probe, or
                another call is probing.
        """
        with self._lock:
            if self._reason is None:
                return False
            now = time.monotonic()
            if self._probing or now < self._retry_at:
                wait = max(0.0, self._retry_at - now)
                raise CatalogUnavailable(
                    self.uri, f"{self._reason} (failing fast; next attempt in {wait:.1f} s)"
                )
            self._probing = True
            return True

    def success(self) -> None:
        """The server answered: close the breaker."""
        with self._lock:
            was_open, self._reason, self._probing = self._reason is not None, None, False
        if was_open:
            log.info("catalog %s is reachable again", self.uri)

    def failure(self, reason: str) -> None:
        """The server could not be reached: open the breaker (or keep it open)."""
        with self._lock:
            was_open = self._reason is not None
            self._reason = reason
            self._retry_at = time.monotonic() + self.retry_after
            self._probing = False
        if not was_open:
            log.warning(
                "catalog %s is unreachable (%s); its calls fail fast, retrying every %g s",
                self.uri,
                reason,
                self.retry_after,
            )

    def release(self) -> None:
        """A probe ended without learning anything (e.g. interrupted): let another try."""
        with self._lock:
            self._probing = False
