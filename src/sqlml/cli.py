"""The ``sqlml`` command.

Global options (``--catalog``, ``--engine``, ``--database``, ``--postgres``, ``--debug``) are
accepted before or after the subcommand: ``sqlml --catalog X models`` and ``sqlml models
--catalog X`` are the same.

An error is printed as one ``error: <message>`` line on stderr (exit status 1), never with
a traceback unless ``--debug`` is given; an error that is not a :class:`SqlmlError` is a
bug, and a second line says so. No message shows a password: catalog and PostgreSQL URIs
are printed with it replaced by ``***``.

When the reader of the output goes away (``sqlml sql ... | head``), the command stops
quietly with exit status 141, as Unix tools do.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from sqlml import __version__
from sqlml._redact import scrub
from sqlml._table import format_arrow, format_table
from sqlml.catalog import open_catalog
from sqlml.config import ENGINES, Settings, load_settings
from sqlml.errors import ConfigError, SqlmlError, SqlSyntaxError
from sqlml.output import DISPLAY_FORMATS, EXTENSIONS, FORMATS

if TYPE_CHECKING:
    from sqlml.session import Session


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
    group.add_argument(
        "--postgres",
        metavar="URI",
        default=default,
        help="for sql and shell: attach this PostgreSQL database's public tables as "
        "pg.<table> (env SQLML_POSTGRES)",
    )
    group.add_argument(
        "--debug",
        action="store_true",
        default=default,
        help="on an error, print its traceback too",
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
    migrate.add_argument(
        "--lock-timeout",
        type=float,
        metavar="SECONDS",
        help="give up after waiting this long while another migration runner holds the "
        "catalog's migration lock (default: wait as long as it takes)",
    )
    migrate.set_defaults(run=cmd_migrate)

    models = commands.add_parser("models", parents=common, help="list models and their versions")
    models.set_defaults(run=cmd_models)

    sql = commands.add_parser("sql", parents=common, help="run SQL and print the result")
    sql.add_argument(
        "query",
        help="one or more statements separated by ';'; each one's result is printed (a "
        "table, or a status line such as INSERT 3 for a statement without rows)",
    )
    sql.add_argument(
        "--format",
        choices=FORMATS,
        help="output format (default: the one --output's extension names, "
        f"{', '.join(sorted(EXTENSIONS))}; else table); csv, tsv, json and parquet hold "
        "the last statement's result",
    )
    sql.add_argument("--output", metavar="FILE", help="write the result to FILE")
    sql.add_argument(
        "--timer", action="store_true", help="print each statement's elapsed time on stderr"
    )
    sql.set_defaults(run=cmd_sql)

    compile_ = commands.add_parser(
        "compile",
        parents=common,
        help="print a model as one SQL expression that an engine evaluates natively",
    )
    compile_.add_argument("model", metavar="MODEL", help="name, name@version or name@alias")
    compile_.add_argument(
        "--dialect",
        default="duckdb",
        metavar="D",
        help="SQL dialect: duckdb (default), postgres, datafusion or another sqlglot dialect",
    )
    compile_.add_argument(
        "--proba",
        action="store_true",
        help="the class probabilities: the positive class's for a binary model, a select "
        "list of one per class for a multiclass model",
    )
    compile_.add_argument(
        "--save",
        action="store_true",
        help="also store it in the catalog (table model_compiled) under the model's "
        "version, the dialect and predict/proba, for SQL-only tools such as dbt macros",
    )
    compile_.set_defaults(run=cmd_compile)

    shell = commands.add_parser("shell", parents=common, help="interactive SQL shell")
    shell.set_defaults(run=cmd_shell)

    demo = commands.add_parser("demo", parents=common, help="run the quickstart")
    demo.add_argument(
        "--rows", type=int, default=100_000, help="customers to generate (default 100000)"
    )
    demo.set_defaults(run=cmd_demo)

    serve = commands.add_parser(
        "serve", parents=common, help="serve SQL over Arrow Flight SQL (for BI tools)"
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=31337, help="port (default 31337)")
    serve.add_argument("--init", metavar="FILE", help="SQL file run in each new client session")
    serve.add_argument(
        "--auth",
        metavar="USER:PASSWORD[:ROLE]",
        action="append",
        default=[],
        help="accept this user, role reader, trainer (the default) or admin (repeatable; "
        "env SQLML_AUTH as user:pass,user:pass); without users only a loopback host is "
        "allowed",
    )
    serve.add_argument(
        "--users",
        metavar="FILE",
        help="a TOML file of users with Argon2 password hashes and roles (see sqlml hash-password)",
    )
    serve.add_argument(
        "--metrics-port",
        type=int,
        metavar="N",
        help="serve Prometheus metrics on http://127.0.0.1:N/metrics",
    )
    serve.add_argument("--tls-cert", metavar="FILE", help="PEM certificate: serve grpc+tls")
    serve.add_argument("--tls-key", metavar="FILE", help="PEM private key of --tls-cert")
    serve.add_argument(
        "--ticket-ttl",
        type=float,
        metavar="SECONDS",
        help="seconds a query result waits to be fetched (default 300)",
    )
    serve.add_argument(
        "--prepared-ttl",
        type=float,
        metavar="SECONDS",
        help="seconds an unused prepared statement is kept (default 3600)",
    )
    serve.add_argument(
        "--session-ttl",
        type=float,
        metavar="SECONDS",
        help="seconds an idle client session (and its token) is kept (default 900)",
    )
    serve.add_argument(
        "--token-ttl",
        type=float,
        metavar="SECONDS",
        help="seconds a login's bearer token is valid (default 43200, 12 hours)",
    )
    serve.add_argument(
        "--statement-timeout",
        type=float,
        metavar="SECONDS",
        help="seconds a statement may run, until its last row is sent, before it is "
        "stopped (default 1800; 0 for no limit)",
    )
    serve.add_argument(
        "--max-sessions",
        type=int,
        metavar="N",
        help="client sessions open at once, in all (default 64)",
    )
    serve.add_argument(
        "--max-sessions-per-user",
        type=int,
        metavar="N",
        help="client sessions open at once for one user (default 8)",
    )
    serve.add_argument(
        "--catalog-pool",
        type=int,
        metavar="N",
        help="PostgreSQL connections the sessions' shared catalog holds at most (default 4)",
    )
    serve.add_argument(
        "--data-dir",
        action="append",
        default=[],
        metavar="DIR",
        help="a directory whose files clients' SQL may read (repeatable); by default SQL "
        "reaches no file, database or network address of the host",
    )
    serve.add_argument(
        "--writable-dir",
        action="append",
        default=[],
        metavar="DIR",
        help="a directory clients' SQL may also write files to (repeatable)",
    )
    serve.set_defaults(run=cmd_serve)

    hashing = commands.add_parser(
        "hash-password",
        help="print an Argon2id hash of a password (read from stdin) for a users file",
    )
    hashing.set_defaults(run=cmd_hash_password)
    return parser


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    with open_catalog(settings.catalog, migrate=False, check_schema=False) as catalog:
        if not args.status:

            def waiting() -> None:
                limit = "" if args.lock_timeout is None else f" (at most {args.lock_timeout:g} s)"
                print(
                    f"waiting for another migration runner to release the migration lock of "
                    f"catalog {catalog.uri}{limit}...",
                    file=sys.stderr,
                    flush=True,
                )

            applied = catalog.migrate(lock_timeout=args.lock_timeout, on_wait=waiting)
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
    from sqlml.session import models_table

    with open_catalog(settings.catalog) as catalog:
        table = models_table(catalog)
    if table.num_rows == 0:
        print(f"no models in catalog {catalog.uri}")
        return 0
    print(format_arrow(table))
    return 0


def cmd_sql(args: argparse.Namespace, settings: Settings) -> int:
    """Run each statement; with a display format (table, markdown) print each one's result
    as it ends, with another write the last one's."""
    from sqlml.output import command_tag, format_for, render, status_line, write_result

    fmt = args.format or format_for(args.output)
    display = fmt in DISPLAY_FORMATS
    with contextlib.ExitStack() as stack:
        session = stack.enter_context(_session(settings))
        out = (
            stack.enter_context(open(args.output, "w", encoding="utf-8"))
            if display and args.output
            else sys.stdout
        )
        texts = session.script(args.query).texts
        result = None
        for i, text in enumerate(texts):
            started = time.perf_counter()
            result = session.sql(text)
            if args.timer:
                elapsed = (time.perf_counter() - started) * 1000
                print(f"Time: {elapsed:.3f} ms", file=sys.stderr, flush=True)
            if display:
                status = status_line(command_tag(text), result)
                out.write(("\n" if i else "") + (status + "\n" if status else render(result, fmt)))
                out.flush()
    if not display and result is not None:
        write_result(result, fmt, args.output)
    return 0


