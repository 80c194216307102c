"""The catalog operations in SQL, shared by the SQLite and PostgreSQL stores.

A store supplies a transaction (a connection-like object), its parameter style and how
it encodes JSON and timestamps; the queries and the rules live here once.
"""

from __future__ import annotations

import abc
import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from sqlml.catalog.base import Catalog
from sqlml.catalog.entities import (
    Alias,
    CompiledExpression,
    CompiledKind,
    Feature,
    Model,
    ModelVersion,
    VersionSpec,
    validate_alias,
    validate_name,
)
from sqlml.errors import (
    AliasNotFound,
    ArtifactCorrupted,
    CompiledNotFound,
    ModelExists,
    ModelNotFound,
    NothingToRollBack,
    VersionNotFound,
)


class Cursor(Protocol):
    rowcount: int

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Connection(Protocol):
    def execute(self, query: Any, params: Sequence[object] = ...) -> Any: ...


_VERSION_COLUMNS = (
    "model, version, algorithm, task, target, classes, features, hyperparameters, metrics, "
    "training_sql, row_count, data_fingerprint, library_versions, artifact_format, sha256, "
    "created_at"
)


class SqlCatalog(Catalog):
    """Catalog operations over a DB-API style connection; stores subclass it."""

    #: The driver's positional parameter marker.
    PARAM = "?"

    @abc.abstractmethod
    def _transaction(self, write: bool = False) -> AbstractContextManager[Connection]:
        """A connection inside a transaction that commits on success, else rolls back."""

    def _encode_time(self, value: dt.datetime) -> object:
        return value

    def _decode_time(self, value: Any) -> dt.datetime:
        return value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(value)

    @staticmethod
    def _decode_json(value: Any) -> Any:
        return json.loads(value) if isinstance(value, str | bytes) else value

    def _q(self, conn: Connection, query: str, params: Sequence[object] = ()) -> Cursor:
        if self.PARAM != "?":
            query = query.replace("?", self.PARAM)
        cursor: Cursor = conn.execute(query, params)
        return cursor

    # --- writing --------------------------------------------------------------------------

    def register_version(
        self,
        name: str,
        spec: VersionSpec,
        artifact: bytes,
        owner: str | None = None,
        *,
        exist_ok: bool = True,
    ) -> ModelVersion:
        validate_name(name)
        now = dt.datetime.now(dt.UTC)
        sha256 = hashlib.sha256(artifact).hexdigest()
        with self._transaction(write=True) as conn:
            self._q(
                conn,
                "INSERT INTO models (name, task, description, last_version, created_at, owner) "
                "VALUES (?, ?, ?, 0, ?, ?) ON CONFLICT (name) DO NOTHING",
                (name, spec.task, spec.description, self._encode_time(now), owner),
            )
            # The row lock taken by this UPDATE serialises concurrent registrations.
            row = self._q(
                conn,
                "UPDATE models SET last_version = last_version + 1, task = ? "
                "WHERE name = ? RETURNING last_version",
                (spec.task, name),
            ).fetchone()
            version = int(row[0])
            if not exist_ok:
                # Decided under the row lock, so of concurrent creations exactly one wins.
                existing = self._q(
                    conn, "SELECT count(*) FROM model_versions WHERE model = ?", (name,)
                ).fetchone()
                if int(existing[0]) > 0:
                    raise ModelExists(name, int(existing[0]))
            mv = ModelVersion(
                model=name,
                version=version,
                algorithm=spec.algorithm,
                task=spec.task,
                target=spec.target,
                classes=tuple(spec.classes),
                features=tuple(spec.features),
                hyperparameters=dict(spec.hyperparameters),
                metrics=dict(spec.metrics),
                training_sql=spec.training_sql,
                row_count=spec.row_count,
                data_fingerprint=spec.data_fingerprint,
                library_versions=dict(spec.library_versions),
                artifact_format=spec.artifact_format,
                sha256=sha256,
                created_at=now,
            )
            self._insert_version(conn, mv)
            self._insert_artifact(conn, name, version, artifact)
        return mv

    def _insert_version(self, conn: Connection, mv: ModelVersion) -> None:
        self._q(
            conn,
            f"INSERT INTO model_versions ({_VERSION_COLUMNS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                mv.model,
                mv.version,
                mv.algorithm,
                mv.task,
                mv.target,
                json.dumps(list(mv.classes)),
                json.dumps([f.to_json() for f in mv.features]),
                json.dumps(mv.hyperparameters, sort_keys=True),
                json.dumps(mv.metrics, sort_keys=True),
                mv.training_sql,
                mv.row_count,
                mv.data_fingerprint,
                json.dumps(mv.library_versions, sort_keys=True),
                mv.artifact_format,
                mv.sha256,
                self._encode_time(mv.created_at),
            ),
        )

    def _insert_artifact(self, conn: Connection, name: str, version: int, data: bytes) -> None:
        self._q(
            conn,
            "INSERT INTO model_artifacts (model, version, data) VALUES (?, ?, ?)",
            (name, version, data),
        )

    def set_alias(self, name: str, alias: str, version: int) -> Alias:
        validate_alias(alias)
        with self._transaction(write=True) as conn:
            self._require_version(conn, name, version)
            self._q(
                conn,
                "INSERT INTO model_aliases (model, alias, version) VALUES (?, ?, ?) "
                "ON CONFLICT (model, alias) DO UPDATE SET version = excluded.version",
                (name, alias, version),
            )
            # After the upsert, which holds the alias's row: concurrent deployments of one
            # alias take their turns here, each seeing the other's history row.
            self._q(
                conn,
                "INSERT INTO model_alias_history (model, alias, seq, version) "
                "SELECT ?, ?, COALESCE(MAX(seq), 0) + 1, ? FROM model_alias_history "
                "WHERE model = ? AND alias = ?",
                (name, alias, version, name, alias),
            )
        return Alias(name, alias, version)

    def rollback_alias(self, name: str, alias: str) -> Alias:
        with self._transaction(write=True) as conn:
            self._require_model(conn, name)
            # Take the alias's row (a no-op update) so that deployments wait for this one.
            self._q(
                conn,
                "UPDATE model_aliases SET version = version WHERE model = ? AND alias = ?",
                (name, alias),
            )
            row = self._q(
                conn,
                "SELECT version FROM model_aliases WHERE model = ? AND alias = ?",
                (name, alias),
            ).fetchone()
            current = None if row is None else int(row[0])
            history = self._q(
                conn,
                "SELECT seq, version FROM model_alias_history WHERE model = ? AND alias = ? "
                "ORDER BY seq DESC",
                (name, alias),
            ).fetchall()
            if current is None and not history:
                raise AliasNotFound(name, alias, self._alias_names(conn, name))
            # The deployments of the current version on top of the history are what is
            # rolled back; the one below them is where the alias goes.
            top = 0
            while top < len(history) and int(history[top][1]) == current:
                top += 1
            if top == len(history):
                raise NothingToRollBack(name, alias, current)
            seq, target = int(history[top][0]), int(history[top][1])
            self._q(
                conn,
                "DELETE FROM model_alias_history WHERE model = ? AND alias = ? AND seq > ?",
                (name, alias, seq),
            )
            self._q(
                conn,
                "INSERT INTO model_aliases (model, alias, version) VALUES (?, ?, ?) "
                "ON CONFLICT (model, alias) DO UPDATE SET version = excluded.version",
                (name, alias, target),
            )
        return Alias(name, alias, target)

    def remove_alias(self, name: str, alias: str) -> None:
        with self._transaction(write=True) as conn:
            self._require_model(conn, name)
            cur = self._q(
                conn, "DELETE FROM model_aliases WHERE model = ? AND alias = ?", (name, alias)
            )
            if cur.rowcount == 0:
                raise AliasNotFound(name, alias, self._alias_names(conn, name))

    def delete_version(self, name: str, version: int) -> None:
        with self._transaction(write=True) as conn:
            self._require_version(conn, name, version)
            self._q(
                conn, "DELETE FROM model_versions WHERE model = ? AND version = ?", (name, version)
            )

    def delete_model(self, name: str) -> None:
        with self._transaction(write=True) as conn:
            self._require_model(conn, name)
            self._q(conn, "DELETE FROM models WHERE name = ?", (name,))

    def save_compiled(
        self, name: str, version: int, dialect: str, kind: CompiledKind, expression: str
    ) -> CompiledExpression:
        dialect = dialect.strip().lower()
        now = dt.datetime.now(dt.UTC)
        with self._transaction(write=True) as conn:
            self._require_version(conn, name, version)
            self._q(
                conn,
                "INSERT INTO model_compiled "
                "(model, version, dialect, kind, expression, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (model, version, dialect, kind) DO UPDATE "
                "SET expression = excluded.expression, created_at = excluded.created_at",
                (name, version, dialect, kind, expression, self._encode_time(now)),
            )
        return CompiledExpression(name, version, dialect, kind, expression, now)

    # --- reading --------------------------------------------------------------------------

    def get_model(self, name: str) -> Model:
        with self._transaction() as conn:
            return self._require_model(conn, name)

    def list_models(self) -> list[Model]:
        with self._transaction() as conn:
            rows = self._q(
                conn, "SELECT name, task, created_at, description, owner FROM models ORDER BY name"
            ).fetchall()
        return [self._model(row) for row in rows]

    def get_version(self, name: str, version: int | None = None) -> ModelVersion:
        with self._transaction() as conn:
            if version is None:
                self._require_model(conn, name)
                row = self._q(
                    conn,
                    f"SELECT {_VERSION_COLUMNS} FROM model_versions WHERE model = ? "
                    "ORDER BY version DESC LIMIT 1",
                    (name,),
                ).fetchone()
                if row is None:
                    raise VersionNotFound(name, None, [])
                return self._version(row)
            return self._require_version(conn, name, version)

    def get_alias(self, name: str, alias: str) -> ModelVersion:
        with self._transaction() as conn:
            self._require_model(conn, name)
            row = self._q(
                conn,
                f"SELECT {', '.join('v.' + c.strip() for c in _VERSION_COLUMNS.split(','))} "
                "FROM model_aliases a JOIN model_versions v "
                "ON v.model = a.model AND v.version = a.version "
                "WHERE a.model = ? AND a.alias = ?",
                (name, alias),
            ).fetchone()
            if row is None:
                raise AliasNotFound(name, alias, self._alias_names(conn, name))
            return self._version(row)

    def list_versions(self, name: str) -> list[ModelVersion]:
        with self._transaction() as conn:
            self._require_model(conn, name)
            rows = self._q(
                conn,
                f"SELECT {_VERSION_COLUMNS} FROM model_versions WHERE model = ? ORDER BY version",
                (name,),
            ).fetchall()
        return [self._version(row) for row in rows]

    def list_aliases(self, name: str | None = None) -> list[Alias]:
        with self._transaction() as conn:
            if name is None:
                rows = self._q(
                    conn, "SELECT model, alias, version FROM model_aliases ORDER BY model, alias"
                ).fetchall()
            else:
                self._require_model(conn, name)
                rows = self._q(
                    conn,
                    "SELECT model, alias, version FROM model_aliases WHERE model = ? "
                    "ORDER BY alias",
                    (name,),
                ).fetchall()
        return [Alias(str(m), str(a), int(v)) for m, a, v in rows]

    def load_artifact(self, name: str, version: int) -> bytes:
        with self._transaction() as conn:
            expected = self._require_version(conn, name, version).sha256
            row = self._q(
                conn,
                "SELECT data FROM model_artifacts WHERE model = ? AND version = ?",
                (name, version),
            ).fetchone()
        data = bytes(row[0]) if row is not None else b""
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected:
            raise ArtifactCorrupted(name, version, expected, actual)
        return data

    def get_compiled(
        self, name: str, version: int, dialect: str, kind: CompiledKind = "predict"
    ) -> CompiledExpression:
        dialect = dialect.strip().lower()
        with self._transaction() as conn:
            self._require_version(conn, name, version)
            row = self._q(
                conn,
                "SELECT expression, created_at FROM model_compiled "
                "WHERE model = ? AND version = ? AND dialect = ? AND kind = ?",
                (name, version, dialect, kind),
            ).fetchone()
            if row is None:
                saved = self._q(
                    conn,
                    "SELECT dialect, kind FROM model_compiled WHERE model = ? AND version = ? "
                    "ORDER BY dialect, kind",
                    (name, version),
                ).fetchall()
                raise CompiledNotFound(
                    name, version, dialect, kind, [(str(d), str(k)) for d, k in saved]
                )
        expression, created_at = row
        return CompiledExpression(
            name, version, dialect, kind, str(expression), self._decode_time(created_at)
        )

    # --- helpers --------------------------------------------------------------------------

    def _model(self, row: Sequence[Any]) -> Model:
        name, task, created_at, description, owner = row
        return Model(
            str(name),
            str(task),
            self._decode_time(created_at),
            str(description),
            None if owner is None else str(owner),
        )

    def _version(self, row: Sequence[Any]) -> ModelVersion:
        values = dict(zip((c.strip() for c in _VERSION_COLUMNS.split(",")), row, strict=True))
        features = self._decode_json(values["features"])
        return ModelVersion(
            model=str(values["model"]),
            version=int(values["version"]),
            algorithm=str(values["algorithm"]),
            task=str(values["task"]),
            target=str(values["target"]),
            classes=tuple(self._decode_json(values["classes"])),
            features=tuple(Feature.from_json(f) for f in features),
            hyperparameters=_mapping(self._decode_json(values["hyperparameters"])),
            metrics=_mapping(self._decode_json(values["metrics"])),
            training_sql=str(values["training_sql"]),
            row_count=int(values["row_count"]),
            data_fingerprint=str(values["data_fingerprint"]),
            library_versions=_mapping(self._decode_json(values["library_versions"])),
            artifact_format=str(values["artifact_format"]),
            sha256=str(values["sha256"]),
            created_at=self._decode_time(values["created_at"]),
        )

    def _model_names(self, conn: Connection) -> list[str]:
        rows = self._q(conn, "SELECT name FROM models ORDER BY name").fetchall()
        return [str(r[0]) for r in rows]

    def _alias_names(self, conn: Connection, name: str) -> list[str]:
        rows = self._q(
            conn, "SELECT alias FROM model_aliases WHERE model = ? ORDER BY alias", (name,)
        ).fetchall()
        return [str(r[0]) for r in rows]

    def _require_model(self, conn: Connection, name: str) -> Model:
        validate_name(name)
        row = self._q(
            conn,
            "SELECT name, task, created_at, description, owner FROM models WHERE name = ?",
            (name,),
        ).fetchone()
        if row is None:
            raise ModelNotFound(name, None, self._model_names(conn))
        return self._model(row)

    def _require_version(self, conn: Connection, name: str, version: int) -> ModelVersion:
        self._require_model(conn, name)
        row = self._q(
            conn,
            f"SELECT {_VERSION_COLUMNS} FROM model_versions WHERE model = ? AND version = ?",
            (name, version),
        ).fetchone()
        if row is None:
            versions = self._q(
                conn, "SELECT version FROM model_versions WHERE model = ? ORDER BY version", (name,)
            ).fetchall()
            raise VersionNotFound(name, version, [int(v[0]) for v in versions])
        return self._version(row)


def _mapping(value: Any) -> Mapping[str, Any]:
    return dict(value) if value else {}
