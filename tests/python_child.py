"""A fresh Python process for the tests that need one (what a command line imports, what a
limit does to a process): ``run_python(code, *args)`` runs ``python -c code args`` from the
repository root, with it on ``PYTHONPATH``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_python(
    code: str, *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """The finished ``python -c code args`` (its output captured as text); ``env`` adds to this
    process's environment."""
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
