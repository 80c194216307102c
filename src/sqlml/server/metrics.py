"""Prometheus metrics and the per-query log line of ``sqlml serve``."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

#: The kinds of calls counted in ``sqlml_queries_total``.
KINDS = ("query", "update", "metadata", "prepared")


class Metrics:
    """The server's series, in a registry of their own (not prometheus_client's global one).

    >>> m = Metrics()
    >>> m.observe("query", "ok", 3, 0.01, ["iris"])
    >>> m.registry.get_sample_value("sqlml_queries_total", {"kind": "query", "status": "ok"})
    1.0
    >>> m.registry.get_sample_value("sqlml_predict_rows_total", {"model": "iris"})
    3.0
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.queries = Counter(
            "sqlml_queries",
            "Statements and metadata calls served, by kind and status",
            ["kind", "status"],
            registry=self.registry,
        )
        self.rows = Counter(
            "sqlml_rows_returned", "Rows returned to clients", registry=self.registry
        )
        self.seconds = Histogram(
            "sqlml_query_seconds",
            "Time to run a statement or metadata call",
            registry=self.registry,
        )
        self.predict_rows = Counter(
            "sqlml_predict_rows",
            "Result rows of statements that called a model, by model",
            ["model"],
            registry=self.registry,
        )
        self.sessions = Gauge(
            "sqlml_active_sessions", "Open client sessions", registry=self.registry
        )

    def observe(
        self, kind: str, status: str, rows: int, seconds: float, models: Sequence[str] = ()
    ) -> None:
        """Record one call."""
        self.queries.labels(kind=kind, status=status).inc()
        self.seconds.observe(seconds)
        if status == "ok":
            self.rows.inc(rows)
            for model in models:
                self.predict_rows.labels(model=model).inc(rows)

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        """Expose ``/metrics`` over HTTP on ``host:port`` (a daemon thread)."""
        start_http_server(port, addr=host, registry=self.registry)
