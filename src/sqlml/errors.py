"""The exceptions sqlml raises.

Every error sqlml raises is a :class:`SqlmlError`. Subclasses carry the thing they are
about as fields (model name, version, column, option) so callers can act on them, and
their messages say how to fix the problem. Errors from drivers (psycopg, sqlite3, DuckDB)
are translated at the boundary with ``raise ... from exc``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlml._redact import redact_uri, scrub


def _listing(items: Iterable[object], empty: str = "none") -> str:
    shown = [str(item) for item in items]
    return ", ".join(shown) if shown else empty


class SqlmlError(Exception):
    """The root of every error sqlml raises."""


class ConfigError(SqlmlError, ValueError):
    """A configuration value (flag, environment variable, sqlml.toml) is invalid."""

    def __init__(self, setting: str, message: str) -> None:
        self.setting = setting
        super().__init__(f"{setting}: {message}")


class UnknownEngine(ConfigError):
    """The engine name is not one sqlml knows."""

    def __init__(self, name: str, choices: Sequence[str], suggestion: str | None = None) -> None:
        self.name = name
        self.choices = tuple(choices)
        hint = f"did you mean {suggestion!r}? " if suggestion else ""
        super().__init__(
            "engine", f"unknown engine {name!r}; {hint}choose one of {_listing(choices)}"
        )


class InvalidModelName(SqlmlError, ValueError):
    """A model name is not a valid identifier."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        super().__init__(
            f"invalid model name {name!r}: {reason}. A model name starts with a letter or "
            "underscore, continues with letters, digits or underscores, and has at most 63 "
            "characters"
        )


class ModelNotFound(SqlmlError, LookupError):
    """No model of that name exists (``version`` is set when a version was asked for)."""

    def __init__(
        self, name: str, version: int | None = None, available: Sequence[str] = ()
    ) -> None:
        self.name = name
        self.version = version
        self.available = tuple(available)
        super().__init__(
            f"model {name!r} does not exist; models in the catalog: {_listing(available)}"
        )


class CompiledNotFound(ModelNotFound):
    """The version exists but was not compiled (and saved) for that dialect and kind.

    The message gives the ``sqlml compile ... --save`` command that stores it.
    """

    def __init__(
        self,
        name: str,
        version: int,
        dialect: str,
        kind: str,
        available: Sequence[tuple[str, str]] = (),
    ) -> None:
        saved = ", ".join(f"{d} {k}" for d, k in available) or "none"
        proba = " --proba" if kind == "proba" else ""
        SqlmlError.__init__(
            self,
            f"model {name!r} version {version} has no compiled {kind!r} expression for "
            f"dialect {dialect!r} (saved for this version: {saved}); store it with "
            f"`sqlml compile {name}@{version} --dialect {dialect}{proba} --save`",
        )
        self.name = name
        self.version = version
        self.dialect = dialect
        self.kind = kind
        self.available = ()
        self.available_compiled = tuple(available)


class VersionNotFound(ModelNotFound):
    """The model exists but has no such version."""

    def __init__(self, name: str, version: int | None, available_versions: Sequence[int]) -> None:
        wanted = "no versions" if version is None else f"no version {version}"
        SqlmlError.__init__(
            self, f"model {name!r} has {wanted}; its versions: {_listing(available_versions)}"
        )
        self.name = name
        self.version = version
        self.available = ()
        self.available_versions = tuple(available_versions)


class AliasNotFound(ModelNotFound):
    """The model exists but has no such alias."""

    def __init__(self, name: str, alias: str, available_aliases: Sequence[str]) -> None:
        SqlmlError.__init__(
            self,
            f"model {name!r} has no alias {alias!r}; its aliases: "
            f"{_listing(available_aliases)}. Set one with DEPLOY MODEL or Catalog.set_alias",
        )
        self.name = name
        self.version = None
        self.alias = alias
        self.available = ()
        self.available_aliases = tuple(available_aliases)


