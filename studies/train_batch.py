"""The one place the study trains: S problems × K configs → ``[S, K]`` arrays.

``wdbench.train_population`` trains the whole batch in one computation (linear models, or
networks: an MLP, or any model on a classification problem); entry ``[s, k]`` equals
``wdbench.train(problems[s], configs[k])``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from wdbench import PopulationResult, Problem, TrainConfig, train_population

__all__ = ["ACCURACIES", "Evaluation", "evaluate"]

#: The accuracy of each split (classification only).
ACCURACIES = ("train_acc", "val_acc", "test_acc")


@dataclass(frozen=True, eq=False)
class Evaluation:
    """Final losses and weight statistics ``[S, K]`` (float64), ``diverged [S, K]`` (bool).

    ``curves`` (when asked for) maps ``train`` / ``val`` / ``test`` (or the splits asked for) to
    ``[S, K, epochs]`` losses after each epoch (NaN past a diverged run's last epoch).
    ``train_acc``, ``val_acc`` and ``test_acc`` ``[S, K]`` are the accuracies of a
    classification problem (None for regression).
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
    curves: bool | Sequence[str] = False,
) -> Evaluation:
    """Train every config on every problem (same train seed semantics as ``wdbench.train``);
    ``curves``: ``wdbench.train_population``'s."""
    result = train_population(
        list(problems), list(configs), device=device, curves=curves, keep_weights=False
    )
    return _from_population(result)


def _array(value: torch.Tensor) -> np.ndarray:
    return value.detach().cpu().to(torch.float64).numpy()


def _from_population(result: PopulationResult) -> Evaluation:
    curves = None
    if result.curves is not None:
        curves = {split: _array(curve) for split, curve in result.curves.items()}
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
