"""Running real dbt in a subprocess, offline and without usage statistics."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path


def run_dbt(
    project: Path,
    args: Sequence[str],
    env: Mapping[str, str],
    *,
    drop: tuple[str, ...] = ("SQLML_", "DBT_"),
) -> subprocess.CompletedProcess[str]:
    """Run ``dbt ARGS`` in ``project`` with its own profiles.yml.

    Args:
        project: the dbt project directory (its profiles.yml is used).
        args: dbt's arguments, e.g. ``["build"]``.
        env: variables to set for the run.
        drop: prefixes of this process's variables the run does not inherit.
    """
    environment = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    environment |= dict(env) | {
        "DBT_PROFILES_DIR": str(project),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_VERSION_CHECK": "false",
        "DBT_USE_COLORS": "false",
    }
    return subprocess.run(
        [sys.executable, "-m", "dbt.cli.main", *args, "--project-dir", str(project)],
        cwd=project,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )


def succeeded(result: subprocess.CompletedProcess[str]) -> bool:
    """Whether a process succeeded; the output is printed so a failure shows it."""
    print(result.stdout, result.stderr, sep="\n")
    return result.returncode == 0
