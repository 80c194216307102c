"""``sqlml shell``: an interactive SQL prompt with history, multi-line statements, tab
completion and dot commands, where Ctrl-C cancels the running statement (or drops the one
being typed) and Ctrl-D leaves."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import IO, TYPE_CHECKING, TypeVar

from sqlglot.errors import TokenError

from sqlml._table import format_table
from sqlml.errors import SqlmlError, StatementCancelled
from sqlml.output import FORMATS, write_result
from sqlml.sql.dialect import Sqlml

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    import pyarrow as pa

    from sqlml.session import Session

T = TypeVar("T")

SHELL_FORMATS = tuple(f for f in FORMATS if f != "parquet")
"""The formats ``.format`` takes: the text ones (Parquet is binary: see ``sqlml sql``)."""

HELP = f"""\
Statements end with ';' and may span lines. sqlml adds to the engine's SQL:
  CREATE [OR REPLACE] MODEL m OPTIONS (target = 'y', ...) AS SELECT ...;
  SELECT predict('m', *), predict_proba('m', *) FROM t;   -- also 'm@3', 'm@production'
  SHOW MODELS;  DESCRIBE MODEL m;  DROP MODEL m [VERSION n];
  DEPLOY MODEL m VERSION n [AS alias];
  SELECT * FROM evaluate('m', 'SELECT * FROM t');  SELECT * FROM feature_importance('m');
Ctrl-C cancels the running statement, or drops the one being typed; Tab completes
model and table names and keywords.
Commands:
  .help            this text
  .models          the models in the catalog
  .tables          the engine's tables and views
  .format [FMT]    how results are written: {", ".join(SHELL_FORMATS)} (alone: the current one)
  .output [FILE]   write results to FILE (alone: back to the terminal)
  .timer on|off    print each statement's elapsed time
  .quit            leave (also Ctrl-D)"""

HISTORY = Path.home() / ".sqlml_history"

COMMANDS = (".exit", ".format", ".help", ".models", ".output", ".quit", ".tables", ".timer")

KEYWORDS = (
    # sqlml's statements, options and functions
    "CREATE", "REPLACE", "MODEL", "MODELS", "OPTIONS", "SHOW", "DESCRIBE", "DEPLOY", "DROP",
    "VERSION", "predict", "predict_proba", "evaluate", "feature_importance",
    "task", "algorithm", "target", "exclude", "test_size", "seed", "num_iterations",
    "classification", "regression", "lightgbm", "linear", "logistic", "random_forest",
    # common SQL
    "SELECT", "FROM", "WHERE", "GROUP", "BY", "ORDER", "HAVING", "LIMIT", "OFFSET", "JOIN",
    "LEFT", "RIGHT", "INNER", "OUTER", "FULL", "CROSS", "ON", "USING", "AS", "AND", "OR",
    "NOT", "NULL", "IS", "IN", "BETWEEN", "LIKE", "CASE", "WHEN", "THEN", "ELSE", "END",
    "DISTINCT", "UNION", "ALL", "EXCEPT", "INTERSECT", "WITH", "INSERT", "INTO", "VALUES",
    "UPDATE", "SET", "DELETE", "TABLE", "VIEW", "IF", "EXISTS", "EXPLAIN", "ASC", "DESC",
    "COUNT", "SUM", "AVG", "MIN", "MAX", "CAST", "TRUE", "FALSE",
)  # fmt: skip

SYSTEM_SCHEMAS = frozenset({"information_schema", "pg_catalog"})
"""Schemas of the engine's own views, left out of ``.tables`` and completion."""


def statement_complete(buffer: str) -> bool:
    """Whether ``buffer`` ends a statement: its last token is ``;`` (not one in a string
    or a comment), as sqlglot's tokenizer sees it."""
    try:
        tokens = Sqlml().tokenize(buffer)
    except TokenError:
        return False  # e.g. an unterminated string: keep reading
    return bool(tokens) and tokens[-1].text == ";"


@dataclass
class _Settings:
    """What the dot commands set: the result format, where results go, the timer."""

    format: str = "table"
    output: IO[str] | None = None
    timer: bool = False

    def redirect(self, name: str | None) -> None:
        """Send results to the file ``name`` (truncated), or back to stdout for None."""
        if self.output is not None:
            self.output.close()
        self.output = None
        if name is not None:
            self.output = open(name, "w", encoding="utf-8")  # noqa: SIM115 (kept open)


