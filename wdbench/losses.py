"""The losses every path reports and differentiates, and the accuracy of a classifier.

One loss per task (``Problem.task``), always the mean over the rows of a batch or split::

    regression      ℓ = (1/m) Σ (ŷ − y)² / 2                 output width 1 (the lesson's loss)
    classification  ℓ = (1/m) Σ (logsumexp(z) − z_y)         output width n_classes (softmax
                                                              cross-entropy, y class indices)

``LOSSES[task]`` gives the loss with its gradient with respect to the outputs (of the batch
mean, what the networks' hand-written backward starts from). ``half_mse`` is the regression loss
of the linear model x·w + b, written with the operations the linear kernels replay.
``accuracy`` counts a row as correct when its largest logit is its class and every logit is
finite (a diverged run's predictions are undefined, so never correct).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

__all__ = [
    "LOSSES",
    "TASKS",
    "Loss",
    "accuracy",
    "cross_entropy",
    "get_loss",
    "half_mse",
    "half_squared_error",
    "residual",
]

TASKS = ("regression", "classification")


def residual(X: torch.Tensor, y: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """x·w + b − y for every row of X (``[..., B]``)."""
    return w @ X.mT + b - y


def half_mse(X: torch.Tensor, y: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean of (x·w + b − y)² / 2 over the rows: the linear model's loss every report uses."""
    r = residual(X, y, w, b)
    return (r * r).mean(-1) / 2


def half_squared_error(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean of (ŷ − y)² / 2 over the rows of ``out [..., m, 1]`` against ``y [..., m]``."""
    r = out[..., 0] - y
    return (r * r).mean(-1) / 2


def cross_entropy(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean softmax cross-entropy of logits ``out [..., m, C]`` against classes ``y [..., m]``."""
    picked = torch.gather(out, -1, y.unsqueeze(-1).expand(*out.shape[:-1], 1))[..., 0]
    return (torch.logsumexp(out, -1) - picked).mean(-1)


def accuracy(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Fraction of rows of ``out [..., m, C]`` whose largest logit is the class ``y [..., m]``
    (rows with a non-finite logit count as wrong)."""
    correct = (out.argmax(-1) == y) & torch.isfinite(out).all(-1)
    return correct.to(out.dtype).mean(-1)


def _half_squared_error_grad(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """∂ℓ/∂ŷ = (ŷ − y) / m."""
    return (out - y.unsqueeze(-1)).div_(out.shape[-2])


def _cross_entropy_grad(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """∂ℓ/∂z = (softmax(z) − onehot(y)) / m."""
    g = torch.softmax(out, -1)
    index = y.unsqueeze(-1).expand(*out.shape[:-1], 1)
    g.scatter_add_(-1, index, torch.full_like(g[..., :1], -1.0).expand_as(index))
    return g.div_(out.shape[-2])


@dataclass(frozen=True)
class Loss:
    """A task's loss: ``value(out, y)`` (mean over rows) and ``grad(out, y)`` = ∂value/∂out."""

    task: str
    formula: str
    value: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    grad: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    has_accuracy: bool

    def outputs(self, n_classes: int) -> int:
        """The output width: 1 for regression, the number of classes otherwise."""
        return n_classes if self.has_accuracy else 1


LOSSES: dict[str, Loss] = {
    "regression": Loss(
        "regression", "mean (ŷ − y)²/2", half_squared_error, _half_squared_error_grad, False
    ),
    "classification": Loss(
        "classification", "mean logsumexp(z) − z_y", cross_entropy, _cross_entropy_grad, True
    ),
}


def get_loss(task: str) -> Loss:
    """The loss of ``task`` (``ValueError`` naming the choices otherwise)."""
    try:
        return LOSSES[task]
    except KeyError:
        raise ValueError(f"task must be one of {list(LOSSES)}, got {task!r}") from None
