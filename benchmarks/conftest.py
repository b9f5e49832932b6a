"""Shared set-up of the benchmark suites: where results go, machine info, the scratch baseline.

``pytest benchmarks --benchmark-only`` saves its JSON under ``runs/benchmarks/`` (pytest-benchmark's
autosave, one file per run, in a folder per machine) unless the command names its own
``--benchmark-save``, ``--benchmark-autosave``, ``--benchmark-json`` or ``--benchmark-storage``.
With ``--benchmark-disable`` (the smoke setting) nothing is saved.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from pytest_benchmark.utils import get_tag

import wdbench
from benchmarks import _machine
from benchmarks._measure import is_smoke

DEFAULT_STORAGE = "file://./.benchmarks"  # pytest-benchmark's own default
RESULTS_DIR = ("runs", "benchmarks")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--benchmark-naive-full",
        action="store_true",
        default=False,
        help="run the naive study baseline at the suite's full 200 trials (default: 20; the "
        "ratio is per trial either way)",
    )


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> Iterator[None]:
    """Save what was measured when a run is cut short (Ctrl-C): a benchmark interrupted before
    its first round has no timings, on which pytest-benchmark's saving would fail and lose all
    the others; drop it first."""
    bench_session = getattr(session.config, "_benchmarksession", None)
    if bench_session is not None:
        bench_session.benchmarks[:] = [b for b in bench_session.benchmarks if b]
    yield


def pytest_configure(config: pytest.Config) -> None:
    """Point the storage at ``runs/benchmarks`` and autosave, unless the command chose otherwise.

    Runs before pytest-benchmark reads its options (its own ``pytest_configure`` is ``trylast``).
    """
    opt = config.option
    if not hasattr(opt, "benchmark_storage"):
        return
    if opt.benchmark_storage == DEFAULT_STORAGE:
        opt.benchmark_storage = "file://" + str(config.rootpath.joinpath(*RESULTS_DIR))
    chosen = opt.benchmark_save or opt.benchmark_autosave or opt.benchmark_json
    if not (chosen or is_smoke(config) or opt.benchmark_skip):
        # the value --benchmark-autosave stores: <commit>_<date>[_uncommited-changes]
        opt.benchmark_autosave = get_tag()  # type: ignore[no-untyped-call]


def pytest_benchmark_update_machine_info(
    config: pytest.Config, machine_info: dict[str, Any]
) -> None:
    """Add torch version, thread count, CPU model, GPU name and driver to ``machine_info``."""
    machine_info.update(_machine.machine_info())


@dataclass(frozen=True)
class ScratchBaseline:
    """Seconds of one seed-faithful scratch run (the lesson's problem and loop, 100 epochs)."""

    seconds: float
    device: str
    penalty: str
    runs: int

    @property
    def trajectories_per_s(self) -> float:
        return 1.0 / self.seconds

    def info(self) -> dict[str, Any]:
        """The ``extra_info`` fields that say what a speed-up was measured against."""
        return {
            "scratch_s": self.seconds,
            "scratch_device": self.device,
            "scratch_penalty": self.penalty,
        }


@pytest.fixture(scope="session")
def smoke(request: pytest.FixtureRequest) -> bool:
    """True under ``--benchmark-disable``: every suite then runs once at its smallest sizes."""
    return is_smoke(request.config)


@pytest.fixture(scope="session")
def scratch_baseline(smoke: bool) -> ScratchBaseline:
    """Time the seed-faithful scratch loop on the CPU once per session (median of 3 runs).

    One warm-up run first; a single run in the smoke setting. Speed-ups in ``extra_info`` are
    ``scratch_s / seconds per trajectory``, i.e. trajectories per second relative to this loop.
    """
    problem = wdbench.Problem.synthetic(seed=0)
    config = wdbench.TrainConfig(loop="scratch", penalty="l2", lam=3.0, seed=0)
    runs = 1 if smoke else 3
    if not smoke:
        wdbench.train(problem, config, device="cpu", curves=False)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        wdbench.train(problem, config, device="cpu", curves=False)
        times.append(time.perf_counter() - start)
    return ScratchBaseline(statistics.median(times), "cpu", config.penalty, runs)