class ArtifactCorrupted(SqlmlError):
    """A stored artifact does not match the SHA-256 recorded when it was registered."""

    def __init__(self, name: str, version: int, expected: str, actual: str) -> None:
        self.name = name
        self.version = version
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"artifact of model {name!r} version {version} is corrupted: its SHA-256 is "
            f"{actual[:12]}..., the catalog recorded {expected[:12]}...; it will not be loaded. "
            f"Retrain the model or drop the version"
        )


class CatalogError(SqlmlError):
    """The catalog cannot be opened or used.

    Its message never shows a password: URIs in it are redacted.
    """

    def __init__(self, message: str) -> None:
        super().__init__(scrub(message))


class UnsupportedCatalogURI(CatalogError, ValueError):
    """The catalog URI's scheme is not one sqlml supports."""

    def __init__(self, uri: str, supported: Sequence[str]) -> None:
        self.uri = uri = redact_uri(uri)
        self.supported = tuple(supported)
        super().__init__(
            f"unsupported catalog URI {uri!r}; supported schemes: {_listing(supported)} "
            "(e.g. sqlite:///sqlml.db or postgresql://user@host/db)"
        )


class CatalogUnavailable(CatalogError):
    """The catalog's database cannot be reached.

    ``uri`` is the catalog's URI with its password hidden, and ``reason`` (the driver's
    error) does not show the password either.
    """

    def __init__(self, uri: str, reason: str) -> None:
        self.uri = redact_uri(uri)
        self.reason = scrub(reason, uri)
        super().__init__(f"cannot open catalog {self.uri}: {self.reason}")


class SchemaOutOfDate(CatalogError):
    """The catalog's schema is older or newer than this sqlml expects."""

    def __init__(self, uri: str, current: int, expected: int) -> None:
        self.uri = uri = redact_uri(uri)
        self.current = current
        self.expected = expected
        if current < expected:
            advice = f"run `sqlml migrate --catalog {uri}` to bring it up to date"
        else:
            advice = "upgrade sqlml to a version that knows this schema"
        super().__init__(
            f"catalog {uri} is at schema version {current}, this sqlml expects {expected}; {advice}"
        )


class MigrationError(CatalogError):
    """A migration cannot be applied, or an applied one was changed."""

    def __init__(self, version: int, name: str, message: str) -> None:
        self.version = version
        self.name = name
        super().__init__(f"migration {version:04d} ({name}): {message}")


class AliasInvalid(SqlmlError, ValueError):
    """An alias name is not valid."""

    def __init__(self, alias: str, reason: str) -> None:
        self.alias = alias
        super().__init__(f"invalid alias {alias!r}: {reason}")


class SqlSyntaxError(SqlmlError, ValueError):
    """A statement could not be parsed as sqlml SQL."""

    def __init__(self, message: str, sql: str = "") -> None:
        self.sql = sql
        super().__init__(message)


class InvalidOption(SqlmlError, ValueError):
    """A CREATE MODEL option is unknown, missing or has a bad value."""

    def __init__(self, option: str, message: str, valid: Sequence[str] = ()) -> None:
        self.option = option
        self.valid = tuple(valid)
        hint = f"; valid options: {_listing(valid)}" if valid else ""
        super().__init__(f"option {option!r}: {message}{hint}")


class TrainingError(SqlmlError):
    """Training cannot proceed on the given data (empty set, single class, no features...)."""

    def __init__(self, model: str, message: str) -> None:
        self.model = model
        super().__init__(f"cannot train model {model!r}: {message}")


class UnsupportedColumnType(SqlmlError, TypeError):
    """A column's Arrow type cannot be used as a feature or target."""

    def __init__(self, column: str, type_: str, message: str = "") -> None:
        self.column = column
        self.type = type_
        super().__init__(
            f"column {column!r} has type {type_}, which sqlml cannot use"
            + (f": {message}" if message else "; exclude it with OPTIONS (exclude = ...)")
        )


