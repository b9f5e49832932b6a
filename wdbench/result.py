"""``TrainResult``: what one run produced, and its flat row form."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch

from wdbench.config import TrainConfig, loop_name

__all__ = ["STATUSES", "TrainResult", "weight_stats"]

STATUSES = ("ok", "diverged")


@dataclass(frozen=True, eq=False)
class TrainResult:
    """Final parameters and losses of one run (losses: ``wdbench.losses``, the mean half squared
    error of each split for regression, the mean cross-entropy for classification).

    ``curves`` maps ``"train"``, ``"val"``, ``"test"`` to the loss after each epoch (when asked
    for). A run whose parameters stop being finite stops early with ``status == "diverged"``.
    ``train_acc``, ``val_acc``, ``test_acc``: the accuracy of each split for classification,
    ``None`` for regression.

    For a network (``wdbench.networks``) ``w`` holds every weight matrix (``nn.Linear`` layout
    ``[out, in]``) flattened and concatenated in layer order, the weights the penalty acts on:
    ``w_norm`` and ``zero_fraction`` are over them. ``biases`` holds every bias the same way
    (``None`` for the linear model) and ``b`` is the output layer's bias when it has one
    output (regression), NaN otherwise.
    """

    config: TrainConfig
    w: torch.Tensor
    b: float
    train_loss: float
    val_loss: float
    test_loss: float
    w_norm: float
    zero_fraction: float
    status: str
    epochs_run: int
    curves: dict[str, list[float]] | None = None
    train_acc: float | None = None
    val_acc: float | None = None
    test_acc: float | None = None
    biases: torch.Tensor | None = None

    def to_row(self) -> dict[str, Any]:
        """Config fields (``rule``, ``impl`` and their legacy ``loop`` name among them) and scalar
        results as one flat record (for a DataFrame); the accuracies are ``None`` for
        regression."""
        row = dataclasses.asdict(self.config)
        row.update(
            loop=loop_name(self.config.rule, self.config.impl),
            b=self.b,
            train_loss=self.train_loss,
            val_loss=self.val_loss,
            test_loss=self.test_loss,
            w_norm=self.w_norm,
            zero_fraction=self.zero_fraction,
            status=self.status,
            epochs_run=self.epochs_run,
            train_acc=self.train_acc,
            val_acc=self.val_acc,
            test_acc=self.test_acc,
        )
        return row


def weight_stats(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(‖w‖₂, fraction of exact zeros) over the last dimension."""
    return torch.linalg.vector_norm(w, dim=-1), (w == 0).to(w.dtype).mean(-1)
