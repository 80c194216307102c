"""Hiding passwords: in a URI or libpq conninfo, and in any text that may hold one.

Every message, log line, banner and ``repr`` that can show a catalog or PostgreSQL source
URI goes through :func:`redact_uri` (a URI or conninfo given on its own) or :func:`scrub`
(free text, e.g. a driver's error, which can echo the conninfo or a piece of it).

URIs are taken apart with :mod:`urllib.parse`. A ``key=value`` conninfo is read by a small
reader that follows libpq's grammar (``key = value``, a value bare or in single quotes,
``\\`` escaping the next character). psycopg's ``conninfo_to_dict`` would do that too, but
this module sits at the bottom of the layers next to :mod:`sqlml.errors`, which the
learning code imports, and the learning code must not import the database driver; the
test suite checks that this reader agrees with psycopg's.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import unquote, urlsplit, urlunsplit

#: What a hidden password is shown as.
MASK = "***"

#: The connection parameters whose values are secrets.
SECRET_KEYS = frozenset({"password", "sslpassword"})

# A URI inside free text: a scheme, "://", then everything up to a space or a quote, less
# the punctuation of the sentence around it.
_URI_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>`]*[^\s'\"<>`.,;:)\]]")
# A secret key of a conninfo inside free text, up to the start of its value.
_SECRET_IN_TEXT = re.compile(r"(?<![\w.])(?:ssl)?password\s*=\s*", re.IGNORECASE)


def redact_uri(uri: str) -> str:
    """``uri`` with its passwords replaced by :data:`MASK`, for messages and logs.

    Hides the password of a URI's userinfo, ``password=`` (and ``sslpassword=``) in its
    query string, and the same keys of a libpq ``key=value`` conninfo; everything else is
    kept as written. Redacting twice changes nothing.

    >>> redact_uri("postgresql://ada:secret@db:5432/ml")
    'postgresql://ada:***@db:5432/ml'
    >>> redact_uri("postgresql://db/ml?user=ada&password=secret&sslmode=require")
    'postgresql://db/ml?user=ada&password=***&sslmode=require'
    >>> redact_uri("host=db user=ada password='s3 cret' dbname=shop")
    'host=db user=ada password=*** dbname=shop'
    >>> redact_uri("sqlite:///sqlml.db")
    'sqlite:///sqlml.db'
    """
    if "://" in uri:
        return _redact_url(uri)
    return _redact_conninfo(uri)


def scrub(text: str, *uris: str) -> str:
    """``text`` with every password it shows replaced by :data:`MASK`.

    Hides the passwords of the URIs and conninfo ``password=`` values found in the text,
    and any occurrence of the passwords of ``uris`` (the URIs the text may be about: a
    driver's error can quote a piece of the conninfo, such as a badly encoded password).

    >>> scrub("cannot open postgresql://ada:secret@db/ml: refused")
    'cannot open postgresql://ada:***@db/ml: refused'
    >>> scrub('invalid percent-encoded token: "se%zz"', "postgresql://ada:se%zz@db/ml")
    'invalid percent-encoded token: "***"'
    """
    text = _URI_IN_TEXT.sub(lambda match: _redact_url(match.group()), text)
    text = _redact_conninfo(text, anywhere=True)
    secrets = {secret for uri in uris for secret in _secrets(uri)}
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


# --------------------------------------------------------------------------- URIs


def _redact_url(uri: str) -> str:
    parts = urlsplit(uri)
    netloc = parts.netloc
    userinfo, at, hosts = netloc.rpartition("@")
    user, colon, password = userinfo.partition(":")
    if at and colon and password and password != MASK:
        netloc = f"{user}:{MASK}@{hosts}"
    query = "&".join(_redact_pair(pair) for pair in parts.query.split("&"))
    if netloc == parts.netloc and query == parts.query:
        return uri
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def _redact_pair(pair: str) -> str:
    key, equals, _ = pair.partition("=")
    if equals and unquote(key).strip().lower() in SECRET_KEYS:
        return f"{key}={MASK}"
    return pair


def _url_secrets(uri: str) -> Iterator[str]:
    parts = urlsplit(uri)
    userinfo, at, _ = parts.netloc.rpartition("@")
    password = userinfo.partition(":")[2] if at else ""
    values = [password]
    for pair in parts.query.split("&"):
        key, equals, value = pair.partition("=")
        if equals and unquote(key).strip().lower() in SECRET_KEYS:
            values.append(value)
    for value in values:
        yield value
        yield unquote(value)


# --------------------------------------------------------------------------- conninfo


def _redact_conninfo(text: str, anywhere: bool = False) -> str:
    """``text`` with the values of its secret conninfo keys masked; with ``anywhere``,
    the keys are looked for in free text, else ``text`` is one conninfo."""
    spans = (
        [(match.end(), _value_end(text, match.end())) for match in _SECRET_IN_TEXT.finditer(text)]
        if anywhere
        else [(start, end) for key, start, end, _ in _conninfo_items(text) if key in SECRET_KEYS]
    )
    for start, end in reversed(spans):
        if text[start:end].rstrip(".,;:)]'\"") != MASK:  # else already masked
            text = text[:start] + MASK + text[end:]
    return text


def _conninfo_items(conninfo: str) -> Iterator[tuple[str, int, int, str]]:
    """The ``(key, value start, value end, value)`` of each item of a libpq conninfo,
    as libpq reads them; stops at the first thing that is not ``key = value``."""
    i, n = 0, len(conninfo)
    while True:
        while i < n and conninfo[i].isspace():
            i += 1
        key_start = i
        while i < n and conninfo[i] != "=" and not conninfo[i].isspace():
            i += 1
        key = conninfo[key_start:i]
        while i < n and conninfo[i].isspace():
            i += 1
        if not key or i >= n or conninfo[i] != "=":
            return
        i += 1
        while i < n and conninfo[i].isspace():
            i += 1
        end = _value_end(conninfo, i)
        yield key, i, end, _unescape(conninfo[i:end])
        i = end


def _value_end(text: str, start: int) -> int:
    """Where a conninfo value that starts at ``start`` ends: after its closing quote, or
    at the first space not escaped by a backslash."""
    i, n = start, len(text)
    quoted = i < n and text[i] == "'"
    if quoted:
        i += 1
    while i < n:
        char = text[i]
        if char == "\\":
            i += 2
            continue
        if quoted and char == "'":
            return i + 1
        if not quoted and char.isspace():
            return i
        i += 1
    return n


def _unescape(value: str) -> str:
    if value.startswith("'"):
        value = value[1:-1] if len(value) > 1 and value.endswith("'") else value[1:]
    return re.sub(r"\\(.)", r"\1", value)


def _secrets(uri: str) -> Iterator[str]:
    """The passwords a URI or conninfo holds, as written and as meant (for finding them
    quoted in a driver's error)."""
    if "://" in uri:
        found = list(_url_secrets(uri))
    else:
        found = [
            text
            for key, start, end, value in _conninfo_items(uri)
            if key in SECRET_KEYS
            for text in (uri[start:end], value)
        ]
    yield from (secret for secret in found if secret and secret != MASK)