class FeatureMissing(SqlmlError, LookupError):
    """A feature the model was trained on is not among the input columns."""

    def __init__(self, model: str, column: str, available: Sequence[str] = ()) -> None:
        self.model = model
        self.column = column
        self.available = tuple(available)
        listed = f"; input columns: {_listing(available)}" if available else ""
        super().__init__(
            f"model {model!r} needs feature column {column!r}, which the input does not have"
            f"{listed}"
        )


class FeatureTypeMismatch(SqlmlError, TypeError):
    """An input column's type cannot be converted to the type the model was trained on."""

    def __init__(self, model: str, column: str, expected: str, actual: str) -> None:
        self.model = model
        self.column = column
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"model {model!r} feature {column!r} was trained as {expected}, but the input "
            f"column is {actual}; cast it, e.g. CAST({column} AS ...)"
        )


class ArtifactInvalid(SqlmlError, ValueError):
    """A model artifact is not one sqlml can load (unknown format, bad manifest, not a zip)."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason
        super().__init__(
            f"cannot load the artifact of model {name!r}: {reason}. It was not written by "
            "this sqlml; retrain the model"
        )


class ArtifactRefused(ArtifactCorrupted, ArtifactInvalid):
    """An artifact sqlml will not load although its bytes match their SHA-256.

    One of its files is not shaped as sqlml writes it (a cut LightGBM model, a split on a
    feature the model does not have, a preprocessing document that is not an object), or
    its signature is missing or wrong while ``SQLML_SIGNING_KEY`` is set. It is refused
    before LightGBM or ONNX Runtime reads any of it.

    Attributes:
        ref: the model reference as given (``name@version``).
        name: the model's name.
        version: the version the reference names (0 when it names none).
        file: the file of the artifact that is refused (``model.txt``, ``manifest.json``...).
        reason: what is wrong with it.
    """

    def __init__(self, ref: str, file: str, reason: str) -> None:
        self._fields(ref, file, reason)
        SqlmlError.__init__(
            self,
            f"artifact of model {ref!r} is refused: {file}: {reason}. It will not be loaded; "
            "retrain the model or drop the version",
        )

    def _fields(self, ref: str, file: str, reason: str) -> None:
        name, _, qualifier = ref.partition("@")
        self.ref = ref
        self.name = name
        self.version = int(qualifier) if qualifier.isdigit() else 0
        self.expected = self.actual = ""
        self.file = file
        self.reason = reason


class ArtifactCrashed(ArtifactRefused):
    """An artifact that killed (or failed in) the throwaway process that first loads and
    scores each new artifact, so it is not loaded in this one.

    Attributes:
        signal: the name of the signal that killed the checker (``SIGSEGV``, ``SIGABRT``),
            or ``None`` when it exited with an error or ran out of time.
    """

    def __init__(self, ref: str, file: str, reason: str, signal: str | None = None) -> None:
        self._fields(ref, file, reason)
        self.signal = signal
        SqlmlError.__init__(
            self,
            f"artifact of model {ref!r} crashed the checker process that loads and scores "
            f"each new artifact once: {file} {reason}. It will not be loaded in this "
            "process; retrain the model or drop the version",
        )


class NotAClassifier(SqlmlError, TypeError):
    """A classification-only call (``predict_proba``) was made on a regression model."""

    def __init__(self, model: str, task: str) -> None:
        self.model = model
        self.task = task
        super().__init__(
            f"model {model!r} is a {task} model and has no class probabilities; "
            "use predict() instead of predict_proba()"
        )


class VersionDeployed(SqlmlError, ValueError):
    """``DROP MODEL m VERSION n`` of a version an alias points at, without ``FORCE``."""

    def __init__(self, name: str, version: int, aliases: Sequence[str]) -> None:
        self.name = name
        self.version = version
        self.aliases = tuple(aliases)
        shown = ", ".join(self.aliases)
        super().__init__(
            f"version {version} of model {name!r} is deployed as {shown}; dropping it would "
            f"remove {'that alias' if len(self.aliases) == 1 else 'those aliases'}. Deploy "
            f"another version first (DEPLOY MODEL {name} VERSION <n> AS {self.aliases[0]}), "
            f"or drop it and its aliases with DROP MODEL {name} VERSION {version} FORCE"
        )


class NothingToRollBack(SqlmlError, LookupError):
    """``DEPLOY MODEL m ROLLBACK``: the alias has no earlier deployment to go back to."""

    def __init__(self, name: str, alias: str, version: int | None) -> None:
        self.name = name
        self.alias = alias
        self.version = version
        now = "" if version is None else f" (it points at version {version})"
        super().__init__(
            f"alias {alias!r} of model {name!r} has no earlier deployment to roll back to"
            f"{now}; deploy a version with DEPLOY MODEL {name} VERSION <n> AS {alias}"
        )


class UnknownClass(SqlmlError, LookupError):
    """``predict_proba(...)['key']`` names a key the model's probabilities do not have."""

    def __init__(self, model: str, key: str, keys: Sequence[str]) -> None:
        self.model = model
        self.key = key
        self.keys = tuple(keys)
        same = [k for k in self.keys if k.casefold() == key.casefold()]
        hint = f"; did you mean {same[0]!r}?" if same else "."
        shown = ", ".join(repr(k) for k in self.keys)
        super().__init__(
            f"model {model!r} has no class {key!r} among its probabilities' keys "
            f"({shown}){hint} Keys are the class labels as text, booleans as 'true' and "
            "'false'; DESCRIBE MODEL lists them"
        )