def run_shell(session: Session) -> int:
    """Read statements until end of input; print each result or error.

    Ctrl-C while a statement runs interrupts it (the session then takes statements again);
    Ctrl-C while typing drops the statement typed so far.
    """
    interactive = sys.stdin.isatty()
    readline = None
    if interactive:
        try:
            import readline as _readline

            readline = _readline
            if HISTORY.exists():
                readline.read_history_file(HISTORY)
            _install_completion(readline, session)
        except (ImportError, OSError):
            readline = None
        print(
            f"sqlml shell on {session.engine.name}, catalog {session.catalog.uri}; .help for help"
        )
    settings = _Settings()
    try:
        with _interrupts_wake_main_thread():
            buffer = _loop(session, settings, interactive)
            if buffer.strip():
                _execute(session, buffer, settings)
    finally:
        settings.redirect(None)
        if readline is not None:
            with contextlib.suppress(OSError):
                readline.write_history_file(HISTORY)
    return 0


def _loop(session: Session, settings: _Settings, interactive: bool) -> str:
    """Read and run statements until end of input or ``.quit``; return what was typed
    of an unfinished statement."""
    buffer = ""
    while True:
        prompt = "sqlml> " if not buffer else "  ...> "
        try:
            line = input(prompt) if interactive else _read_line()
        except EOFError:
            return buffer
        except KeyboardInterrupt:
            print()  # drop what was typed, show a fresh prompt
            buffer = ""
            continue
        if not buffer and not line.strip():
            continue  # an empty line starts nothing
        if not buffer and line.strip().startswith("."):
            if _command(session, line.strip(), settings):
                return ""
            continue
        buffer += line + "\n"
        if not statement_complete(buffer):
            continue
        statement, buffer = buffer, ""
        _execute(session, statement, settings)


