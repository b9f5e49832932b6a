"""Penalty registry: value, (sub)gradient and proximal operator, on w only (never the bias).

Every penalty is an elastic net with two coefficients, an L1 part ``a`` and an L2 part ``c``::

    pen(w) = a‖w‖₁ + c/2 ‖w‖²,   ∇pen(w) = a·sign(w) + c·w,   prox_{η·pen}(v) = S(v, ηa) / (1 + ηc)

    none     a = 0       c = 0
    l2       a = 0       c = λ
    l1       a = λ       c = 0
    elastic  a = λρ      c = λ(1−ρ)     (ρ = ``l1_ratio``, as in scikit-learn)

``λ`` and ``ρ`` may be Python floats or tensors that broadcast against the weights (the population
kernel passes one value per configuration as a ``[K, 1]`` column), so one formula serves every path.
``sign(0) = 0``: the subgradient the lesson's autograd L1 uses.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["PENALTIES", "Penalty", "get_penalty"]

Scalar = float | torch.Tensor


@dataclass(frozen=True)
class Penalty:
    """A penalty by name, as weights of its L1 and L2 parts (ρ-dependent for elastic)."""

    name: str
    formula: str
    uses_l1_ratio: bool
    l1_weight: float
    l2_weight: float

    def coefficients(self, lam: Scalar, l1_ratio: Scalar = 0.5) -> tuple[Scalar, Scalar]:
        """``(a, c)``: the L1 and L2 coefficients at strength ``lam``."""
        if self.uses_l1_ratio:
            return lam * l1_ratio, lam * (1 - l1_ratio)
        return lam * self.l1_weight, lam * self.l2_weight

    def value(self, w: torch.Tensor, lam: Scalar, l1_ratio: Scalar = 0.5) -> torch.Tensor:
        """pen(w), summed over the last dimension."""
        a, c = self.coefficients(lam, l1_ratio)
        return (a * w.abs()).sum(-1) + (c * w * w).sum(-1) / 2

    def grad(self, w: torch.Tensor, lam: Scalar, l1_ratio: Scalar = 0.5) -> torch.Tensor:
        """A subgradient of pen at w (``sign(0) = 0``)."""
        a, c = self.coefficients(lam, l1_ratio)
        return a * torch.sign(w) + c * w

    def prox(
        self, v: torch.Tensor, step: Scalar, lam: Scalar, l1_ratio: Scalar = 0.5
    ) -> torch.Tensor:
        """argmin_w ‖w − v‖²/2 + step·pen(w) = S(v, step·a) / (1 + step·c)."""
        a, c = self.coefficients(lam, l1_ratio)
        return soft_threshold(v, step * a) / (1 + step * c)


def soft_threshold(v: torch.Tensor, t: Scalar) -> torch.Tensor:
    """S(v, t) = sign(v)·max(|v| − t, 0); exact zeros inside [−t, t]."""
    return torch.sign(v) * torch.clamp(v.abs() - t, min=0)


PENALTIES: dict[str, Penalty] = {
    p.name: p
    for p in (
        Penalty("none", "0", uses_l1_ratio=False, l1_weight=0.0, l2_weight=0.0),
        Penalty("l2", "λ/2‖w‖²", uses_l1_ratio=False, l1_weight=0.0, l2_weight=1.0),
        Penalty("l1", "λ‖w‖₁", uses_l1_ratio=False, l1_weight=1.0, l2_weight=0.0),
        Penalty("elastic", "λ(ρ‖w‖₁ + (1−ρ)/2‖w‖²)", uses_l1_ratio=True, l1_weight=0.0,
                l2_weight=0.0),
    )
}


def get_penalty(name: str) -> Penalty:
    """The registered penalty ``name`` (``ValueError`` naming the choices otherwise)."""
    try:
        return PENALTIES[name]
    except KeyError:
        raise ValueError(f"penalty must be one of {sorted(PENALTIES)}, got {name!r}") from None