class QueryError(SqlmlError):
    """The engine rejected or failed a statement."""

    def __init__(self, engine: str, message: str, sql: str = "") -> None:
        self.engine = engine
        self.message = message
        self.sql = sql
        super().__init__(f"{engine}: {message}")


class TableNotFound(QueryError):
    """A statement named a table the engine does not have."""

    def __init__(self, engine: str, message: str, sql: str, table: str) -> None:
        self.table = table
        super().__init__(engine, message, sql)


class StatementCancelled(QueryError):
    """A statement was stopped while it ran: it took longer than the server's statement
    timeout (``sqlml serve --statement-timeout``), or it was cancelled."""

    def __init__(self, engine: str, reason: str) -> None:
        self.reason = reason
        super().__init__(engine, f"statement cancelled: {reason}")


class PermissionDenied(SqlmlError, PermissionError):
    """A served user's role does not allow a statement (see ``sqlml serve --users``)."""

    def __init__(self, user: str, role: str, action: str, model: str, needed: str) -> None:
        self.user = user
        self.role = role
        self.action = action
        self.model = model
        super().__init__(
            f"user {user!r} ({role}) may not {action} {model!r}: that takes the {needed}; "
            "ask an admin of this server"
        )


class HostAccessDenied(QueryError):
    """A served session's statement would reach the host's files, other databases or the
    network, which the server does not allow (see ``sqlml serve --data-dir``)."""

    HINT = (
        "this server lets SQL reach no files of its host but those under its --data-dir "
        "(reading) and --writable-dir (writing) directories"
    )

    def __init__(self, engine: str, message: str, sql: str = "", path: str | None = None) -> None:
        self.path = path
        super().__init__(engine, f"{message}; {self.HINT}", sql)


class ColumnNotFound(QueryError):
    """A statement named a column that is not among those in scope."""

    def __init__(self, engine: str, message: str, sql: str, column: str) -> None:
        self.column = column
        super().__init__(engine, message, sql)


class ModelExists(SqlmlError, ValueError):
    """CREATE MODEL named a model that already exists."""

    def __init__(self, name: str, versions: int) -> None:
        self.name = name
        super().__init__(
            f"model {name!r} already exists ({versions} version(s)); use CREATE OR REPLACE "
            f"MODEL {name} to train a new version (old versions stay callable as {name}@N)"
        )


