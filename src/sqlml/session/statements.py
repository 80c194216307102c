"""sqlml's own statements (``CREATE``/``SHOW``/``DESCRIBE``/``DROP``/``DEPLOY MODEL``) and
the relations ``evaluate`` and ``feature_importance`` read.

Each handler takes what it needs (the catalog, a way to run a query) rather than the
session, and returns its result as an Arrow table.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pyarrow as pa
from sqlglot import exp

from sqlml.catalog import Catalog
from sqlml.catalog.entities import ModelRef
from sqlml.errors import ModelExists, ModelNotFound, VersionDeployed
from sqlml.models import ModelCache
from sqlml.sql import frontend
from sqlml.udfs.predict import class_keys

log = logging.getLogger("sqlml")

#: Runs a query (which may call predict) for a statement: its result, whole.
Query = Callable[[str], pa.Table]

#: Called as ``progress(stage, done, total)`` while a model trains.
Progress = Callable[[str, int, int], None]


def create_model(
    catalog: Catalog,
    statement: frontend.CreateModelStatement,
    query: Query,
    progress: Progress | None = None,
    owner: str | None = None,
) -> pa.Table:
    """``CREATE [OR REPLACE] MODEL``: train on the query's rows and register a version
    (a new model is owned by ``owner``, the served user; None for local use). Progress
    covers every stage: ``read`` (the query), training's own stages, ``store`` (the
    catalog).

    Returns:
        One row: the model, version, algorithm, task, rows and the metrics.

    Raises:
        ModelExists: the model exists and the statement does not replace it.
    """
    from sqlml.udfs.train import train

    try:
        versions = catalog.list_versions(statement.name)
    except ModelNotFound:
        versions = []
    if versions and not statement.replace:
        raise ModelExists(statement.name, len(versions))
    report = progress or (lambda stage, done, total: None)
    report("read", 0, 1)
    data = query(statement.query_sql)
    report("read", 1, 1)
    trained = train(
        data,
        name=statement.name,
        options=statement.options,
        training_sql=statement.query_sql,
        progress=progress,
    )
    report("store", 0, 1)
    version = catalog.register_version(
        statement.name, trained.spec, trained.artifact, owner, exist_ok=statement.replace
    )
    report("store", 1, 1)
    log.info("trained %s on %d rows", version.ref, version.row_count)
    columns: dict[str, list[Any]] = {
        "model": [version.model],
        "version": [version.version],
        "algorithm": [version.algorithm],
        "task": [version.task],
        "rows": [version.row_count],
    }
    columns.update({name: [value] for name, value in sorted(version.metrics.items())})
    return pa.table(columns)


def drop_model(catalog: Catalog, statement: frontend.DropModelStatement) -> pa.Table:
    """``DROP MODEL [IF EXISTS] name [VERSION n [FORCE]]``: what was dropped, as one row.

    A version an alias points at is dropped only with FORCE, and the row names the aliases
    that went with it (``DEPLOY MODEL name ROLLBACK`` brings an alias back)."""
    try:
        if statement.version is None:
            aliases = [a.alias for a in catalog.list_aliases(statement.name)]
            catalog.delete_model(statement.name)
        else:
            aliases = [
                a.alias
                for a in catalog.list_aliases(statement.name)
                if a.version == statement.version
            ]
            if aliases and not statement.force:
                catalog.get_version(statement.name, statement.version)  # VersionNotFound first
                raise VersionDeployed(statement.name, statement.version, aliases)
            catalog.delete_version(statement.name, statement.version)
    except ModelNotFound:
        if not statement.if_exists:
            raise
        return pa.table({"model": [statement.name], "dropped": ["nothing: no such model"]})
    what = "all versions" if statement.version is None else f"version {statement.version}"
    if aliases:
        what += f" and its {'alias' if len(aliases) == 1 else 'aliases'} {', '.join(aliases)}"
    return pa.table({"model": [statement.name], "dropped": [what]})


def deploy_model(catalog: Catalog, statement: frontend.DeployModelStatement) -> pa.Table:
    """``DEPLOY MODEL``: point the alias at the version (or, with ROLLBACK, back at the one
    deployed before), and say so as one row."""
    if statement.version is None:
        alias = catalog.rollback_alias(statement.name, statement.alias)
    else:
        alias = catalog.set_alias(statement.name, statement.alias, statement.version)
    return pa.table({"model": [alias.model], "alias": [alias.alias], "version": [alias.version]})


def table_function(models: ModelCache, call: frontend.TableFunctionCall, query: Query) -> pa.Table:
    """The relation an ``evaluate(model, query)`` or ``feature_importance(model)`` call
    reads; ``query`` runs evaluate's query."""
    from sqlml.udfs.explain import evaluate, feature_importance

    version = models.catalog.resolve(call.ref)
    model = models.load(version)
    if call.function == "feature_importance":
        return feature_importance(model)
    assert call.query is not None
    return evaluate(model, query(call.query))


