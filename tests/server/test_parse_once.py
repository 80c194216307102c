"""One ``SELECT predict(...)`` from a Flight SQL client to the engine is parsed once."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from sqlglot.parser import Parser

from sqlml.server.rpc import SqlmlFlightServer
from sqlml.server.state import ServerOptions

from .conftest import adbc


@pytest.mark.parametrize("engine", ["duckdb", "datafusion"])
def test_a_predict_query_is_parsed_once(
    tmp_path: Path, engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    options = ServerOptions(engine=engine, catalog=f"sqlite:///{tmp_path / 'catalog.db'}")
    server = SqlmlFlightServer("grpc://127.0.0.1:0", options)
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    parses: list[str] = []
    original = Parser.parse

    def counting(self: Parser, raw_tokens: Any, sql: str | None = None) -> Any:
        parses.append(sql or "")
        return original(self, raw_tokens, sql)

    try:
        con = adbc.connect(f"grpc://127.0.0.1:{server.port}", autocommit=True)
        try:
            with con.cursor() as cur:
                cur.execute(
                    "CREATE TABLE pts AS SELECT CAST(value AS DOUBLE) AS x, value * 2.0 AS y "
                    "FROM generate_series(1, 200) AS t(value)"
                )
                cur.execute(
                    "CREATE MODEL lin OPTIONS (target = 'y', algorithm = 'lightgbm', "
                    "num_iterations = 5) AS SELECT x, y FROM pts"
                )
                query = "SELECT x, predict('lin', *) AS p FROM pts ORDER BY x LIMIT 3"
                monkeypatch.setattr(Parser, "parse", counting)
                cur.execute(query)
                rows = cur.fetch_arrow_table()
                monkeypatch.setattr(Parser, "parse", original)
        finally:
            con.close()
    finally:
        server.shutdown()
        thread.join(timeout=30)
    assert rows.column_names == ["x", "p"]
    assert rows.num_rows == 3
    assert parses == [query], parses
