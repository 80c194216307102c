"""A dbt-duckdb plugin: sqlml's ``predict`` and ``predict_proba`` in dbt models.

Enable it in ``profiles.yml``::

    plugins:
      - module: sqlml.dbt
        config: {catalog: "postgresql://ml@db/catalog"}

and call the native forms from a model materialized as a table::

    {{ config(materialized='table') }}
    select c.customer_id,
           predict('churn@prod', c) as will_churn,
           predict_proba('churn@prod', c)['yes'] as p_churn
    from {{ ref('customers') }} c

The plugin installs on dbt's connection:

- ``predict('m', row)``, returning a DuckDB ``VARIANT`` (one function serves every model,
  whatever its output type), and ``predict_proba('m', row)``, a ``MAP(VARCHAR, DOUBLE)``;
- ``sqlml_rewrite(sql)``: the SQL with each predict/predict_proba call bound to the model's
  version and replaced by a function typed like its output (``VARCHAR`` labels, ``DOUBLE``
  values...), as sqlml's own sessions run it;
- ``sqlml_calls_predict(sql)``: whether SQL calls sqlml's functions (strings and comments
  that merely mention them do not count).

The example project's ``macros/sqlml.sql`` uses the last two: tables get typed columns
without casts, and a view that calls ``predict`` is refused (it would store the call, which
only a connection with this plugin can run). Without those macros, cast ``predict`` to the
model's type (``predict(...)::varchar``) for a typed column.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any, Literal

from dbt.adapters.duckdb.plugins import BasePlugin

from sqlml.catalog import Catalog, open_catalog
from sqlml.config import load_settings
from sqlml.engines.binding import Binding
from sqlml.engines.duckdb import PREDICTION_TYPES, DuckDBEngine, install
from sqlml.models import ModelCache
from sqlml.sql import frontend, rewrite


class Plugin(BasePlugin):
    """Installs sqlml's functions on each connection dbt-duckdb opens.

    Config (the plugin's ``config:`` in ``profiles.yml``):
        catalog: the catalog URI; by default sqlml's own setting (``SQLML_CATALOG``, then
            ``sqlml.toml``, then ``sqlite:///sqlml.db`` in dbt's working directory).

    The catalog is opened on the first connection and closed when the plugin goes away.
    """

    def initialize(self, plugin_config: dict[str, Any]) -> None:
        # dbt-duckdb merges the profile's DuckDB ``settings`` into plugin_config, so keys
        # other than ours are expected and ignored.
        catalog = plugin_config.get("catalog")
        self.catalog_uri = load_settings({"catalog": str(catalog) if catalog else None}).catalog
        self._catalog: Catalog | None = None
        self._engines: list[DuckDBEngine] = []
        self._lock = threading.Lock()

    @property
    def catalog(self) -> Catalog:
        """The catalog models are found in, opened on first use."""
        with self._lock:
            if self._catalog is None:
                self._catalog = open_catalog(self.catalog_uri)
                weakref.finalize(self, self._catalog.close)
            return self._catalog

    def configure_connection(self, conn: Any) -> None:
        """Install sqlml's functions on dbt's connection (a ``duckdb.DuckDBPyConnection``;
        cursors dbt takes from it see them too)."""
        # The engine must live as long as the connection: its functions call back into it.
        engine = install(conn, self.catalog)
        self._engines.append(engine)
        # Every typed function a rewrite can name is created now: one created while dbt's
        # statement runs (from inside sqlml_rewrite) would be invisible to the transaction
        # that statement belongs to, which is the one the rewritten SQL runs in.
        for output_type in PREDICTION_TYPES:
            engine.predict_function(output_type)
        engine.predict_function(PREDICTION_TYPES[0], proba=True)
        binder = _Binder(engine, self.catalog)
        conn.create_function("sqlml_rewrite", binder.rewrite, [str], str)
        conn.create_function("sqlml_calls_predict", calls_predict, [str], bool)


class _Binder:
    """Binds predict/predict_proba calls to the typed functions of one engine."""

    def __init__(self, engine: DuckDBEngine, catalog: Catalog) -> None:
        self.engine = engine
        self.models = ModelCache(catalog)

    def rewrite(self, sql: str) -> str:
        """``sql`` with each predict/predict_proba call replaced by a typed one."""
        return rewrite.rewrite_query(sql, self.bind, dialect=self.engine.SQLGLOT_DIALECT)

    def bind(self, ref: str, kind: Literal["predict", "predict_proba"]) -> Binding:
        """The typed function, resolved version and features for one call."""
        version, model = self.models.bind(ref, kind)
        return self.engine.bind_predict(version, model, kind)


def calls_predict(sql: str) -> bool:
    """Whether one statement calls sqlml's functions; mentions in strings or comments do not
    count.

    >>> calls_predict("select predict('churn', c) from customers c")
    True
    >>> calls_predict("select 'predict(' as s -- predict_proba(\\n from customers")
    False
    """
    statement = frontend.parse_statement(sql, DuckDBEngine.SQLGLOT_DIALECT)
    return isinstance(statement, frontend.QueryStatement) and bool(statement.model_refs)