def models_table(catalog: Catalog) -> pa.Table:
    """``SHOW MODELS``: a row per model with its versions, latest version and aliases."""
    aliases: dict[str, list[str]] = {}
    for alias in catalog.list_aliases():
        aliases.setdefault(alias.model, []).append(f"{alias.alias}={alias.version}")
    rows = []
    for model in catalog.list_models():
        versions = catalog.list_versions(model.name)
        latest = versions[-1] if versions else None
        rows.append(
            {
                "model": model.name,
                "task": model.task,
                "versions": len(versions),
                "latest": latest.version if latest else None,
                "algorithm": latest.algorithm if latest else None,
                "aliases": ", ".join(aliases.get(model.name, [])),
                "updated": latest.created_at if latest else model.created_at,
            }
        )
    schema = pa.schema(
        [
            ("model", pa.string()),
            ("task", pa.string()),
            ("versions", pa.int64()),
            ("latest", pa.int64()),
            ("algorithm", pa.string()),
            ("aliases", pa.string()),
            ("updated", pa.timestamp("us", tz="UTC")),
        ]
    )
    return pa.Table.from_pylist(rows, schema=schema)


def describe_table(catalog: Catalog, ref: str | ModelRef) -> pa.Table:
    """``DESCRIBE MODEL``: a version's lineage as property/value rows.

    Args:
        catalog: where the model is.
        ref: the version: ``churn`` (the latest), ``churn@2`` or ``churn@production``.

    Raises:
        ModelNotFound: no such model (VersionNotFound, AliasNotFound: no such version or
            alias).
    """
    version = catalog.resolve(ref)
    aliases = [a.alias for a in catalog.list_aliases(version.model) if a.version == version.version]
    owner = catalog.get_model(version.model).owner
    rows: list[tuple[str, str]] = [
        ("model", version.model),
        ("owner", owner or ""),
        ("version", str(version.version)),
        ("aliases", ", ".join(aliases)),
        ("task", version.task),
        ("algorithm", version.algorithm),
        ("target", version.target),
        # As predict_proba's keys, quoted as a lookup is written: predict_proba(...)['true'].
        ("classes", ", ".join(exp.Literal.string(k).sql() for k in class_keys(version.classes))),
        ("rows", str(version.row_count)),
        ("created_at", version.created_at.isoformat(timespec="seconds")),
    ]
    for feature in version.features:
        detail = feature.type
        if feature.categories is not None:
            detail += f" ({len(feature.categories)} categories)"
        rows.append((f"feature {feature.name}", detail))
    rows += [(f"metric {k}", f"{v:.6g}") for k, v in sorted(version.metrics.items())]
    rows += [(f"param {k}", str(v)) for k, v in sorted(version.hyperparameters.items())]
    rows += [
        ("training_sql", version.training_sql),
        ("data_fingerprint", version.data_fingerprint),
        ("artifact", f"{version.artifact_format}, sha256 {version.sha256}"),
    ]
    rows += [(f"library {k}", v) for k, v in sorted(version.library_versions.items())]
    return pa.table({"property": [r[0] for r in rows], "value": [r[1] for r in rows]})
