"""``sqlml shell`` on a real pseudo-terminal: Ctrl-C, dot commands and tab completion."""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import re
import select
import signal
import struct
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

DEADLINE = 60.0
"""Seconds to wait for output a step expects: generous, for a busy machine."""

PROMPT = "sqlml> "


class Terminal:
    """``sqlml shell`` run on a pseudo-terminal, read until expected output appears."""

    def __init__(self, cwd: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SQLML_")}
        env.update(
            HOME=str(cwd),  # the shell's history file goes here
            TERM="dumb",
            SQLML_CATALOG=f"sqlite:///{cwd / 'catalog.db'}",
            SQLML_DATABASE=str(cwd / "data.duckdb"),
        )
        pid, fd = pty.fork()
        if pid == 0:  # the child: the pty is its controlling terminal
            os.chdir(cwd)
            os.execve(sys.executable, [sys.executable, "-m", "sqlml.cli", "shell"], env)
        self.pid, self.fd = pid, fd
        # Wide enough that readline never scrolls a typed line sideways.
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 500, 0, 0))
        self.output = ""
        self.seen = 0
        """Where :meth:`expect` looks from: output before it belongs to earlier steps."""

    def send(self, text: str) -> None:
        """Type ``text``; :meth:`expect` then looks at the output that follows."""
        while select.select([self.fd], [], [], 0)[0] and self._read():
            pass  # output already there belongs to earlier steps
        self.seen = len(self.output)
        os.write(self.fd, text.encode())

    def _read(self) -> bool:
        try:
            chunk = os.read(self.fd, 65536)
        except OSError:  # the shell has gone: the pty is closed
            return False
        self.output += chunk.decode(errors="replace").replace("\r\n", "\n")
        return bool(chunk)

    def expect(self, pattern: str, deadline: float = DEADLINE) -> re.Match[str]:
        """Read until ``pattern`` appears in the output since the last :meth:`send`."""
        end = time.monotonic() + deadline
        while True:
            found = re.compile(pattern).search(self.output, self.seen)
            if found:
                self.seen = found.end()
                return found
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {pattern!r} in {self.output[-2000:]!r}")
            if select.select([self.fd], [], [], left)[0] and not self._read():
                raise AssertionError(f"shell ended before {pattern!r}: {self.output!r}")

    def run(self, statement: str) -> str:
        """Type a line and return the output after its echo, up to the next prompt."""
        self.send(statement + "\r")
        start = self.expect(re.escape(statement.rstrip("\t")) + "\n").end()
        found = self.expect(re.escape(PROMPT))
        return self.output[start : found.start()]

    def close(self) -> None:
        deadline = time.monotonic() + DEADLINE
        with contextlib.suppress(OSError):  # the shell may have gone
            os.write(self.fd, b"\x04")  # Ctrl-D leaves
        while time.monotonic() < deadline:
            done, _ = os.waitpid(self.pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.05)
        else:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        os.close(self.fd)


@pytest.fixture
def shell(tmp_path: Path) -> Iterator[Terminal]:
    terminal = Terminal(tmp_path)
    terminal.expect(re.escape(PROMPT))
    yield terminal
    terminal.close()


def test_ctrl_c_drops_the_statement_being_typed(shell: Terminal) -> None:
    shell.send("SELECT 1 AS\r")
    shell.expect(r"\.\.\.> ")  # a continuation prompt: the statement is not complete
    shell.send("\x03")
    shell.expect(re.escape(PROMPT))
    # Had the first line been kept, this would be `SELECT 1 AS SELECT 2 ...`: an error.
    out = shell.run("SELECT 2 AS two;")
    assert "error" not in out
    assert re.search(r"^two\n---\n *2$", out, re.MULTILINE), out
    shell.send("SELECT 'never run")  # on the first line too
    shell.expect("never run")
    shell.send("\x03")
    shell.expect(re.escape(PROMPT))
    assert re.search(r"^ *3$", shell.run("SELECT 3 AS three;"), re.MULTILINE)


