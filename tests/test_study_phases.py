"""Phase timing and progress, time-to-regret, and the thread flag of ``studies.search``."""

from __future__ import annotations

import dataclasses
import io
import time

import pandas as pd
import pytest

from studies.cli import UsageError, parse_args
from studies.console import reach_line, time_to_regret
from studies.phases import Phases
from studies.scaleout.workers import (
    apply_thread_policy,
    pool_threads,
    thread_record,
    worker_environment,
)
from wdbench import threads


def test_phases_add_up_and_a_long_phase_shows_progress() -> None:
    stream = io.StringIO()
    phases = Phases(stream=stream, tick_s=0.05)
    phases.add("imports", 0.25)
    with phases.phase("grid"):
        time.sleep(1.2)
    with phases.phase("exports"):
        pass
    with phases.phase("search", quiet=True):
        time.sleep(1.1)
    record = phases.record()
    assert list(record) == ["imports", "grid", "exports", "search", "total"]
    assert record["grid"] >= 1.2 and record["search"] >= 1.1
    assert record["total"] == pytest.approx(sum(phases.seconds.values()), abs=1e-3)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "grid …" and lines[1].startswith("grid done in 1.")
    assert len(lines) == 2  # the short phase and the quiet one print nothing
    assert phases.line().startswith("time: imports 0.2 s · grid 1.")


def test_work_beside_a_phase_is_shown_but_not_counted() -> None:
    phases = Phases(stream=io.StringIO())
    phases.add("search", 2.0)
    phases.add("grid", 0.25)
    phases.beside("search", "grid", 1.5)
    phases.beside("search", "oracles", 0.75)
    assert phases.record() == {"search": 2.0, "grid": 0.25, "total": 2.25}
    assert phases.record_beside() == {"search": {"grid": 1.5, "oracles": 0.75}}
    assert phases.line() == (
        "time: search 2.0 s (beside it: grid 1.5 s, oracles 0.8 s) · grid 0.2 s · total 2.2 s"
    )


def trials_table(values: list[float], states: list[str] | None = None) -> pd.DataFrame:
    start = pd.Timestamp("2026-01-01T00:00:00")
    n = len(values)
    return pd.DataFrame(
        {
            "number": range(n),
            "state": states or ["COMPLETE"] * n,
            "value": values,
            "datetime_start": [start + pd.Timedelta(seconds=i) for i in range(n)],
            "datetime_complete": [start + pd.Timedelta(seconds=i + 0.5) for i in range(n)],
        }
    )


def test_time_to_regret_counts_complete_trials_until_within_one_percent() -> None:
    grid_best = {"val_mean": 1.0}
    # best so far: 3, 2, 2, 1.02 (2 % away), 1.009 (within 1 %) → the 5th complete trial
    trials = trials_table([3.0, 2.0, 5.0, 1.02, 1.009, 0.5])
    assert time_to_regret(trials, grid_best) == {"trials": 5, "seconds": 4.5}
    failed = trials_table([3.0, 0.1, 1.005], ["COMPLETE", "FAIL", "COMPLETE"])
    assert time_to_regret(failed, grid_best) == {"trials": 2, "seconds": 2.5}
    assert time_to_regret(trials_table([2.0, 1.5]), grid_best) is None
    assert time_to_regret(trials, None) is None
    assert reach_line({"trials": 5, "seconds": 4.5}) == "time to ≤1% regret: 5 trials, 4.5 s"
    assert reach_line(None) == "time to ≤1% regret: not reached"


def test_threads_flag() -> None:
    settings = parse_args(["--threads", "3", "--workers", "2"])
    assert settings.threads == 3 and pool_threads(settings) == 3
    assert thread_record(settings)["source"] == "--threads"
    assert worker_environment(settings)["WDBENCH_THREADS"] == "3"
    shared = dataclasses.replace(parse_args([]), workers=64)  # more than the cores here
    assert pool_threads(shared) == 1 and thread_record(shared)["source"] == "cores / --workers"
    with pytest.raises(UsageError, match="--threads"):
        parse_args(["--threads", "0"])


def test_one_process_measures_its_worker_count_and_records_the_choices(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("WDBENCH_THREADS", raising=False)
    monkeypatch.setattr(threads, "_measured", threads._Measured())
    try:
        apply_thread_policy(parse_args(["--threads", "1"]))
        assert threads.thread_source() == "set" and threads.cpu_threads() == 1
        settings = parse_args([])
        apply_thread_policy(settings)  # no --threads, one process: the measured policy
        assert threads.thread_source() == "measured"
        threads._measured.count.update({1: 3, 2: 5})
        record = thread_record(settings)
        assert record["source"] == "measured" and record["pool"] == threads.cpu_threads()
        assert record["chosen"] == {"1": 3, "2": 5}
        monkeypatch.setenv("WDBENCH_THREADS", "3")  # exact, and recorded as such
        record = thread_record(settings)
        assert record["source"] == "WDBENCH_THREADS" and record["pool"] == 3
        assert "chosen" not in record
    finally:
        threads.set_cpu_threads(None)
