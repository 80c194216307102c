"""A dbt-duckdb plugin: sqlml's ``predict`` and ``predict_proba`` in dbt models.

Enable it in ``profiles.yml``::

    plugins:
      - module: sqlml.dbt
        config: {catalog: "postgresql://ml@db/catalog"}

and call the native forms from a model materialized as a table::

    {{ config(materialized='table') }}
    select c.customer_id,
           predict('churn@prod', c)::varchar as will_churn,
           predict_proba('churn@prod', c)['yes'] as p_churn
    from {{ ref('customers') }} c

``predict`` returns a DuckDB ``VARIANT`` (one function serves every model, whatever its
output type); cast it to the model's type for a typed column. ``predict_proba`` returns a
typed ``MAP(VARCHAR, DOUBLE)``. A view would store the call, which only a connection with
this plugin can run, so models calling ``predict`` are materialized as ``table`` or
``incremental``.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

from dbt.adapters.duckdb.plugins import BasePlugin

from sqlml.catalog import Catalog, open_catalog
from sqlml.config import load_settings
from sqlml.engines.duckdb import DuckDBEngine, install


class Plugin(BasePlugin):
    """Installs ``predict`` and ``predict_proba`` on each connection dbt-duckdb opens.

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
        self._engines.append(install(conn, self.catalog))
