"""Files a study run leaves for the report (see docs/outputs.md): the report never opens storage.

* ``trials.parquet``   — one row per Optuna trial.
* ``selected.parquet`` — the chosen configurations with their test losses (computed here, after
  selection: the only place test losses of trained configurations are read).
* ``curves.parquet``   — per-epoch train / validation losses of the selected configurations.
* ``run.json``         — command, storage and settings with passwords masked, versions, seeds.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import torch
from optuna.trial import FrozenTrial, TrialState

from reports.stats import summarize
from studies.ask_tell import STATS_ATTR
from studies.cli import Settings
from studies.crn import StudySeeds
from studies.space import POINT_COLUMNS, SearchPoint, point_from_params
from studies.train_batch import Evaluation, evaluate
from wdbench import Problem, oracle

#: Label of the null model (w = 0, b = mean of y_train; for classification the training class
#: frequencies: the majority class) in every table.
NULL_LABEL = "null"
#: The splits ``curves.parquet`` holds per epoch: the selection trains without the test set's
#: per-epoch loss (1000 rows of the lesson against 150: most of the selection's time).
CURVE_SPLITS = ("train", "val")

__all__ = [
    "CURVE_SPLITS",
    "NULL_LABEL",
    "Selection",
    "curves_frame",
    "null_scores",
    "run_info",
    "select",
    "selected_frame",
    "trials_frame",
    "write_json",
    "write_table",
]

TRIAL_COLUMNS = [
    "number",
    "state",
    *POINT_COLUMNS,
    "value",
    "val_std",
    "val_ci95",
    "w_norm",
    "zero_fraction",
    "fail_reason",
    "datetime_start",
    "datetime_complete",
]


def trials_frame(study: optuna.Study) -> pd.DataFrame:
    """One flat row per trial (columns of ``trials.parquet``)."""
    rows = [_trial_row(t) for t in study.get_trials(deepcopy=False)]
    frame = pd.DataFrame(rows, columns=TRIAL_COLUMNS)
    floats = ("lr", "lam", "l1_ratio", "value", "val_std", "val_ci95", "w_norm", "zero_fraction")
    for column in floats:
        frame[column] = frame[column].astype("float64")
    for column in ("val_acc", "train_acc"):  # classification: accuracies beside the loss
        values = [r.get(column, math.nan) for r in rows]
        if any(math.isfinite(v) for v in values):
            frame[column] = np.asarray(values, dtype=np.float64)
    fixed_lr = (study.user_attrs.get("objective") or {}).get("lr")
    if fixed_lr is not None:  # the study's fixed lr where the trial did not search it
        frame["lr"] = frame["lr"].fillna(float(fixed_lr))
    for column in ("datetime_start", "datetime_complete"):
        frame[column] = pd.to_datetime(frame[column])
    return frame


def _trial_row(trial: FrozenTrial) -> dict[str, Any]:
    attrs = trial.user_attrs
    row: dict[str, Any] = {
        "penalty": None,
        "rule": None,
        "impl": None,
        "loop": None,
        "optimizer": None,
        "decay": None,
        "lr": math.nan,
        "lam": math.nan,
        "l1_ratio": math.nan,
    }
    if "penalty" in trial.params:
        row.update(point_from_params(trial.params).row())
    row.update(
        number=trial.number,
        state=trial.state.name,
        value=trial.value if trial.state == TrialState.COMPLETE else math.nan,
        fail_reason=str(attrs.get("fail_reason", "")),
        datetime_start=trial.datetime_start,
        datetime_complete=trial.datetime_complete,
    )
    stats = attrs.get(STATS_ATTR) or {}
    for key in ("val_std", "val_ci95", "w_norm", "zero_fraction", "val_acc", "train_acc"):
        value = stats.get(key)
        row[key] = math.nan if value is None else float(value)
    return row


@dataclass(frozen=True)
class Selection:
    """Labelled configurations (``best``, ``best-<penalty>``, ``best-<optimizer>-<decay>`` when
    the study searched more than plain SGD, ``no-decay``) and their runs, and the null model's
    ``null_losses`` (``val`` / ``test`` ``[S]``) on the same draws (and its ``null_accuracies``
    for classification)."""

    labels: tuple[str, ...]
    points: tuple[SearchPoint, ...]
    evaluation: Evaluation
    null_losses: dict[str, np.ndarray]
    null_accuracies: dict[str, np.ndarray] | None = None

    @property
    def labelled(self) -> dict[str, SearchPoint]:
        """Label → point, in selection order."""
        return dict(zip(self.labels, self.points, strict=True))

    def val_means(self) -> dict[str, float]:
        """Label → mean validation loss over the search's draws (what chose it)."""
        val = self.evaluation.val_loss
        return {label: float(val[:, k].mean()) for k, label in enumerate(self.labels)}


