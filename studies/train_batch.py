"""The one place the study trains: S problems × K configs → ``[S, K]`` arrays.

``wdbench.train_population`` trains the whole batch in one computation; entry ``[s, k]`` equals
``wdbench.train(problems[s], configs[k])``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from wdbench import PopulationResult, Problem, TrainConfig, train, train_population
from wdbench.networks import uses_network
from wdbench.training import SPLITS

__all__ = ["ACCURACIES", "Evaluation", "evaluate"]

#: The accuracy of each split (classification only).
ACCURACIES = ("train_acc", "val_acc", "test_acc")


@dataclass(frozen=True, eq=False)
class Evaluation:
    """Final losses and weight statistics ``[S, K]`` (float64), ``diverged [S, K]`` (bool).

    ``curves`` (when asked for) maps ``train`` / ``val`` / ``test`` to ``[S, K, epochs]`` losses
    after each epoch (NaN past a diverged run's last epoch). ``train_acc``, ``val_acc`` and
    ``test_acc`` ``[S, K]`` are the accuracies of a classification problem (None for regression).
    """

    train_loss: np.ndarray
    val_loss: np.ndarray
    test_loss: np.ndarray
    w_norm: np.ndarray
    zero_fraction: np.ndarray
    diverged: np.ndarray
    curves: dict[str, np.ndarray] | None = None
    train_acc: np.ndarray | None = None
    val_acc: np.ndarray | None = None
    test_acc: np.ndarray | None = None

    @property
    def classification(self) -> bool:
        """Whether the problems are classification problems (accuracies present)."""
        return self.val_acc is not None


def evaluate(
    problems: Sequence[Problem],
    configs: Sequence[TrainConfig],
    device: torch.device,
    curves: bool = False,
) -> Evaluation:
    """Train every config on every problem (same train seed semantics as ``wdbench.train``)."""
    if any(uses_network(c.model, p.task) for c in configs for p in problems):
        return _one_by_one(problems, configs, device, curves)
    result = train_population(
        list(problems), list(configs), device=device, curves=curves, keep_weights=False
    )
    return _from_population(result)


def _array(value: torch.Tensor) -> np.ndarray:
    return value.detach().cpu().to(torch.float64).numpy()


def _from_population(result: PopulationResult) -> Evaluation:
    curves = None
    if result.curves is not None:
        curves = {split: _array(result.curves[split]) for split in SPLITS}
    return Evaluation(
        train_loss=_array(result.train_loss),
        val_loss=_array(result.val_loss),
        test_loss=_array(result.test_loss),
        w_norm=_array(result.w_norm),
        zero_fraction=_array(result.zero_fraction),
        diverged=result.diverged.cpu().numpy().astype(bool),
        curves=curves,
        **{name: _maybe(getattr(result, name)) for name in ACCURACIES},
    )


def _maybe(value: torch.Tensor | None) -> np.ndarray | None:
    return None if value is None else _array(value)


def _one_by_one(
    problems: Sequence[Problem],
    configs: Sequence[TrainConfig],
    device: torch.device,
    curves: bool,
) -> Evaluation:
    """``evaluate`` through ``wdbench.train``, one network at a time."""
    runs = [[train(p, c, device=device, curves=curves) for c in configs] for p in problems]

    def grid(name: str) -> np.ndarray:
        return np.array([[float(getattr(r, name)) for r in row] for row in runs])

    accuracies = {name: grid(name) if problems[0].n_classes else None for name in ACCURACIES}
    history = None
    if curves:
        epochs = max(c.epochs for c in configs)
        history = {
            split: np.array(
                [
                    [
                        list(r.curves[split]) + [np.nan] * (epochs - len(r.curves[split]))  # type: ignore[index]
                        for r in row
                    ]
                    for row in runs
                ]
            )
            for split in SPLITS
        }
    return Evaluation(
        train_loss=grid("train_loss"),
        val_loss=grid("val_loss"),
        test_loss=grid("test_loss"),
        w_norm=grid("w_norm"),
        zero_fraction=grid("zero_fraction"),
        diverged=np.array([[r.status == "diverged" for r in row] for row in runs]),
        curves=history,
        **accuracies,
    )
