"""The command lines answer at once: usage and refusals before torch, Optuna or pandas load."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import wdbench
from studies import names
from studies.cli import EPILOG, parse_args

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "optuna", "pandas", "seaborn", "matplotlib", "scipy", "sqlalchemy")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True,
        stdin=subprocess.DEVNULL, timeout=120,
    )  # fmt: skip


def _imported(importtime_stderr: str) -> set[str]:
    """Top-level names of the modules ``python -X importtime`` reports as imported."""
    found = set()
    for line in importtime_stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            found.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return found


def test_cli_names_are_the_registries_names() -> None:
    assert names.PROBLEMS == {n: f.description for n, f in wdbench.PROBLEMS.items()}
    assert tuple(names.PROBLEMS) == tuple(wdbench.PROBLEMS)
    assert names.PROBLEM_PARAMS == {
        n: tuple(p.name for p in f.params) for n, f in wdbench.PROBLEMS.items()
    }
    assert names.PENALTIES == tuple(wdbench.PENALTIES)
    assert names.TABLE_SUFFIXES == wdbench.problems.TABLE_SUFFIXES


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["--help"], 0),
        (["--lr", "0"], 2),
        (["--penalties", "l3"], 2),
        (["--lam-range", "1", "0.1"], 2),
        (["--problem", "mnist"], 2),
        (["--target", "y"], 2),
        (["--problem", "data.csv", "--val-fraction", "1"], 2),
    ],
)
def test_help_and_refusals_import_nothing_heavy(argv: list[str], code: int) -> None:
    done = _run("-X", "importtime", "-m", "studies.search", *argv)
    assert done.returncode == code, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert not set(HEAVY) & _imported(done.stderr)
    assert "studies" in _imported(done.stderr)  # the measurement saw the package load


def test_help_shows_groups_defaults_and_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        parse_args(["--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert "search space and sampler:" in out and "storage and workers:" in out
    assert "(default: 200)" in out and "(default: TrainConfig's)" in out
    assert EPILOG.splitlines()[0] in out and "143" in out


def test_toml_values_are_defaults_that_flags_override(tmp_path: Path) -> None:
    config = tmp_path / "study.toml"
    config.write_text(
        'lr = 0.01\nepochs = 7\npenalties = ["l1", "l2"]\nlam-range = [1e-3, 1]\nno_report = true\n'
    )
    s = parse_args(["--config", str(config), "--epochs", "9"])
    assert (s.lr, s.epochs, s.penalties, s.lam_range) == (0.01, 9, ("l1", "l2"), (1e-3, 1.0))
    assert s.no_report and s.config == str(config)


@pytest.mark.parametrize(
    ("argv", "code", "stream"),
    [
        (["-m", "studies.scaleout.workers"], 2, "stderr"),
        (["-m", "benchmarks.summary", "--help"], 0, "stdout"),
        (["-m", "reports.build", "--help"], 0, "stdout"),
        (["-m", "studies.scaleout.throughput", "--help"], 0, "stdout"),
    ],
)
@pytest.mark.slow
def test_other_entry_points_give_usage(argv: list[str], code: int, stream: str) -> None:
    done = _run(*argv)
    assert done.returncode == code
    assert getattr(done, stream).startswith("usage:")
    assert "Traceback" not in done.stderr


_EXIT_SCRIPT = """
import atexit, sys, threading, time
from studies.search import exit_now
atexit.register(lambda: print("exit handler ran", flush=True))
sys.stdout.write("written, not flushed")
if sys.argv[1] == "busy":
    def late():
        time.sleep(0.3)
        print(" · the thread finished", end="")
    threading.Thread(target=late, name="writer").start()
exit_now(3)
"""


@pytest.mark.parametrize("threads", ["idle", "busy"])
def test_exit_now_keeps_the_code_the_output_and_the_exit_handlers(threads: str) -> None:
    """The command line ends without the interpreter's teardown only once nothing else runs: a
    live thread of its own is waited for, as the interpreter would."""
    done = _run("-c", _EXIT_SCRIPT, threads)
    assert done.returncode == 3, done.stderr[-2000:]
    late = " · the thread finished" if threads == "busy" else ""
    assert done.stdout == f"written, not flushed{late}exit handler ran\n"
