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
    """Final parameters and losses of one run (losses: mean half squared error of each split).

    ``curves`` maps ``"train"``, ``"val"``, ``"test"`` to the loss after each epoch (when asked
    for). A run whose parameters stop being finite stops early with ``status == "diverged"``.
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

    def to_row(self) -> dict[str, Any]:
        """Config fields (``rule``, ``impl`` and their legacy ``loop`` name among them) and scalar
        results as one flat record (for a DataFrame)."""
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
        )
        return row


def weight_stats(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(‖w‖₂, fraction of exact zeros) over the last dimension."""
    return torch.linalg.vector_norm(w, dim=-1), (w == 0).to(w.dtype).mean(-1)
