"""The ``sqlml`` command.

Global options (``--catalog``, ``--engine``, ``--database``) are accepted before or after
the subcommand: ``sqlml --catalog X models`` and ``sqlml models --catalog X`` are the same.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from sqlml import __version__
from sqlml._table import format_table
from sqlml.catalog import open_catalog
from sqlml.config import ENGINES, Settings, load_settings
from sqlml.errors import SqlmlError


def _global_options(suppress: bool) -> argparse.ArgumentParser:
    """The options every command takes; subcommands get them with SUPPRESS defaults, so a
    value given before the subcommand is not overwritten by the subcommand's default."""
    default = argparse.SUPPRESS if suppress else None
    parser = argparse.ArgumentParser(add_help=False)
    group = parser.add_argument_group("global options")
    group.add_argument(
        "--catalog",
        metavar="URI",
        default=default,
        help="catalog URI (env SQLML_CATALOG; default sqlite:///sqlml.db)",
    )
    group.add_argument(
        "--engine",
        metavar="NAME",
        default=default,
        help=f"query engine: {', '.join(ENGINES)} (env SQLML_ENGINE; default duckdb)",
    )
    group.add_argument(
        "--database",
        metavar="PATH",
        default=default,
        help="the engine's database file (env SQLML_DATABASE; default in memory)",
    )
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``sqlml`` command."""
    parser = argparse.ArgumentParser(
        prog="sqlml",
        description="Machine learning as SQL: train, version and call models from SQL.",
        parents=[_global_options(suppress=False)],
    )
    parser.add_argument("--version", action="version", version=f"sqlml {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    common = [_global_options(suppress=True)]

    migrate = commands.add_parser(
        "migrate", parents=common, help="apply pending catalog schema migrations"
    )
    migrate.add_argument(
        "--status", action="store_true", help="list applied and pending migrations instead"
    )
    migrate.set_defaults(run=cmd_migrate)

    models = commands.add_parser("models", parents=common, help="list models and their versions")
    models.set_defaults(run=cmd_models)

    demo = commands.add_parser("demo", parents=common, help="run the quickstart")
    demo.set_defaults(run=cmd_demo)
    return parser


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    with open_catalog(settings.catalog, migrate=False, check_schema=False) as catalog:
        if not args.status:
            applied = catalog.migrate()
            for m in applied:
                print(f"applied {m.version:04d}_{m.name}")
            if not applied:
                print(f"catalog {catalog.uri} is up to date")
            return 0
        rows = [
            [
                f"{s.version:04d}",
                s.name,
                "applied" if s.applied_at else "pending",
                s.applied_at.isoformat(timespec="seconds") if s.applied_at else "",
            ]
            for s in catalog.migration_status()
        ]
    print(format_table(["version", "name", "state", "applied_at"], rows))
    return 0


def cmd_models(args: argparse.Namespace, settings: Settings) -> int:
    with open_catalog(settings.catalog) as catalog:
        aliases: dict[str, list[str]] = {}
        for alias in catalog.list_aliases():
            aliases.setdefault(alias.model, []).append(f"{alias.alias}={alias.version}")
        rows = []
        for model in catalog.list_models():
            versions = catalog.list_versions(model.name)
            latest = versions[-1] if versions else None
            rows.append(
                [
                    model.name,
                    model.task,
                    len(versions),
                    latest.version if latest else None,
                    latest.algorithm if latest else None,
                    ", ".join(aliases.get(model.name, [])),
                    (latest.created_at if latest else model.created_at).isoformat(
                        timespec="seconds"
                    ),
                ]
            )
    if not rows:
        print(f"no models in catalog {settings.catalog}")
        return 0
    headers = ["model", "task", "versions", "latest", "algorithm", "aliases", "updated"]
    print(format_table(headers, rows))
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from sqlml.demo import run_demo

    return run_demo(settings)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``sqlml`` command; returns its exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    run: Callable[[argparse.Namespace, Settings], int] | None = getattr(args, "run", None)
    if run is None:
        parser.print_help()
        return 2
    try:
        settings = load_settings(
            {"catalog": args.catalog, "engine": args.engine, "database": args.database}
        )
        return run(args, settings)
    except SqlmlError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