class SourceError(SqlmlError):
    """A PostgreSQL data source (``attach_postgres``, ``write_postgres``) cannot be used.

    ``uri`` is the source's URI with its password hidden; the message does not show the
    password either.
    """

    def __init__(self, uri: str, message: str) -> None:
        self.uri = redact_uri(uri)
        super().__init__(scrub(f"PostgreSQL source {self.uri}: {message}", uri))


class SourceUnavailable(SourceError):
    """A PostgreSQL data source cannot be reached, or refuses the credentials."""

    def __init__(self, uri: str, reason: str) -> None:
        self.reason = scrub(reason, uri)
        super().__init__(uri, f"cannot connect: {self.reason}")


class SourceTableNotFound(SourceError, LookupError):
    """A statement reads ``alias.table`` but the attached schema has no such table."""

    def __init__(
        self, uri: str, alias: str, table: str, schema: str, available: Sequence[str]
    ) -> None:
        self.alias = alias
        self.table = table
        self.schema = schema
        self.available = tuple(available)
        super().__init__(
            uri,
            f"table {alias}.{table} does not exist: schema {schema!r} has no table {table!r}; "
            f"its tables: {_listing(available)}",
        )


class CompileNotSupported(SqlmlError):
    """A model cannot be compiled to SQL (its algorithm, objective or a feature's type)."""

    def __init__(self, model: str, reason: str) -> None:
        self.model = model
        self.reason = reason
        super().__init__(
            f"model {model!r} cannot be compiled to SQL: {reason}; call predict() instead"
        )


class UnknownDialect(SqlmlError, ValueError):
    """A SQL dialect name is not one sqlglot (or sqlml) knows."""

    def __init__(self, name: str, choices: Sequence[str], suggestion: str | None = None) -> None:
        self.name = name
        self.choices = tuple(choices)
        hint = f"did you mean {suggestion!r}? " if suggestion else ""
        super().__init__(f"unknown SQL dialect {name!r}; {hint}choose one of {_listing(choices)}")


class DuplicateColumn(TrainingError):
    """The training query gives two columns the same name (or names differing only in case)."""

    def __init__(self, model: str, column: str, names: Sequence[str]) -> None:
        self.column = column
        self.names = tuple(names)
        if len(set(names)) == 1:
            what = f"{len(names)} columns named {column!r}"
        else:
            what = f"columns {_listing(repr(n) for n in names)}, whose names differ only in case"
        super().__init__(
            model,
            f"the query gives {what}; a model binds its features by name, so give each "
            f"column its own name, e.g. SELECT {column}, {column} AS {column}_2",
        )


class NonFiniteValues(TrainingError):
    """The target (or, for the scikit-learn models, a feature) holds NaN or infinite values."""

    def __init__(
        self,
        model: str,
        column: str,
        count: int,
        role: str,
        hint: str,
        what: str = "NaN or infinite",
    ) -> None:
        self.column = column
        self.count = count
        self.role = role
        super().__init__(model, f"the {role} column {column!r} has {count} {what} value(s); {hint}")


class EvaluationError(SqlmlError, ValueError):
    """``evaluate()`` cannot score the model on the rows it was given."""

    def __init__(self, model: str, message: str) -> None:
        self.model = model
        super().__init__(f"cannot evaluate model {model!r}: {message}")


class UnknownOption(InvalidOption):
    """A CREATE MODEL option is neither one of sqlml's own nor a parameter of the learner.

    Attributes:
        option: the option as given.
        learner: what else it could have been, e.g. ``a LightGBM parameter``.
        suggestions: the closest valid names, best first (empty when none is close).
    """

    def __init__(
        self, option: str, learner: str, suggestions: Sequence[str] = (), hint: str = ""
    ) -> None:
        self.learner = learner
        self.suggestions = tuple(suggestions)
        if self.suggestions:
            hint = f"did you mean {' or '.join(repr(s) for s in self.suggestions)}?"
        super().__init__(
            option, f"is not an option of sqlml or {learner}" + (f"; {hint}" if hint else "")
        )
