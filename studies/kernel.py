"""The one place the study calls the training kernel: S problems × K configs → ``[S, K]`` arrays.

``wdbench.train_population`` trains the whole batch in one computation; entry ``[s, k]`` equals
``wdbench.train(problems[s], configs[k])``. If the installed ``wdbench`` has no population kernel,
the same arrays come from a loop over ``wdbench.train`` (slow, same numbers).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

import wdbench
from wdbench import Problem, TrainConfig

__all__ = ["Evaluation", "evaluate"]

SPLITS = ("train", "val", "test")


@dataclass(frozen=True, eq=False)
class Evaluation:
    """Final losses and weight statistics ``[S, K]`` (float64), ``diverged [S, K]`` (bool).

    ``curves`` (when asked for) maps ``train`` / ``val`` / ``test`` to ``[S, K, epochs]`` losses
    after each epoch (NaN past a diverged run's last epoch).
    """

    train_loss: np.ndarray
    val_loss: np.ndarray
    test_loss: np.ndarray
    w_norm: np.ndarray
    zero_fraction: np.ndarray
    diverged: np.ndarray
    curves: dict[str, np.ndarray] | None = None


def evaluate(
    problems: Sequence[Problem],
    configs: Sequence[TrainConfig],
    device: torch.device,
    curves: bool = False,
) -> Evaluation:
    """Train every config on every problem (same train seed semantics as ``wdbench.train``)."""
    population = getattr(wdbench, "train_population", None)
    if population is None:
        return _loop(problems, configs, device, curves)
    result = population(list(problems), list(configs), device=device, curves=curves,
                        keep_weights=False)
    return _from_population(result)


def _array(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().to(torch.float64).numpy()
    return np.asarray(value, dtype=np.float64)


def _from_population(result: Any) -> Evaluation:
    diverged = result.diverged
    diverged = diverged.cpu().numpy() if isinstance(diverged, torch.Tensor) else diverged
    curves = None
    if result.curves is not None:
        curves = {split: _array(result.curves[split]) for split in SPLITS}
    return Evaluation(
        train_loss=_array(result.train_loss),
        val_loss=_array(result.val_loss),
        test_loss=_array(result.test_loss),
        w_norm=_array(result.w_norm),
        zero_fraction=_array(result.zero_fraction),
        diverged=np.asarray(diverged, dtype=bool),
        curves=curves,
    )


def _loop(
    problems: Sequence[Problem], configs: Sequence[TrainConfig], device: torch.device,
    curves: bool,
) -> Evaluation:
    shape = (len(problems), len(configs))
    fields = {name: np.full(shape, np.nan) for name in
              ("train_loss", "val_loss", "test_loss", "w_norm", "zero_fraction")}
    diverged = np.zeros(shape, dtype=bool)
    epochs = max((c.epochs for c in configs), default=0)
    history = {split: np.full((*shape, epochs), np.nan) for split in SPLITS} if curves else None
    for s, problem in enumerate(problems):
        for k, config in enumerate(configs):
            run = wdbench.train(problem, config, device=device, curves=curves)
            for name, table in fields.items():
                table[s, k] = getattr(run, name)
            diverged[s, k] = run.status != "ok"
            if history is not None and run.curves is not None:
                for split in SPLITS:
                    values = run.curves[split]
                    history[split][s, k, : len(values)] = values
    return Evaluation(
        train_loss=fields["train_loss"],
        val_loss=fields["val_loss"],
        test_loss=fields["test_loss"],
        w_norm=fields["w_norm"],
        zero_fraction=fields["zero_fraction"],
        diverged=diverged,
        curves=history,
    )
