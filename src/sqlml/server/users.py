"""The server's users: who may log in, with what password, and with which role.

Users come from a users file (``--users users.toml``), from ``--auth USER:PASSWORD[:ROLE]``
flags and from ``SQLML_AUTH``. A users file holds Argon2id hashes, never passwords::

    [users.alice]
    password_hash = "$argon2id$v=19$m=65536,t=3,p=4$..."   # sqlml hash-password
    role = "admin"

Roles, each with the rights of the ones before it:

- ``reader``: query, ``predict``, ``evaluate``, ``SHOW MODELS``, ``DESCRIBE MODEL``, and
  plain SQL that only reads or changes their own session (``CREATE TEMP TABLE``; see
  :mod:`sqlml.sql.effects`);
- ``trainer``: also ``CREATE MODEL`` of a new model, which the trainer then owns,
  ``CREATE OR REPLACE MODEL`` of the models they own, and plain SQL that writes
  (``CREATE TABLE``, ``INSERT``...);
- ``admin``: also ``CREATE OR REPLACE MODEL`` of anyone's model, ``DROP MODEL`` and
  ``DEPLOY MODEL``.

>>> {name: user.role for name, user in parse_users(["u:p", "a:b:admin"], "c:d:e").items()}
{'c': 'trainer', 'u': 'trainer', 'a': 'admin'}
"""

from __future__ import annotations

import hmac
import threading
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from sqlml.catalog.entities import Model
from sqlml.errors import ConfigError, PermissionDenied
from sqlml.sql.effects import writes
from sqlml.sql.statements import (
    CreateModelStatement,
    DeployModelStatement,
    DropModelStatement,
    QueryStatement,
    Statement,
)

Role = Literal["reader", "trainer", "admin"]
ROLES: tuple[Role, ...] = ("reader", "trainer", "admin")
#: The role of ``--auth`` and ``SQLML_AUTH`` users that name none.
DEFAULT_ROLE: Role = "trainer"

_HASHER = PasswordHasher()
#: Argon2 takes 64 MiB per check: at most this many run at once, whatever is thrown at it.
_CHECKS = threading.BoundedSemaphore(2)


@dataclass(frozen=True)
class User:
    """One user; ``password`` (from flags) or ``password_hash`` (from a users file)."""

    name: str
    role: Role = DEFAULT_ROLE
    password: str | None = field(default=None, repr=False)
    password_hash: str | None = field(default=None, repr=False)

    def check(self, password: str) -> bool:
        """Whether ``password`` is this user's."""
        if self.password is not None:
            return hmac.compare_digest(self.password.encode(), password.encode())
        assert self.password_hash is not None
        with _CHECKS:
            try:
                return bool(_HASHER.verify(self.password_hash, password))
            except (VerificationError, InvalidHashError):
                return False

    def authorize(self, statement: Statement, model: Model | None, dialect: str = "duckdb") -> None:
        """Refuse a statement this user's role may not run; ``model`` is the catalog's
        model the statement names, None if there is none; ``dialect`` the engine's.

        Raises:
            PermissionDenied: naming the user, the action and the model.
        """
        rank = ROLES.index(self.role)
        match statement:
            case CreateModelStatement(name=name) if model is not None and statement.replace:
                needed: Role = "trainer" if model.owner == self.name else "admin"
                action = "replace model"
            case CreateModelStatement(name=name):
                needed, action = "trainer", "create model"
            case DropModelStatement(name=name):
                needed, action = "admin", "drop model"
            case DeployModelStatement(name=name):
                needed, action = "admin", "deploy model"
            case QueryStatement() if rank < ROLES.index("trainer"):
                effect = writes(statement.sql, dialect, statement.tree)
                if effect is None:
                    return
                needed, action, name = "trainer", "write to the database with", effect
            case _:
                return
        if rank < ROLES.index(needed):
            takes = f"{needed} role"
            if action == "replace model" and needed == "admin":
                owner = f"user {model.owner!r}" if model and model.owner else "nobody"
                takes += f" (or owning the model; {owner} owns it)"
            raise PermissionDenied(self.name, self.role, action, name, takes)


def hash_password(password: str) -> str:
    """An Argon2id hash of ``password`` for a users file."""
    return _HASHER.hash(password)


def parse_users(pairs: Sequence[str], environ_value: str | None = None) -> dict[str, User]:
    """``USER:PASSWORD[:ROLE]`` items (``SQLML_AUTH``'s comma-separated list, then flags).

    A last ``:reader``, ``:trainer`` or ``:admin`` is the role; anything else after the
    first colon is the password.
    """
    items = [p for p in (environ_value or "").split(",") if p.strip()] + list(pairs)
    users: dict[str, User] = {}
    for item in items:
        user, sep, password = item.strip().partition(":")
        role: Role = DEFAULT_ROLE
        head, colon, last = password.rpartition(":")
        if colon and last in ROLES:
            password, role = head, last  # type: ignore[assignment]
        if not sep or not user or not password:
            raise ConfigError("--auth", f"expected USER:PASSWORD[:ROLE], got {item.strip()!r}")
        users[user] = User(user, role, password=password)
    return users


def load_users(path: str) -> dict[str, User]:
    """The users of a users file (see the module's documentation).

    Raises:
        ConfigError: the file cannot be read, or a user's entry is wrong (named).
    """
    try:
        document = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("--users", f"cannot read {path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("--users", f"{path} is not valid TOML: {exc}") from exc
    entries = document.get("users")
    if not isinstance(entries, Mapping) or not entries:
        raise ConfigError("--users", f"{path} has no [users.NAME] tables")
    users: dict[str, User] = {}
    for name, entry in entries.items():
        where = f"{path}: user {name!r}"
        if not isinstance(entry, Mapping):
            raise ConfigError("--users", f"{where} must be a table with password_hash and role")
        unknown = sorted(set(entry) - {"password_hash", "role"})
        if unknown:
            raise ConfigError("--users", f"{where}: unknown key {unknown[0]!r}")
        hashed, role = entry.get("password_hash"), entry.get("role", DEFAULT_ROLE)
        if not isinstance(hashed, str) or not hashed.startswith("$argon2"):
            raise ConfigError(
                "--users", f"{where}: password_hash must be an Argon2 hash (sqlml hash-password)"
            )
        if role not in ROLES:
            raise ConfigError("--users", f"{where}: role {role!r} is not one of {', '.join(ROLES)}")
        users[name] = User(name, role, password_hash=hashed)
    return users
