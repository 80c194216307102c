"""``sqlml shell``: an interactive SQL prompt with history and multi-line statements."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from sqlglot.errors import TokenError

from sqlml._table import format_arrow
from sqlml.errors import SqlmlError
from sqlml.sql.dialect import Sqlml

if TYPE_CHECKING:
    from sqlml.session import Session

HELP = """\
Statements end with ';' and may span lines. sqlml adds to the engine's SQL:
  CREATE [OR REPLACE] MODEL m OPTIONS (target = 'y', ...) AS SELECT ...;
  SELECT predict('m', *), predict_proba('m', *) FROM t;   -- also 'm@3', 'm@production'
  SHOW MODELS;  DESCRIBE MODEL m;  DROP MODEL m [VERSION n];
  DEPLOY MODEL m VERSION n [AS alias];
  SELECT * FROM evaluate('m', 'SELECT * FROM t');  SELECT * FROM feature_importance('m');
Commands:
  .help    this text
  .models  the models in the catalog
  .quit    leave (also Ctrl-D)"""

HISTORY = Path.home() / ".sqlml_history"


def statement_complete(buffer: str) -> bool:
    """Whether ``buffer`` ends a statement: its last token is ``;`` (not one in a string
    or a comment), as sqlglot's tokenizer sees it."""
    try:
        tokens = Sqlml().tokenize(buffer)
    except TokenError:
        return False  # e.g. an unterminated string: keep reading
    return bool(tokens) and tokens[-1].text == ";"


def run_shell(session: Session) -> int:
    """Read statements until end of input; print each result or error."""
    interactive = sys.stdin.isatty()
    readline = None
    if interactive:
        try:
            import readline as _readline

            readline = _readline
            if HISTORY.exists():
                readline.read_history_file(HISTORY)
        except (ImportError, OSError):
            readline = None
        print(
            f"sqlml shell on {session.engine.name}, catalog {session.catalog.uri}; .help for help"
        )
    buffer = ""
    try:
        while True:
            prompt = "sqlml> " if not buffer else "  ...> "
            try:
                line = input(prompt) if interactive else _read_line()
            except EOFError:
                break
            if not buffer and line.strip().startswith("."):
                if _command(session, line.strip()):
                    break
                continue
            buffer += line + "\n"
            if not statement_complete(buffer):
                continue
            statement, buffer = buffer, ""
            try:
                print(format_arrow(session.sql(statement)))
            except SqlmlError as exc:
                print(f"error: {exc}")
    finally:
        if readline is not None:
            with contextlib.suppress(OSError):
                readline.write_history_file(HISTORY)
    if buffer.strip():
        try:
            print(format_arrow(session.sql(buffer)))
        except SqlmlError as exc:
            print(f"error: {exc}")
    return 0


def _read_line() -> str:
    line = sys.stdin.readline()
    if not line:
        raise EOFError
    return line.rstrip("\n")


def _command(session: Session, command: str) -> bool:
    """Run a dot command; True means quit."""
    if command in (".quit", ".exit"):
        return True
    if command == ".help":
        print(HELP)
    elif command == ".models":
        print(format_arrow(session.sql("SHOW MODELS")))
    else:
        print(f"unknown command {command}; .help lists the commands")
    return False
