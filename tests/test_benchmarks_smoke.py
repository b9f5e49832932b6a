"""The benchmark suites run once as plain tests, at their smoke sizes, so they never rot.

``pytest benchmarks --benchmark-disable`` runs every benchmark's target once (smallest sizes, no
statistics, nothing saved) and still checks each group's ``extra_info`` contract. This test runs
it in a subprocess (the suites live outside ``testpaths``) and requires every suite file to pass
at least one case and none to fail. One torch thread by default: the smoke run checks that the
code works, not how fast, and a single thread keeps it steady on a busy machine.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUITES = (
    "test_update_loops",
    "test_population",
    "test_scaling",
    "test_study",
    "test_threads",
    "test_networks",
)
TIMEOUT_S = 900


def passed_per_module(junit: Path) -> Counter[str]:
    """Passed test cases per module (``benchmarks.test_x``) in a JUnit XML report."""
    passed: Counter[str] = Counter()
    for case in ET.parse(junit).getroot().iter("testcase"):
        outcome = {child.tag for child in case} & {"skipped", "failure", "error"}
        if not outcome:
            passed[case.get("classname", "")] += 1
    return passed


@pytest.mark.slow
def test_benchmark_suites_run_at_smoke_sizes(tmp_path: Path) -> None:
    pytest.importorskip("pytest_benchmark", reason="the benchmark suites need pytest-benchmark")
    junit = tmp_path / "benchmarks.xml"
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    command = [
        sys.executable,
        "-m",
        "pytest",
        "benchmarks",
        "--benchmark-disable",
        "-q",
        "-p",
        "no:cacheprovider",
        f"--junitxml={junit}",
    ]
    try:
        done = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"the benchmark smoke run took longer than {TIMEOUT_S} s")
    assert done.returncode == 0, f"{done.stdout[-6000:]}\n{done.stderr[-3000:]}"
    passed = passed_per_module(junit)
    empty = [suite for suite in SUITES if passed[f"benchmarks.{suite}"] == 0]
    assert not empty, f"no case passed in {empty}:\n{done.stdout[-3000:]}"


def _bench(group: str, median: float, **info: object) -> dict[str, object]:
    return {"group": group, "stats": {"median": median}, "extra_info": {"device": "cpu", **info}}


def test_summary_tables_state_ratios_against_scratch(tmp_path: Path) -> None:
    from benchmarks.summary import main

    doc = {
        "datetime": "2026-01-01T00:00:00",
        "benchmarks": [
            _bench("update-loops-run", 0.4, variant="scratch", penalty="l2"),
            _bench("update-loops-run", 0.1, variant="proximal", penalty="l2"),
            _bench(
                "population",
                2.0,
                K=4096,
                trajectories_per_s=2048.0,
                speedup_vs_scratch=819.2,
                variant="auto",
            ),
            _bench(
                "study",
                10.0,
                variant="suite",
                trials=200,
                ratio=12.5,
                reach_trials=33,
                reach_s=1.61,
            ),
            *(
                _bench(
                    "threads",
                    seconds,
                    K=4096,
                    penalty="l1",
                    load="busy",
                    policy=policy,
                    loadavg_1min=1.5,
                )
                for policy, seconds in (("pool-1", 0.4), ("pool-2", 0.32), ("default", 0.32))
            ),
            _bench(
                "threads",
                1.2,
                K=4096,
                penalty="l2",
                load="busy",
                policy="interleaved",
                loadavg_1min=1.5,
                rates={"default": 9000.0, "pool-1": 10000.0, "pool-2": 8000.0},
                default_vs_best=0.1,
            ),
        ],
    }
    path = tmp_path / "run.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main([str(path)]) == 0
    text = out.getvalue()
    assert "| proximal | l2 | cpu | 100.0 | 4.00 |" in text
    assert "| cpu | auto | – | 4096 | 2.000 | 2,048 | 819.2 |" in text
    assert "| suite | cpu | 200 | 10.0 | 0.050 | 12.5 | 33 trials, 1.6 s |" in text
    # default vs the best of 1 and 2 threads: 4096 / 0.32 against 4096 / 0.32
    assert "| l1 | busy | default | 12,800 | +0% |" in text
    assert "| l1 | busy | pool-1 | 10,240 |  |" in text
    assert "| l2 | busy | 9,000 | 10,000 | 8,000 | +10% |" in text  # call by call
    assert "| l2 | busy | interleaved |" not in text
    assert "### scaling" not in text


def test_summary_of_a_missing_path_is_one_line_and_exit_2(tmp_path: Path) -> None:
    from benchmarks.summary import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert main([str(tmp_path / "absent")]) == 2
    assert err.getvalue().count("\n") == 1
