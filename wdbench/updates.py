"""The update rules, each written once as a pure function of tensors.

Shapes broadcast: a single run carries ``w: [d]`` and ``b: [1]``; the population kernel carries
``w: [..., K, d]`` and ``b: [..., K, 1]`` with per-configuration ``lr``, ``lam`` and ``l1_ratio`` as
``[K, 1]`` columns. The data loss of a batch is ℓ = (1/B) Σ (x·w + b − y)² / 2; η = ``lr``.

    sgd        w ← w − η(∇ℓ + ∇pen(w))          (coupled; what ``scratch`` and ``optim`` compute)
    decoupled  w ← (1 − ηc)w − η∇ℓ              (c: the penalty's L2 coefficient; λ for l2)
    proximal   w ← prox_{η·pen}(w − η∇ℓ)        (exact zeros for l1 / elastic)

The bias always takes a plain step b ← b − η ∂ℓ/∂b: penalties never touch it.
"""

from __future__ import annotations

import torch

from wdbench.penalties import Penalty, Scalar

__all__ = [
    "data_grad",
    "decoupled_step",
    "half_mse",
    "proximal_step",
    "residual",
    "sgd_",
    "sgd_step",
]


def residual(X: torch.Tensor, y: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """x·w + b − y for every row of X (``[..., B]``)."""
    return w @ X.mT + b - y


def half_mse(X: torch.Tensor, y: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean of (x·w + b − y)² / 2 over the rows: the loss every report uses."""
    r = residual(X, y, w, b)
    return (r * r).mean(-1) / 2


def data_grad(
    X: torch.Tensor, y: torch.Tensor, w: torch.Tensor, b: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(∂ℓ/∂w, ∂ℓ/∂b) of the batch mean half squared error."""
    r = residual(X, y, w, b)
    return r @ X / X.shape[-2], r.mean(-1, keepdim=True)


def sgd_step(
    w: torch.Tensor, gw: torch.Tensor, lr: Scalar, penalty: Penalty, lam: Scalar, l1_ratio: Scalar
) -> torch.Tensor:
    """Coupled (sub)gradient step on the penalized loss."""
    return w - lr * (gw + penalty.grad(w, lam, l1_ratio))


def decoupled_step(w: torch.Tensor, gw: torch.Tensor, lr: Scalar, decay: Scalar) -> torch.Tensor:
    """Decoupled weight decay: w ← (1 − η·decay)·w − η∇ℓ."""
    return (1 - lr * decay) * w - lr * gw


def proximal_step(
    w: torch.Tensor, gw: torch.Tensor, lr: Scalar, penalty: Penalty, lam: Scalar, l1_ratio: Scalar
) -> torch.Tensor:
    """A data-loss step, then the penalty's proximal operator with step η."""
    return penalty.prox(w - lr * gw, lr, lam, l1_ratio)


@torch.no_grad()
def sgd_(params: list[torch.Tensor], lr: float, batch_size: int) -> None:
    """The lesson's in-place minibatch SGD: p ← p − η·p.grad / B, then clear the gradient."""
    for p in params:
        assert p.grad is not None
        p -= lr * p.grad / batch_size
        p.grad.zero_()