def test_ctrl_c_cancels_a_training_and_the_session_goes_on(shell: Terminal) -> None:
    out = shell.run(
        "CREATE TABLE t AS SELECT range AS x, range % 7 AS z, range * 2.0 + random() AS y "
        "FROM range(20000);"
    )
    assert "error" not in out
    rounds = 100
    started = time.monotonic()
    out = shell.run(
        "CREATE MODEL quick OPTIONS (task = 'regression', target = 'y', "
        f"num_iterations = {rounds}) AS SELECT * FROM t;"
    )
    baseline = time.monotonic() - started
    assert re.search(r"^quick +\|", out, re.MULTILINE), out

    # 100 times the rounds: uncancelled, this takes far longer than the baseline (whose time
    # also includes reading the table and scoring the holdout, done once either way).
    started = time.monotonic()
    shell.send(
        "CREATE MODEL slow OPTIONS (task = 'regression', target = 'y', "
        f"num_iterations = {rounds * 100}) AS SELECT * FROM t;\r"
    )
    # Preprocessing done, LightGBM starts. (Its progress bar shows only once a stage ends.)
    shell.expect(r"preprocess +\[#+\] 1/1\n")
    shell.send("\x03")
    shell.expect("Cancelled")
    shell.expect(re.escape(PROMPT))
    cancelled_after = time.monotonic() - started
    assert cancelled_after < 10 * baseline, (cancelled_after, baseline)

    models = shell.run(".models")
    assert re.search(r"^quick +\|", models, re.MULTILINE), models
    assert "slow" not in models
    out = shell.run("SELECT count(*) AS n FROM t;")
    assert re.search(r"^ *20000$", out, re.MULTILINE), out
    out = shell.run("SELECT round(predict('quick', *)) AS p FROM t WHERE x = 10;")
    assert "error" not in out
    assert re.search(r"^ *p\n-+\n *\d+", out, re.MULTILINE), out


def test_dot_commands(shell: Terminal, tmp_path: Path) -> None:
    shell.run("CREATE TABLE sales AS SELECT 1 AS a, 'x' AS b;")
    tables = shell.run(".tables")
    assert re.search(r"^main +\| sales +\| BASE TABLE$", tables, re.MULTILINE), tables

    assert shell.run(".format").strip().endswith("table")
    shell.run(".format csv")
    assert shell.run(".format").strip().endswith("csv")
    out = shell.run("SELECT * FROM sales;")
    assert '"a","b"\n1,"x"' in out, out
    assert "unknown format 'xml'" in shell.run(".format xml")

    shell.run(".format json")
    shell.run(".output result.json")
    out = shell.run("SELECT a + 1 AS a2 FROM sales;")
    assert '{"a2"' not in out
    shell.run(".output")
    assert (tmp_path / "result.json").read_text() == '{"a2": 2}\n'
    assert '{"a": 1, "b": "x"}' in shell.run("SELECT * FROM sales;")  # stdout again

    shell.run(".timer on")
    assert re.search(r"^Time: \d+\.\d{3} s$", shell.run("SELECT 1 AS one;"), re.MULTILINE)
    shell.run(".timer off")
    assert "Time:" not in shell.run("SELECT 1 AS one;")
    assert ".timer on|off" in shell.run(".help")


def test_tab_completes_table_and_model_names(shell: Terminal) -> None:
    shell.run("CREATE TABLE sales_history AS SELECT range AS x, range * 2.0 AS y FROM range(200);")
    shell.run(
        "CREATE MODEL revenue_model OPTIONS (task = 'regression', target = 'y') "
        "AS SELECT * FROM sales_history;"
    )
    shell.send("SELECT count(*) AS n FROM sales_h\t")
    shell.expect("sales_history")  # readline typed the rest of the name
    out = shell.run(";")
    assert re.search(r"^ *200$", out, re.MULTILINE), out

    shell.send("SELECT round(predict('revenue_m\t")
    shell.expect("revenue_model'")  # the name, and the quote closed
    out = shell.run(", *)) AS p FROM sales_history WHERE x = 100;")
    assert "error" not in out
    assert re.search(r"^ *p\n-+\n *\d+", out, re.MULTILINE), out

    shell.send("descr\t")
    shell.expect("describe")  # a keyword, in the case it was typed in
    shell.send(" MODEL revenue_m\t")
    shell.expect("revenue_model")
    out = shell.run(";")
    assert re.search(r"revenue_model", out), out
    assert "error" not in out
