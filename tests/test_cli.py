"""The ``sqlml`` command, run as a real process, and its settings precedence."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import sqlml
from sqlml.catalog import open_catalog
from sqlml.config import Settings, load_settings
from sqlml.errors import ConfigError, UnknownEngine

from .catalog.conftest import make_spec


def run(
    *args: str, cwd: Path, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``sqlml ARGS`` as a real process, without the caller's SQLML_* settings."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("SQLML_")}
    return subprocess.run(
        [sys.executable, "-m", "sqlml.cli", *args],
        cwd=cwd,
        env={**base, **(env or {})},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_version(tmp_path: Path) -> None:
    result = run("--version", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.strip() == f"sqlml {sqlml.__version__}"


def test_models_lists_versions_and_aliases(tmp_path: Path) -> None:
    empty = run("models", cwd=tmp_path)
    assert empty.returncode == 0
    assert "no models in catalog sqlite:///sqlml.db" in empty.stdout
    with open_catalog(f"sqlite:///{tmp_path / 'sqlml.db'}") as catalog:
        catalog.register_version("churn", make_spec(), b"1")
        catalog.register_version("churn", make_spec(), b"2")
        catalog.set_alias("churn", "production", 1)
    result = run("models", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    header, _, row = result.stdout.splitlines()
    assert [c.strip() for c in header.split("|")][:4] == ["model", "task", "versions", "latest"]
    cells = [c.strip() for c in row.split("|")]
    assert cells[:6] == ["churn", "classification", "2", "2", "lightgbm", "production=1"]


def test_global_options_before_or_after_the_subcommand(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    with open_catalog(uri) as catalog:
        catalog.register_version("placed", make_spec(), b"1")
    before = run("--catalog", uri, "models", cwd=tmp_path)
    after = run("models", "--catalog", uri, cwd=tmp_path)
    assert before.returncode == after.returncode == 0
    assert "placed" in before.stdout
    assert before.stdout == after.stdout
    assert not (tmp_path / "sqlml.db").exists()


def test_migrate_and_status(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    first = run("migrate", "--catalog", uri, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == [
        "applied 0001_initial",
        "applied 0002_compiled_models",
        "applied 0003_model_owner",
        "applied 0004_alias_history",
    ]
    again = run("migrate", "--catalog", uri, cwd=tmp_path)
    assert again.stdout.strip() == f"catalog {uri} is up to date"
    status = run("--catalog", uri, "migrate", "--status", cwd=tmp_path)
    assert status.returncode == 0
    assert [c.strip() for c in status.stdout.splitlines()[2].split("|")][:3] == [
        "0001",
        "initial",
        "applied",
    ]


def test_migrate_status_and_migrate_on_postgres(postgres_uri: str, tmp_path: Path) -> None:
    pending = run("migrate", "--status", "--catalog", postgres_uri, cwd=tmp_path)
    assert pending.returncode == 0, pending.stderr
    assert "pending" in pending.stdout
    refused = run("models", "--catalog", postgres_uri, cwd=tmp_path)
    assert refused.returncode == 1
    assert "run `sqlml migrate" in refused.stderr
    assert "Traceback" not in refused.stderr
    applied = run("migrate", env={"SQLML_CATALOG": postgres_uri}, cwd=tmp_path)
    assert applied.stdout.splitlines() == [
        "applied 0001_initial",
        "applied 0002_compiled_models",
        "applied 0003_model_owner",
        "applied 0004_alias_history",
    ]
    listed = run("models", "--catalog", postgres_uri, cwd=tmp_path)
    assert listed.returncode == 0
    assert "no models" in listed.stdout


def test_errors_are_one_line_without_traceback(tmp_path: Path) -> None:
    result = run("--engine", "duckd", "models", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr == (
        "error: engine: unknown engine 'duckd'; did you mean 'duckdb'? "
        "choose one of duckdb, datafusion\n"
    )
    bad = run("models", "--catalog", "mysql://x/y", cwd=tmp_path)
    assert bad.returncode == 1
    assert "supported schemes: sqlite, postgresql" in bad.stderr


def test_settings_precedence_flag_env_file_default(tmp_path: Path) -> None:
    assert load_settings({}, environ={}, cwd=tmp_path) == Settings()
    (tmp_path / "sqlml.toml").write_text(
        'catalog = "sqlite:///file.db"\nengine = "datafusion"\ndatabase = "file.duckdb"\n'
    )
    from_file = load_settings({}, environ={}, cwd=tmp_path)
    assert from_file == Settings("sqlite:///file.db", "datafusion", "file.duckdb")
    env = {"SQLML_CATALOG": "sqlite:///env.db", "SQLML_ENGINE": "duckdb"}
    from_env = load_settings({}, environ=env, cwd=tmp_path)
    assert from_env == Settings("sqlite:///env.db", "duckdb", "file.duckdb")
    flags = {"catalog": "sqlite:///flag.db", "engine": None, "database": None}
    assert load_settings(flags, environ=env, cwd=tmp_path).catalog == "sqlite:///flag.db"


def test_settings_file_may_use_a_sqlml_table(tmp_path: Path) -> None:
    (tmp_path / "sqlml.toml").write_text('[sqlml]\nengine = "datafusion"\n')
    assert load_settings({}, environ={}, cwd=tmp_path).engine == "datafusion"


def test_settings_file_errors_name_the_key(tmp_path: Path) -> None:
    (tmp_path / "sqlml.toml").write_text('catalgo = "x"\n')
    with pytest.raises(ConfigError, match="catalgo: unknown setting; valid settings: catalog"):
        load_settings({}, environ={}, cwd=tmp_path)
    (tmp_path / "sqlml.toml").write_text("engine = 3\n")
    with pytest.raises(ConfigError, match="expected a string"):
        load_settings({}, environ={}, cwd=tmp_path)
    (tmp_path / "sqlml.toml").write_text('engine = "spark"\n')
    with pytest.raises(UnknownEngine) as info:
        load_settings({}, environ={}, cwd=tmp_path)
    assert info.value.choices == ("duckdb", "datafusion")


def test_sql_command_formats(tmp_path: Path) -> None:
    query = "SELECT 1 AS a, 'x' AS b UNION ALL SELECT 2, 'y' ORDER BY a"
    table = run("sql", query, cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    assert [c.strip() for c in table.stdout.splitlines()[0].split("|")] == ["a", "b"]
    assert "(2 rows)" in table.stdout
    csv = run("sql", query, "--format", "csv", cwd=tmp_path)
    assert csv.stdout.splitlines() == ['"a","b"', '1,"x"', '2,"y"']
    json_lines = run("sql", query, "--format", "json", cwd=tmp_path)
    assert json_lines.stdout.splitlines() == ['{"a": 1, "b": "x"}', '{"a": 2, "b": "y"}']
    out = tmp_path / "r.parquet"
    parquet = run("sql", query, "--format", "parquet", "--output", str(out), cwd=tmp_path)
    assert parquet.returncode == 0, parquet.stderr
    import pyarrow.parquet as pq

    assert pq.read_table(out).to_pylist() == [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]
    failed = run("sql", "SELECT * FROM missing_table", cwd=tmp_path)
    assert failed.returncode == 1
    assert failed.stderr.startswith("error: duckdb: Catalog Error")
    assert "Traceback" not in failed.stderr


def test_demo_trains_compares_describes_and_predicts(tmp_path: Path) -> None:
    result = run("demo", "--rows", "3000", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for expected in (
        "CREATE OR REPLACE MODEL churn",
        "DESCRIBE MODEL churn",
        "predict('churn', *)",
    ):
        assert expected in out
    assert "churn_baseline |" in out
    assert "feature plan" in out
    assert "train" in result.stderr
    models = run("models", cwd=tmp_path)
    assert "churn_baseline" in models.stdout


def test_shell_reads_multi_line_statements_and_commands(tmp_path: Path) -> None:
    script = (
        ".help\n"
        "CREATE TABLE t AS SELECT range AS x, range * 2.0 AS y FROM range(200);\n"
        "CREATE MODEL m OPTIONS (task = 'regression',\n"
        "  target = 'y') AS SELECT * FROM t;\n"
        "SELECT round(predict('m', *), 1) AS p -- a comment; with a semicolon\n"
        "FROM t WHERE x = 100;\n"
        "SELECT * FROM nowhere;\n"
        ".models\n"
        ".quit\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "sqlml.cli", "shell"],
        input=script,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Statements end with ';'" in out
    assert "| regression" in out
    assert "error: duckdb: Catalog Error" in out
    lines = out.splitlines()
    p_index = next(i for i, line in enumerate(lines) if line.strip() == "p")
    assert abs(float(lines[p_index + 2]) - 200.0) < 20


def test_sql_and_demo_on_datafusion(tmp_path: Path) -> None:
    query = "SELECT 1 AS a, 'x' AS b UNION ALL SELECT 2, 'y' ORDER BY a"
    csv = run("--engine", "datafusion", "sql", query, "--format", "csv", cwd=tmp_path)
    assert csv.returncode == 0, csv.stderr
    assert csv.stdout.splitlines() == ['"a","b"', '1,"x"', '2,"y"']
    failed = run(
        "sql", "SELECT * FROM missing_table", cwd=tmp_path, env={"SQLML_ENGINE": "datafusion"}
    )
    assert failed.returncode == 1
    assert failed.stderr.startswith("error: datafusion: Error during planning: table")
    assert "Traceback" not in failed.stderr
    no_file = run("sql", "SELECT 1", "--engine", "datafusion", "--database", "x.db", cwd=tmp_path)
    assert no_file.returncode == 1
    assert "the datafusion engine has no database file" in no_file.stderr
    demo = run("demo", "--engine", "datafusion", "--rows", "3000", cwd=tmp_path)
    assert demo.returncode == 0, demo.stderr
    assert "sqlml demo on datafusion" in demo.stdout
    assert "churn_baseline |" in demo.stdout
    scored = run(
        "--engine",
        "datafusion",
        "sql",
        "SELECT predict('churn', plan, tenure_months) AS p FROM (SELECT 'basic' AS plan, "
        "3 AS tenure_months, 1 AS junk)",
        cwd=tmp_path,
    )
    assert scored.returncode == 1
    assert "needs feature column" in scored.stderr