def cmd_shell(args: argparse.Namespace, settings: Settings) -> int:
    from sqlml.shell import run_shell

    with _session(settings) as session:
        return run_shell(session)


def _session(settings: Settings) -> Session:
    from sqlml.output import progress_printer, show_notices
    from sqlml.session import connect

    session = connect(settings.engine, settings.catalog, settings.database)
    session.progress = progress_printer(sys.stderr)
    show_notices()
    if settings.postgres:
        try:
            session.attach_postgres(settings.postgres)
        except BaseException:
            session.close()
            raise
    return session


def cmd_compile(args: argparse.Namespace, settings: Settings) -> int:
    from sqlml.session import connect
    from sqlml.sql.compile import get_dialect

    get_dialect(args.dialect)  # an unknown dialect fails before the catalog is opened
    # An in-memory DuckDB session: compiling needs the catalog, not the engine's data.
    with connect("duckdb", settings.catalog, ":memory:") as session:
        version = session.catalog.resolve(args.model)
        text = session.compile_model(version.ref, args.dialect, proba=args.proba, save=args.save)
    print(text)
    if args.save:
        kind = "proba" if args.proba else "predict"
        print(
            f"saved the {kind} expression of model {version.model} version "
            f"{version.version} for dialect {args.dialect} in catalog {session.catalog.uri}",
            file=sys.stderr,
        )
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from sqlml.demo import run_demo

    return run_demo(settings, rows=args.rows)


