"""Ctrl-C during a benchmark run keeps what was measured (``benchmarks/conftest.py``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SUITE = """
def test_measured(benchmark):
    benchmark.pedantic(lambda: sum(range(100)), rounds=2)


def test_interrupted(benchmark):
    def body():
        raise KeyboardInterrupt

    benchmark.pedantic(body, rounds=2)


def test_never_reached(benchmark):
    benchmark(lambda: None)
"""


def test_interrupted_run_saves_the_finished_benchmarks(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["benchmarks.conftest"]\n')
    (tmp_path / "test_suite.py").write_text(SUITE)
    out = tmp_path / "out.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "test_suite.py",
         "--benchmark-only", f"--benchmark-json={out}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr  # pytest's code for an interruption
    assert "min() arg is an empty sequence" not in done.stdout + done.stderr
    saved = json.loads(out.read_text())
    names = [b["name"] for b in saved["benchmarks"]]
    assert names == ["test_measured"]
    assert len(saved["benchmarks"][0]["stats"]["data"]) == 2
