"""Study: an end-to-end search with the project's defaults against the naive way of running it.

Group ``study``, variants:

* ``suite`` — ``python -m studies.search`` in process (``studies.search.main``) with the project's
  defaults (TPE, batches of 20 trials through the population kernel, 5 data seeds, the embedded
  journal storage, the dense λ grid, the oracle and the re-trained selection) and
  ``--no-report``: 200 COMPLETE trials, in a fresh output folder every round.
* ``naive`` — the lesson's scratch loop inside ``study.optimize``: the same search space and
  seeded sampler (``studies.space``), the same 5 data draws and train seed, one trial at a time,
  one ``wdbench.train(loop="scratch")`` per data seed, SQLite storage in a fresh folder. It runs
  ``NAIVE_TRIALS`` = 20 trials (a trial costs the same all along: ≈ 1 s each), or the suite's
  200 with ``--benchmark-naive-full``.

``ratio`` = naive seconds per trial / this variant's seconds per trial (1 for the naive baseline
itself). The naive baseline does less (no grid, no oracle, no selection, no per-epoch curves),
so the ratio is a lower bound on what the suite saves. The suite also records, from its
``run.json``, the trials and seconds its search took to come within 1 % of the dense grid's best
(``reach_trials``, ``reach_s``; empty if it never did) and the seconds of each phase. Smoke
setting: 4 trials, 2 data seeds, 5 epochs, 2 grid points. Without optuna or ``studies.search``
the group skips with the reason.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
import torch
from pytest_benchmark.fixture import BenchmarkFixture

import wdbench
from benchmarks._machine import device_info
from benchmarks._measure import Rounds, device_params, measure, record
from studies import search, space
from studies.cli import parse_args
from studies.crn import StudySeeds, build_problems
from studies.space import with_train_defaults

FULL = {"trials": 200, "seeds": 5, "epochs": 100, "grid_points": 256}
NAIVE_TRIALS = 20
SMOKE = {"trials": 4, "seeds": 2, "epochs": 5, "grid_points": 2}
PLAN = {"cpu": Rounds(rounds=1, warmup_rounds=0), "cuda": Rounds(rounds=1, warmup_rounds=1)}


def suite_argv(sizes: dict[str, int], out: Path, device: str) -> list[str]:
    """The ``studies.search`` command line: the defaults, sized by ``sizes``, no report."""
    return [
        "--n-trials",
        str(sizes["trials"]),
        "--seeds",
        str(sizes["seeds"]),
        "--epochs",
        str(sizes["epochs"]),
        "--grid-points",
        str(sizes["grid_points"]),
        "--device",
        device,
        "--out",
        str(out),
        "--no-report",
    ]


def run_naive(sizes: dict[str, int], folder: Path) -> int:
    """The naive study: ``study.optimize`` over the scratch loop; returns COMPLETE trials."""
    settings = with_train_defaults(parse_args(suite_argv(sizes, folder, "cpu")))
    seeds = StudySeeds.from_settings(settings)
    problems = build_problems(settings, seeds)

    def objective(trial: Any) -> float:
        point = space.suggest(trial, settings)
        config = dataclasses.replace(point.config(settings, seeds.train_seed), loop="scratch")
        runs = [wdbench.train(p, config, device="cpu", curves=False) for p in problems]
        if any(r.status != "ok" for r in runs):
            raise optuna.TrialPruned("diverged")
        return sum(r.val_loss for r in runs) / len(runs)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        storage=f"sqlite:///{folder / 'naive.db'}",
        sampler=space.make_sampler(settings),
        study_name="naive",
        direction="minimize",
    )
    study.optimize(objective, n_trials=sizes["trials"])
    return len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)))


@pytest.fixture(scope="session")
def study_sizes(smoke: bool) -> dict[str, int]:
    return SMOKE if smoke else FULL


@pytest.fixture(scope="session")
def naive_sizes(study_sizes: dict[str, int], request: pytest.FixtureRequest) -> dict[str, int]:
    """The suite's sizes, with ``NAIVE_TRIALS`` trials unless ``--benchmark-naive-full``."""
    if study_sizes is SMOKE or request.config.getoption("benchmark_naive_full"):
        return study_sizes
    return {**study_sizes, "trials": NAIVE_TRIALS}


