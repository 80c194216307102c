"""How errors reach Flight SQL clients.

Each reaches the client as one line naming the sqlml error, with a gRPC status that says
what kind of error it is: NOT_FOUND (unknown model, table, ticket or prepared statement),
INVALID_ARGUMENT (bad SQL, options, types, training data or evaluate() rows, a model that
already exists), TIMED_OUT (a statement stopped by the statement timeout),
UNAUTHENTICATED, PERMISSION_DENIED, UNAVAILABLE (the catalog is unreachable, or not
usable until an admin acts, e.g. ``sqlml migrate``), UNIMPLEMENTED. Every
:class:`~sqlml.errors.SqlmlError` is sent with its message; only an exception that is not
one (a bug) is logged here and sent as INTERNAL without details.

A model that already exists is INVALID_ARGUMENT, not ALREADY_EXISTS: pyarrow's Flight
server cannot send that status (no Python exception maps to it, and
``arrow::flight::FlightStatusCode`` has none).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pyarrow.flight as flight

from sqlml.errors import (
    CatalogError,
    CatalogUnavailable,
    HostAccessDenied,
    ModelNotFound,
    PermissionDenied,
    SourceTableNotFound,
    SourceUnavailable,
    SqlmlError,
    StatementCancelled,
    TableNotFound,
)
from sqlml.server import protocol as pb

log = logging.getLogger("sqlml.server")


class _NoTraceback(Exception):
    pass


class _StatusError(Exception):
    """An error sent with the gRPC status pyarrow gives its base class, without a traceback.

    pyarrow turns a Python exception raised by a Flight method into a status from its
    class (KeyError -> NOT_FOUND, ValueError -> INVALID_ARGUMENT, NotImplementedError ->
    UNIMPLEMENTED) and appends ``Detail: Python exception: <traceback.format_exception(...)>``
    to the message; when that formatting fails it appends only the class name. Reading
    ``__notes__`` (which ``format_exception`` does) fails here, so the client gets the
    message and ``Detail: Python exception: NotFound``, not the server's stack.
    """

    @property
    def __notes__(self) -> list[str]:  # type: ignore[override]
        raise _NoTraceback

    def __str__(self) -> str:  # KeyError's would quote the message
        return str(self.args[0]) if self.args else ""


class NotFound(_StatusError, KeyError):
    """Sent as NOT_FOUND."""


class InvalidArgument(_StatusError, ValueError):
    """Sent as INVALID_ARGUMENT."""


class Unimplemented(_StatusError, NotImplementedError):
    """Sent as UNIMPLEMENTED."""


def resource_exhausted(message: str) -> Exception:
    """A limit reached (sessions in all or per user): sent as UNAVAILABLE, the status
    clients retry later, saying ``resource exhausted``. (gRPC's RESOURCE_EXHAUSTED cannot
    be sent: pyarrow's Flight server has no such status, see ``arrow::flight::
    FlightStatusCode``, and sends a MemoryError as UNKNOWN.)"""
    error: Exception = flight.FlightUnavailableError(f"resource exhausted: {message}")
    return error


#: Exception class -> the error it is sent as, and whether the message names the class.
#: An exception is sent as the entry of the nearest class in its MRO; one of no class
#: here is logged and sent as INTERNAL.
STATUSES: dict[type[BaseException], tuple[Callable[[str], Exception], bool]] = {
    NotImplementedError: (Unimplemented, False),
    CatalogUnavailable: (flight.FlightUnavailableError, True),
    CatalogError: (flight.FlightUnavailableError, True),
    SourceUnavailable: (flight.FlightUnavailableError, True),
    ModelNotFound: (NotFound, True),
    SourceTableNotFound: (NotFound, True),
    TableNotFound: (NotFound, True),
    HostAccessDenied: (flight.FlightUnauthorizedError, True),
    PermissionDenied: (flight.FlightUnauthorizedError, True),
    StatementCancelled: (flight.FlightTimedOutError, True),
    SqlmlError: (InvalidArgument, True),
    pb.ProtocolError: (InvalidArgument, True),
}


def flight_error(exc: BaseException) -> Exception:
    """The error to raise to the client for ``exc`` (what a call raised)."""
    if isinstance(exc, flight.FlightError | _StatusError):
        return exc
    status = next((STATUSES[kind] for kind in type(exc).__mro__ if kind in STATUSES), None)
    if status is None:
        log.error("internal error", exc_info=exc)
        error: Exception = flight.FlightInternalError("internal server error; see the server log")
        return error
    make, named = status
    return make(f"{type(exc).__name__}: {_line(exc)}" if named else _line(exc))


@contextmanager
def flight_errors() -> Iterator[None]:
    """Translate errors into Flight errors with one clean line, never a traceback."""
    try:
        yield
    except Exception as exc:
        raise flight_error(exc) from None


def _line(exc: BaseException) -> str:
    return " ".join(str(exc).split())
