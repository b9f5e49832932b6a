"""The batched ask / train / tell loop one worker runs against a shared study.

Each round asks up to ``--batch`` trials, trains them together on the S data draws (one
``evaluate`` call over S × K), and tells each back: COMPLETE with the mean validation loss (the
per-seed values and their spread in the user attribute ``stats``), or FAIL (user attributes
``fail_reason`` and ``diverged_seeds``) when any data seed diverged. The loop stops once the
study holds ``--n-trials`` COMPLETE trials, counting trials other workers are running, so N
workers on one storage finish together. FAIL trials do not count; a worker gives up after
``--n-trials`` failures of its own so an always-diverging setting cannot loop forever.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from functools import partial

import numpy as np
import optuna
import torch
from optuna.trial import TrialState
from tqdm import tqdm

from reports.stats import summarize
from studies.cli import Settings
from studies.crn import StudySeeds, build_problems
from studies.scaleout.guard import WorkerGuard
from studies.space import make_sampler, suggest
from studies.storage import open_storage, parse_storage, run_directory
from studies.train_batch import Evaluation, evaluate
from wdbench import Problem, resolve_device

__all__ = ["STATS_ATTR", "BatchOutcome", "count_trials", "load_study", "run_batch", "run_worker"]

#: User attribute of a COMPLETE trial: per-seed validation losses, their std and 95% CI
#: half-width, and the means over seeds of train loss, ‖w‖₂ and the fraction of exact zeros.
STATS_ATTR = "stats"


@dataclass(frozen=True)
class BatchOutcome:
    """How many trials of one batch were told COMPLETE and FAIL."""

    complete: int
    failed: int


def load_study(settings: Settings, worker_index: int = 0) -> optuna.Study:
    """Open the (already created) study with this worker's seeded sampler."""
    spec = parse_storage(settings.storage, run_directory(settings.out, settings.study_name))
    return optuna.load_study(
        study_name=settings.study_name,
        storage=open_storage(spec),
        sampler=make_sampler(settings, worker_index),
    )


def count_trials(study: optuna.Study, *states: TrialState) -> int:
    """Number of the study's trials in any of ``states``."""
    return len(study.get_trials(deepcopy=False, states=states))


def run_worker(settings: Settings, worker_index: int = 0, progress: bool | None = None) -> int:
    """Ask, train and tell until the study holds ``--n-trials`` COMPLETE trials.

    Returns the number of trials this worker told COMPLETE. ``progress=None`` shows the bar
    only on a terminal (stderr).
    """
    study = load_study(settings, worker_index)
    seeds = StudySeeds.from_settings(settings)
    problems = build_problems(settings, seeds)
    device = resolve_device(settings.device)
    completed = failed = 0
    done = count_trials(study, TrialState.COMPLETE)
    guard = WorkerGuard(study, settings.heartbeat_interval, settings.stale_after)
    with (
        guard,
        tqdm(
            total=settings.n_trials,
            initial=done,
            desc=settings.study_name,
            unit="trial",
            file=sys.stderr,
            disable=None if progress is None else not progress,
            dynamic_ncols=True,
        ) as bar,
    ):
        while failed < settings.n_trials:
            guard.sweep()  # fail + re-queue the trials of dead workers (silent > --stale-after)
            busy = count_trials(study, TrialState.COMPLETE, TrialState.RUNNING)
            size = min(settings.batch, settings.n_trials - busy)
            if size <= 0:
                if count_trials(study, TrialState.COMPLETE) >= settings.n_trials:
                    break
                guard.wait()  # others' trials are in flight: they finish or go stale
                continue
            outcome = run_batch(study, settings, problems, seeds, device, size, guard)
            completed, failed = completed + outcome.complete, failed + outcome.failed
            bar.update(count_trials(study, TrialState.COMPLETE) - bar.n)
    return completed


def run_batch(
    study: optuna.Study,
    settings: Settings,
    problems: list[Problem],
    seeds: StudySeeds,
    device: torch.device,
    size: int,
    guard: WorkerGuard,
) -> BatchOutcome:
    """Ask ``size`` trials, train them together on every data draw, tell each back.

    ``guard`` claims and heartbeats the trials, fails them on a signal, and drops the tell of a
    trial a sweeper failed meanwhile (its re-queued copy runs instead).
    """
    trials = guard.ask(size)
    with guard.running(trials):
        points = [suggest(trial, settings) for trial in trials]
        configs = [p.config(settings, seeds.train_seed) for p in points]
        with guard.interruptible():  # a signal stops training at once, never a storage call
            evaluation = evaluate(problems, configs, device=device)
        told = [
            guard.told(trial, partial(tell, study, trial, evaluation, k, seeds))
            for k, trial in enumerate(trials)
        ]
    return BatchOutcome(complete=told.count(True), failed=told.count(False))


def tell(
    study: optuna.Study, trial: optuna.Trial, evaluation: Evaluation, k: int, seeds: StudySeeds
) -> bool:
    """Tell trial ``k`` of ``evaluation``; True when COMPLETE, False when it FAILed."""
    val = evaluation.val_loss[:, k]
    bad = evaluation.diverged[:, k] | ~np.isfinite(val)
    if bool(bad.any()):
        diverging = [s for s, b in zip(seeds.data_seeds, bad.tolist(), strict=True) if b]
        trial.set_user_attr("fail_reason", f"diverged on {len(diverging)} of {len(val)} data seeds")
        trial.set_user_attr("diverged_seeds", diverging)
        study.tell(trial, state=TrialState.FAIL)
        return False
    summary = summarize(val)
    stats = {
        "val_per_seed": [float(v) for v in val],
        "val_std": _finite_or_none(summary.std),
        "val_ci95": _finite_or_none(summary.ci95),
        "train_loss": float(evaluation.train_loss[:, k].mean()),
        "w_norm": float(evaluation.w_norm[:, k].mean()),
        "zero_fraction": float(evaluation.zero_fraction[:, k].mean()),
    }
    trial.set_user_attr(STATS_ATTR, stats)  # one storage write (each attribute is one)
    study.tell(trial, summary.mean)
    return True


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None
