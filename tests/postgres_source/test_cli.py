"""``--postgres`` / ``SQLML_POSTGRES`` / sqlml.toml attach a database as pg for sql and shell."""

from __future__ import annotations

from pathlib import Path

from sqlml.config import Settings, load_settings
from tests.test_cli import run


def test_sql_with_the_postgres_flag_trains_and_predicts(pg_uri: str, tmp_path: Path) -> None:
    count = run(
        "sql",
        "--postgres",
        pg_uri,
        "SELECT count(*) AS n FROM pg.customers",
        "--format",
        "csv",
        cwd=tmp_path,
    )
    assert count.returncode == 0, count.stderr
    assert count.stdout.splitlines() == ['"n"', "3000"]
    trained = run(
        "--postgres",
        pg_uri,
        "sql",
        "CREATE MODEL churn OPTIONS (target = 'churned', exclude = 'id') "
        "AS SELECT * FROM pg.customers",
        cwd=tmp_path,
    )
    assert trained.returncode == 0, trained.stderr
    predicted = run(
        "sql",
        "SELECT count(*) AS n FROM (SELECT predict('churn', *) AS p FROM pg.customers) "
        "WHERE p IS NOT NULL",
        "--format",
        "csv",
        env={"SQLML_POSTGRES": pg_uri},
        cwd=tmp_path,
    )
    assert predicted.returncode == 0, predicted.stderr
    assert predicted.stdout.splitlines() == ['"n"', "3000"]


def test_shell_attaches_from_sqlml_toml(pg_uri: str, tmp_path: Path) -> None:
    (tmp_path / "sqlml.toml").write_text(f'postgres = "{pg_uri}"\n')
    result = run("shell", cwd=tmp_path, stdin="SELECT max(id) AS m FROM pg.customers;\n.quit\n")
    assert result.returncode == 0, result.stderr
    assert "3000" in result.stdout


def test_errors_are_one_line_without_the_password(pg_uri: str, tmp_path: Path) -> None:
    unreachable = run(
        "sql", "SELECT 1", "--postgres", "postgresql://ada:s3cret@127.0.0.1:1/shop", cwd=tmp_path
    )
    assert unreachable.returncode == 1
    assert unreachable.stderr.startswith(
        "error: PostgreSQL source postgresql://ada:***@127.0.0.1:1/shop: cannot connect:"
    )
    assert "s3cret" not in unreachable.stderr
    assert "Traceback" not in unreachable.stderr
    missing = run("sql", "SELECT * FROM pg.nope", "--postgres", pg_uri, cwd=tmp_path)
    assert missing.returncode == 1
    assert "table pg.nope does not exist" in missing.stderr
    assert "its tables: customers" in missing.stderr


def test_postgres_setting_precedence(tmp_path: Path) -> None:
    assert load_settings({}, environ={}, cwd=tmp_path).postgres is None
    (tmp_path / "sqlml.toml").write_text('postgres = "postgresql://file/db"\n')
    assert load_settings({}, environ={}, cwd=tmp_path).postgres == "postgresql://file/db"
    env = {"SQLML_POSTGRES": "postgresql://env/db"}
    assert load_settings({}, environ=env, cwd=tmp_path).postgres == "postgresql://env/db"
    flags = {"postgres": "postgresql://flag/db"}
    assert load_settings(flags, environ=env, cwd=tmp_path) == Settings(
        postgres="postgresql://flag/db"
    )