@contextlib.contextmanager
def _interrupts_wake_main_thread() -> Iterator[None]:
    """Make Ctrl-C wake the main thread, whichever thread the system hands SIGINT to.

    The system may give SIGINT to any thread that does not block it (the engine's,
    Arrow's); Python then only notes it for the main thread, which, waiting in readline
    for a key, would not act on it before the next key (nor when SIGINT comes between two
    of readline's waits). A watcher thread reads the signal from Python's wakeup file
    descriptor and nudges the main thread with SIGUSR1, whose no-op handler wakes it to
    run SIGINT's.
    """
    if not hasattr(signal, "pthread_kill") or threading.current_thread() is not (
        threading.main_thread()
    ):
        yield
        return
    read, write = os.pipe()
    os.set_blocking(write, False)
    previous_fd = signal.set_wakeup_fd(write, warn_on_full_buffer=False)
    previous_usr1 = signal.signal(signal.SIGUSR1, lambda signum, frame: None)
    main = threading.main_thread().ident
    assert main is not None

    def watch() -> None:
        with open(read, "rb", buffering=0) as pipe:
            while data := pipe.read(64):  # the numbers of the signals caught, a byte each
                if signal.SIGINT in data:
                    # Readline looks at signals only when its wait for a key is
                    # interrupted: nudge again in case the first nudge came between waits.
                    for pause in (0.0, 0.05, 0.2):
                        time.sleep(pause)
                        signal.pthread_kill(main, signal.SIGUSR1)

    watcher = threading.Thread(target=watch, name="sqlml-shell-signals", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        signal.set_wakeup_fd(previous_fd)
        signal.signal(signal.SIGUSR1, previous_usr1)
        os.close(write)  # the watcher reads the end of the pipe and stops
        watcher.join()


def _read_line() -> str:
    line = sys.stdin.readline()
    if not line:
        raise EOFError
    return line.rstrip("\n")


def _execute(session: Session, statement: str, settings: _Settings) -> None:
    """Run one statement and write its result, its error, or that it was cancelled."""
    started = time.monotonic()
    try:
        result = _cancellable(session, lambda: session.sql(statement))
    except StatementCancelled:
        print("Cancelled")
        return
    except SqlmlError as exc:
        print(f"error: {exc}")
        return
    finally:
        if settings.timer:
            print(f"Time: {time.monotonic() - started:.3f} s")
    _write(result, settings)


def _write(result: pa.Table, settings: _Settings) -> None:
    """Write a result in the chosen format, to the ``.output`` file or stdout."""
    target = settings.output if settings.output is not None else sys.stdout
    with contextlib.redirect_stdout(target):
        write_result(result, settings.format)
    target.flush()


def _cancellable(session: Session, run: Callable[[], T]) -> T:
    """``run()`` in a worker thread while this, the main thread, waits with Ctrl-C
    (SIGINT) handled: it interrupts the session's statement instead of leaving the shell.
    The session takes statements again once ``run`` has ended.

    Raises:
        StatementCancelled: Ctrl-C stopped the statement.
    """
    if threading.current_thread() is not threading.main_thread():
        return run()  # only the main thread receives signals
    results: list[T] = []
    errors: list[BaseException] = []
    done = threading.Event()
    interrupted = threading.Event()

    def work() -> None:
        try:
            results.append(run())
        except BaseException as exc:  # handed to the main thread, raised there
            errors.append(exc)
        finally:
            done.set()

    def cancel(signum: int, frame: object) -> None:
        if not interrupted.is_set():
            interrupted.set()
            session.interrupt("cancelled with Ctrl-C")

    # A handler, not KeyboardInterrupt: an exception thrown into Thread.join can leave the
    # thread looking finished while it still runs.
    previous = signal.signal(signal.SIGINT, cancel)
    try:
        threading.Thread(target=work, name="sqlml-shell-statement", daemon=True).start()
        while not done.wait(0.1):
            pass  # wake up: a signal another thread received is handled here, meanwhile
    finally:
        signal.signal(signal.SIGINT, previous)
        if interrupted.is_set():
            session.resume()  # the next statement runs normally
    if errors:
        raise errors[0]
    return results[0]


def _command(session: Session, command: str, settings: _Settings) -> bool:
    """Run a dot command; True means quit."""
    name, _, argument = command.partition(" ")
    argument = argument.strip()
    if name in (".quit", ".exit"):
        return True
    if name == ".help":
        print(HELP)
    elif name == ".models":
        _execute(session, "SHOW MODELS", settings)
    elif name == ".tables":
        try:
            relations = _cancellable(session, session.relations)
        except SqlmlError as exc:
            print(f"error: {exc}")
        else:
            rows = sorted(
                [schema, table, kind]
                for _, schema, table, kind in relations
                if schema not in SYSTEM_SCHEMAS
            )
            print(format_table(["schema", "name", "type"], rows) if rows else "no tables")
    elif name == ".format":
        if not argument:
            print(settings.format)
        elif argument.lower() in SHELL_FORMATS:
            settings.format = argument.lower()
        else:
            print(f"unknown format {argument!r}; choose one of {', '.join(SHELL_FORMATS)}")
    elif name == ".output":
        try:
            settings.redirect(argument or None)
        except OSError as exc:
            print(f"error: cannot write {argument!r}: {exc.strerror}; results go to stdout")
    elif name == ".timer":
        if argument.lower() in ("on", "off"):
            settings.timer = argument.lower() == "on"
        elif not argument:
            print("on" if settings.timer else "off")
        else:
            print(f"unknown setting {argument!r} for .timer; use .timer on or .timer off")
    else:
        print(f"unknown command {command}; .help lists the commands")
    return False


# --- tab completion -------------------------------------------------------------------------


def completions(session: Session, text: str, line_start: bool, quoted: bool = False) -> list[str]:
    """What Tab offers for the word ``text``: dot commands at the start of a line, else
    model names (from the catalog), table names (from the engine) and keywords, a keyword
    in the case the word is typed in. After a quote (``predict('ch``) only names (readline
    closes the quote)."""
    if line_start and text.startswith("."):
        return [c for c in COMMANDS if c.startswith(text)]
    names: list[str] = []
    with contextlib.suppress(SqlmlError):
        names += sorted(m.name for m in session.catalog.list_models())
    with contextlib.suppress(SqlmlError):
        names += sorted(
            {name for _, schema, name, _ in session.relations() if schema not in SYSTEM_SCHEMAS}
        )
    lower = text.lower()
    found = [n for n in names if n.lower().startswith(lower)]
    if quoted:
        return list(dict.fromkeys(found))
    upper = text[:1].isupper()
    for keyword in KEYWORDS:
        if keyword.lower().startswith(lower):
            word = keyword if keyword.islower() else keyword.upper() if upper else keyword.lower()
            found.append(word)
    return list(dict.fromkeys(found))


def _install_completion(rl: ModuleType, session: Session) -> None:
    """Complete with :func:`completions` on Tab (GNU readline or libedit)."""
    matches: list[str] = []

    def complete(text: str, state: int) -> str | None:
        if state == 0:
            before = rl.get_line_buffer()[: rl.get_begidx()]
            matches[:] = completions(session, text, not before.strip(), quoted=before.endswith("'"))
        return matches[state] if state < len(matches) else None

    rl.set_completer(complete)
    if "libedit" in (rl.__doc__ or ""):
        rl.parse_and_bind("bind ^I rl_complete")
    else:
        rl.parse_and_bind("tab: complete")