def select(
    study: optuna.Study,
    settings: Settings,
    problems: Sequence[Problem],
    seeds: StudySeeds,
    device: torch.device,
) -> Selection:
    """Pick the best trial, each penalty's best, each (optimizer, decay)'s best and no decay
    (with the best trial's optimizer and lr); train them with curves."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    best_point = point_from_params(study.best_trial.params)
    labelled: dict[str, SearchPoint] = {"best": best_point}
    searched = [(t, point_from_params(t.params)) for t in complete if "penalty" in t.params]
    for penalty in settings.penalties:
        trials = [t for t, p in searched if p.penalty == penalty]
        if trials and penalty != "none":
            labelled[f"best-{penalty}"] = point_from_params(_best(trials).params)
    searched = [(t, p) for t, p in searched if p.penalty != "none"]
    combos = sorted({(p.optimizer, p.decay) for _, p in searched})
    if settings.optimizers != ("sgd",) and len(combos) > 1:
        for optimizer, decay in combos:
            combo = (optimizer, decay)
            trials = [t for t, p in searched if (p.optimizer, p.decay) == combo]
            labelled[f"best-{optimizer}-{decay}"] = point_from_params(_best(trials).params)
    labelled["no-decay"] = SearchPoint.of(
        "none", "subgradient", 0.0, None, best_point.optimizer, best_point.lr
    )
    points = tuple(
        p if p.lr is not None else dataclasses.replace(p, lr=settings.lr) for p in labelled.values()
    )
    configs = [p.config(settings, seeds.train_seed) for p in points]
    evaluation = evaluate(problems, configs, device=device, curves=CURVE_SPLITS)
    nulls = [null_scores(p) for p in problems]
    null_losses = {s: np.array([n[f"{s}_loss"] for n in nulls]) for s in ("val", "test")}
    null_accuracies = None
    if evaluation.classification:
        null_accuracies = {s: np.array([n[f"{s}_acc"] for n in nulls]) for s in ("val", "test")}
    return Selection(tuple(labelled), points, evaluation, null_losses, null_accuracies)


def null_scores(problem: Problem) -> dict[str, float]:
    """The null model on one draw: ``val_loss``, ``test_loss``, ``w_norm`` (0) and
    ``zero_fraction`` (1); for classification (the majority class, ``wdbench.oracle.
    null_classifier``) also ``train_acc``, ``val_acc``, ``test_acc``."""
    if problem.n_classes:
        null = oracle.null_classifier(problem)
        return {
            "val_loss": null.losses["val"],
            "test_loss": null.losses["test"],
            "w_norm": 0.0,
            "zero_fraction": 1.0,
            **{f"{s}_acc": null.accuracies[s] for s in ("train", "val", "test")},
        }
    path = oracle.null_model(problem)
    return {
        "val_loss": float(path.losses["val"][0]),
        "test_loss": float(path.losses["test"][0]),
        "w_norm": 0.0,
        "zero_fraction": 1.0,
    }


def _best(trials: list[FrozenTrial]) -> FrozenTrial:
    return min(trials, key=lambda t: (float(t.value or math.inf), t.number))


def selected_frame(selection: Selection) -> pd.DataFrame:
    """One row per label, then the null model (columns of ``selected.parquet``).

    ``empty`` marks a configuration whose every weight is exactly zero on every draw: it is the
    null model's predictor (only its intercept was trained). For classification each row also
    has ``val_acc_mean``, ``val_acc_ci95``, ``test_acc_mean``, ``test_acc_ci95``.
    """
    rows = []
    ev = selection.evaluation
    for k, (label, point) in enumerate(zip(selection.labels, selection.points, strict=True)):
        val, test = summarize(ev.val_loss[:, k]), summarize(ev.test_loss[:, k])
        accuracy = {}
        if ev.val_acc is not None and ev.test_acc is not None:
            accuracy = _accuracy_columns(ev.val_acc[:, k], ev.test_acc[:, k])
        rows.append(
            {
                "label": label,
                **point.row(),
                "val_mean": val.mean,
                "val_ci95": val.ci95,
                "test_mean": test.mean,
                "test_ci95": test.ci95,
                "is_best": label == "best",
                "zero_fraction": float(ev.zero_fraction[:, k].mean()),
                "empty": bool((ev.zero_fraction[:, k] == 1).all()),
                **accuracy,
            }
        )
    null_accuracy = {}
    if selection.null_accuracies is not None:
        null_accuracy = _accuracy_columns(*(selection.null_accuracies[s] for s in ("val", "test")))
    val, test = (summarize(selection.null_losses[s]) for s in ("val", "test"))
    rows.append(
        {
            "label": NULL_LABEL,
            "penalty": NULL_LABEL,
            "rule": "",
            "impl": "",
            "loop": "",
            "optimizer": "",
            "decay": "",
            "lr": math.nan,
            "lam": math.inf,
            "l1_ratio": math.nan,
            "val_mean": val.mean,
            "val_ci95": val.ci95,
            "test_mean": test.mean,
            "test_ci95": test.ci95,
            "is_best": False,
            "zero_fraction": 1.0,
            "empty": True,
            **null_accuracy,
        }
    )
    return pd.DataFrame(rows)


def _accuracy_columns(val_acc: np.ndarray, test_acc: np.ndarray) -> dict[str, float]:
    val, test = summarize(val_acc), summarize(test_acc)
    return {
        "val_acc_mean": val.mean,
        "val_acc_ci95": val.ci95,
        "test_acc_mean": test.mean,
        "test_acc_ci95": test.ci95,
    }


def curves_frame(selection: Selection, seeds: StudySeeds) -> pd.DataFrame:
    """One row per label × data seed × epoch × split (columns of ``curves.parquet``)."""
    curves = selection.evaluation.curves
    if curves is None:
        raise ValueError("the selection was evaluated without curves")
    frames = []
    for k, (label, point) in enumerate(zip(selection.labels, selection.points, strict=True)):
        for split in CURVE_SPLITS:
            losses = curves[split][:, k, :]
            n_seeds, epochs = losses.shape
            frame = pd.DataFrame(
                {
                    "label": label,
                    "data_seed": np.repeat(np.asarray(seeds.data_seeds), epochs),
                    "epoch": np.tile(np.arange(1, epochs + 1), n_seeds),
                    "split": split,
                    "loss": losses.reshape(-1),
                }
            )
            for key, value in point.row().items():
                frame[key] = value
            frames.append(frame)
    columns = [
        "label",
        *POINT_COLUMNS,
        "data_seed",
        "epoch",
        "split",
        "loss",
    ]
    return pd.concat(frames, ignore_index=True)[columns]


def versions() -> dict[str, str]:
    """python, torch, optuna and wdbench versions."""
    try:
        wdbench_version = metadata.version("wdbench")
    except metadata.PackageNotFoundError:
        wdbench_version = "unknown (not installed)"
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "optuna": optuna.__version__,
        "wdbench": wdbench_version,
    }


def run_info(
    settings: Settings,
    command: list[str],
    storage: str,
    device: torch.device,
    seeds: StudySeeds,
    times: tuple[str, str],
    data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``run.json`` record; ``command`` and ``storage`` must already be masked. ``data``
    describes what the study ran on (``studies.problem.StudyProblem.record``)."""
    resolved = dataclasses.asdict(settings)
    resolved["storage"] = storage
    device_name = str(device)
    if device.type == "cuda":
        device_name = f"{device} ({torch.cuda.get_device_name(device)})"
    return {
        "command": command,
        "study_name": settings.study_name,
        "storage": storage,
        "problem": settings.problem,
        "data": data,
        "settings": resolved,
        "versions": versions(),
        "device": device_name,
        "seeds": dataclasses.asdict(seeds),
        "started": times[0],
        "finished": times[1],
    }


def write_table(frame: pd.DataFrame, path: Path) -> None:
    """Write ``frame`` as Parquet (atomically: a reader never sees half a file)."""
    _write_atomically(path, lambda tmp: frame.to_parquet(tmp, index=False))


def write_json(record: dict[str, Any], path: Path) -> None:
    """Write ``record`` as indented JSON (NaN → null), atomically."""
    text = json.dumps(_clean(record), indent=2, default=str) + "\n"
    _write_atomically(path, lambda tmp: tmp.write_text(text))


def _write_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """``write`` a file of this writer's own beside ``path``, then rename it over ``path``: the
    workers of one study export the same files at the end, and with one shared temporary name
    one renamed the other's file away before the other's rename."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        write(tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value