def cmd_hash_password(args: argparse.Namespace, settings: Settings) -> int:
    from sqlml.server.users import hash_password

    if sys.stdin.isatty():
        import getpass

        password = getpass.getpass("password: ")
    else:
        password = sys.stdin.readline().rstrip("\n")
    if not password:
        raise ConfigError("hash-password", "the password is empty")
    print(hash_password(password))
    return 0


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from sqlml.server import serve

    return serve(
        settings,
        host=args.host,
        port=args.port,
        init_file=args.init,
        auth=args.auth,
        users_file=args.users,
        metrics_port=args.metrics_port,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        ticket_ttl=args.ticket_ttl,
        prepared_ttl=args.prepared_ttl,
        session_ttl=args.session_ttl,
        token_ttl=args.token_ttl,
        max_sessions=args.max_sessions,
        max_sessions_per_user=args.max_sessions_per_user,
        statement_timeout=args.statement_timeout,
        catalog_pool=args.catalog_pool,
        data_dirs=args.data_dir,
        writable_dirs=args.writable_dir,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``sqlml`` command; returns its exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    run: Callable[[argparse.Namespace, Settings], int] | None = getattr(args, "run", None)
    if run is None:
        parser.print_help()
        return 2
    # The URIs whose passwords no message may show (a driver's error can quote them).
    uris = [uri for uri in (args.catalog, args.postgres) if uri]
    debug = bool(getattr(args, "debug", False))
    try:
        settings = load_settings(
            {
                "catalog": args.catalog,
                "engine": args.engine,
                "database": args.database,
                "postgres": args.postgres,
            }
        )
        uris += [uri for uri in (settings.catalog, settings.postgres) if uri]
        status = run(args, settings)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
        return status
    except BrokenPipeError:
        return _broken_pipe()
    except SqlmlError as exc:
        _report(exc, debug, uris=uris)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        _report(exc, debug, bug=True, uris=uris)
        return 1


def _broken_pipe() -> int:
    """The reader of stdout went away: stop quietly with the status of a process killed by
    SIGPIPE. stdout is pointed at /dev/null so that flushing it at exit cannot fail again
    (the recipe of Python's ``signal`` documentation)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 141


def _report(exc: Exception, debug: bool, bug: bool = False, uris: Sequence[str] = ()) -> None:
    """Print an error as one ``error:`` line (its traceback first with ``--debug``); an
    error that is not a :class:`SqlmlError` is a bug, and a second line says so. Neither
    shows a password of ``uris`` or of a URI in the text."""
    if debug:
        print(scrub("".join(traceback.format_exception(exc)), *uris), end="", file=sys.stderr)
    if isinstance(exc, SqlSyntaxError):  # its LINE and caret lines point at the mistake
        message = scrub(str(exc).rstrip(), *uris)
    else:
        message = scrub(" ".join(str(exc).split()) or type(exc).__name__, *uris)
    print(f"error: {message}", file=sys.stderr)
    if bug:
        print(
            f"this is a bug in sqlml ({type(exc).__module__}.{type(exc).__qualname__}); "
            "please report it" + ("" if debug else ", and rerun with --debug for the traceback"),
            file=sys.stderr,
        )


if __name__ == "__main__":
    sys.exit(main())
