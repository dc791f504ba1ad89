"""The property suite run as a user runs it, in a child process: for the tests that check what a
whole run does (its exit status, its output, the report it writes) under a backend, an option or an
environment of their own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

from harness import report

ROOT = Path(__file__).resolve().parents[2]


def run(out: Path, select: str, *options: str, **env: str | None
        ) -> tuple[subprocess.CompletedProcess, pd.DataFrame]:
    """`pytest tests/properties -k select *options` under the `dev` profile, its report written
    to `out`; `env` adds variables to the child's environment (None removes one). Returns the
    finished process and the report."""
    child = dict(os.environ, HYPOTHESIS_PROFILE="dev")
    for name, value in env.items():
        if value is None:
            child.pop(name, None)
        else:
            child[name] = value
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs",
         str(ROOT / "tests" / "properties"), "-k", select, *options, "--harness-report", str(out)],
        cwd=ROOT, capture_output=True, text=True, env=child)
    return done, report.read(out)