@pytest.fixture(scope="session")
def naive_seconds() -> dict[str, float]:
    """Seconds of the naive study; filled by ``test_study_naive``, or timed once on demand."""
    return {}


def naive_time(seconds: dict[str, float], sizes: dict[str, int]) -> float:
    """The naive study's seconds (at ``sizes``) from this session, timing one run if none was
    recorded."""
    if "naive" not in seconds:
        with tempfile.TemporaryDirectory(prefix="wdbench-naive-") as tmp:
            start = time.perf_counter()
            run_naive(sizes, Path(tmp))
            seconds["naive"] = time.perf_counter() - start
    return seconds["naive"]


def _info(variant: str, sizes: dict[str, int], device: torch.device) -> dict[str, Any]:
    return {
        **device_info(device, "float32"),
        "variant": variant,
        "trials": sizes["trials"],
        "seeds": sizes["seeds"],
        "epochs": sizes["epochs"],
    }


def test_study_naive(
    benchmark: BenchmarkFixture,
    naive_sizes: dict[str, int],
    naive_seconds: dict[str, float],
    tmp_path: Path,
) -> None:
    """The lesson's scratch loop inside ``study.optimize`` with SQLite storage."""
    device = torch.device("cpu")
    benchmark.group = "study"
    rounds = iter(range(1_000))
    complete: list[int] = []

    def setup() -> tuple[tuple[Path], dict[str, Any]]:
        folder = tmp_path / f"round-{next(rounds)}"
        folder.mkdir()
        return (folder,), {}

    def run(folder: Path) -> None:
        complete.append(run_naive(naive_sizes, folder))

    seconds = measure(benchmark, run, device, PLAN["cpu"], setup=setup)
    naive_seconds["naive"] = seconds
    assert complete and all(n == naive_sizes["trials"] for n in complete)
    info = {**_info("naive", naive_sizes, device), "ratio": 1.0, "loop": "scratch"}
    record(benchmark, {**info, "seconds": seconds, "s_per_trial": seconds / naive_sizes["trials"]})


@pytest.mark.parametrize("device_name", device_params())
def test_study_suite(
    benchmark: BenchmarkFixture,
    study_sizes: dict[str, int],
    naive_sizes: dict[str, int],
    naive_seconds: dict[str, float],
    tmp_path: Path,
    device_name: str,
) -> None:
    """``python -m studies.search`` with the defaults (and ``--no-report``), in process."""
    device = torch.device(device_name)
    benchmark.group = "study"
    rounds = iter(range(1_000))
    codes: list[int] = []
    outs: list[Path] = []

    def setup() -> tuple[tuple[list[str]], dict[str, Any]]:
        outs.append(tmp_path / f"round-{next(rounds)}")
        return (suite_argv(study_sizes, outs[-1], device.type),), {}

    def run(argv: list[str]) -> None:
        codes.append(search.main(argv))

    seconds = measure(benchmark, run, device, PLAN[device.type], setup=setup)
    assert codes and all(code == 0 for code in codes)
    naive = naive_time(naive_seconds, naive_sizes)
    per_trial = seconds / study_sizes["trials"]
    info = json.loads((outs[-1] / "weight-decay" / "run.json").read_text())
    reach = info["summary"].get("time_to_1pct") or {}
    record(
        benchmark,
        {
            **_info("suite", study_sizes, device),
            "ratio": (naive / naive_sizes["trials"]) / per_trial,
            "naive_s": naive,
            "naive_trials": naive_sizes["trials"],
            "seconds": seconds,
            "s_per_trial": per_trial,
            "reach_trials": reach.get("trials"),
            "reach_s": reach.get("seconds"),
            "phases": info.get("phases"),
        },
    )
