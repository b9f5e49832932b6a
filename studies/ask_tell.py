"""The batched ask / train / tell loop one worker runs against a shared study.

Each round asks up to ``--batch`` trials, trains them together on the S data draws (one
``evaluate`` call over S × K), and tells each back: COMPLETE with the mean validation loss (the
per-seed values and their spread in the user attribute ``stats``), or FAIL (user attributes
``fail_reason`` and ``diverged_seeds``) when any data seed diverged. The loop stops once the
study holds ``--n-trials`` COMPLETE trials, counting trials other workers are running, so N
workers on one storage finish together. FAIL trials do not count; a worker gives up after
``--n-trials`` failures of its own so an always-diverging setting cannot loop forever.

No point is trained twice: under common random numbers a trial's value is a function of its
parameters, so a trial whose parameters equal those of a COMPLETE trial (no decay, sampled
again; any repeated point) is told that trial's value and statistics (user attribute
``cached_from``: its number) without training, and equal points within one batch train once.
Every worker reads the same storage, so this holds across workers too.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import optuna
import torch
from optuna.trial import FrozenTrial, TrialState
from tqdm import tqdm

from reports.stats import summarize
from studies.cli import Settings
from studies.crn import StudySeeds, build_problems
from studies.scaleout.guard import WorkerGuard
from studies.space import make_sampler, suggest
from studies.storage import open_storage, parse_storage, run_directory
from studies.train_batch import Evaluation, evaluate
from wdbench import Problem, resolve_device

__all__ = [
    "CACHED_ATTR",
    "STATS_ATTR",
    "BatchOutcome",
    "completed_by_params",
    "count_trials",
    "load_study",
    "params_key",
    "run_batch",
    "run_worker",
    "tell_cached",
]

#: User attribute of a COMPLETE trial: per-seed validation losses, their std and 95% CI
#: half-width, and the means over seeds of train loss, ‖w‖₂ and the fraction of exact zeros;
#: for classification also the validation accuracy (mean and per seed) and the train accuracy.
STATS_ATTR = "stats"
#: User attribute of a trial told without training: the number of the COMPLETE trial it reuses.
CACHED_ATTR = "cached_from"


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
    asked = guard.ask(size)
    with guard.running(asked):
        drawn = [guard.suggested(trial, partial(suggest, trial, settings)) for trial in asked]
        trials = [trial for trial, point in zip(asked, drawn, strict=True) if point is not None]
        points = [point for point in drawn if point is not None]
        if not trials:  # every one was swept while this worker was frozen: ask again
            return BatchOutcome(complete=0, failed=0)
        known = completed_by_params(study)
        keys = [params_key(trial.params) for trial in trials]
        fresh = list(dict.fromkeys(k for k in keys if k not in known))
        told = [
            guard.told(trial, partial(tell_cached, study, trial, known[key]))
            for trial, key in zip(trials, keys, strict=True)
            if key in known
        ]
        if fresh:
            first = {key: keys.index(key) for key in fresh}
            configs = [points[first[key]].config(settings, seeds.train_seed) for key in fresh]
            with guard.interruptible():  # a signal stops training at once, never a storage call
                evaluation = evaluate(problems, configs, device=device)
            column = {key: k for k, key in enumerate(fresh)}
            owner = {key: trials[first[key]].number for key in fresh}
            told += [
                guard.told(
                    trial,
                    partial(
                        tell,
                        study,
                        trial,
                        evaluation,
                        column[key],
                        seeds,
                        None if owner[key] == trial.number else owner[key],
                    ),
                )
                for trial, key in zip(trials, keys, strict=True)
                if key in column
            ]
    return BatchOutcome(complete=told.count(True), failed=told.count(False))


def params_key(params: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    """A trial's parameters as a hashable key (equal keys: the same configuration)."""
    return tuple(sorted(params.items()))


def completed_by_params(study: optuna.Study) -> dict[tuple[tuple[str, Any], ...], FrozenTrial]:
    """Each distinct parameter set of the study's COMPLETE trials → its first such trial."""
    known: dict[tuple[tuple[str, Any], ...], FrozenTrial] = {}
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        known.setdefault(params_key(trial.params), trial)
    return known


def tell_cached(study: optuna.Study, trial: optuna.Trial, source: FrozenTrial) -> bool:
    """Tell ``trial`` the value and statistics of the COMPLETE trial ``source`` (same params)."""
    trial.set_user_attr(STATS_ATTR, source.user_attrs.get(STATS_ATTR, {}))
    trial.set_user_attr(CACHED_ATTR, source.number)
    study.tell(trial, float(source.value if source.value is not None else math.nan))
    return True


def tell(
    study: optuna.Study,
    trial: optuna.Trial,
    evaluation: Evaluation,
    k: int,
    seeds: StudySeeds,
    cached_from: int | None = None,
) -> bool:
    """Tell trial ``k`` of ``evaluation``; True when COMPLETE, False when it FAILed.

    ``cached_from``: the number of the trial of the same batch whose training this reuses.
    """
    if cached_from is not None:
        trial.set_user_attr(CACHED_ATTR, cached_from)
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
    if evaluation.val_acc is not None and evaluation.train_acc is not None:
        stats["val_acc"] = float(evaluation.val_acc[:, k].mean())
        stats["val_acc_per_seed"] = [float(v) for v in evaluation.val_acc[:, k]]
        stats["train_acc"] = float(evaluation.train_acc[:, k].mean())
    trial.set_user_attr(STATS_ATTR, stats)  # one storage write (each attribute is one)
    study.tell(trial, summary.mean)
    return True


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None
