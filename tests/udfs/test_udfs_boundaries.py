from __future__ import annotations

import ast
from pathlib import Path

import sqlml.udfs

BANNED = ("duckdb", "datafusion", "psycopg", "sqlite3", "pickle", "joblib", "sqlml.engines")


def imported_modules(path: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
    return modules


def test_udfs_import_no_engine_store_or_pickle() -> None:
    sources = sorted(Path(sqlml.udfs.__file__).parent.glob("*.py"))
    assert len(sources) >= 6
    for source in sources:
        for module in imported_modules(source):
            assert not module.startswith(BANNED), f"{source.name} imports {module}"
            if module.startswith("sqlml.catalog"):
                assert module == "sqlml.catalog.entities", f"{source.name} imports {module}"
