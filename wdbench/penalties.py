"""Penalty registry: value, (sub)gradient and proximal operator, on w only (never the bias).

Every penalty is an elastic net with two coefficients, an L1 part ``a`` and an L2 part ``c``::

    pen(w) = a‖w‖₁ + c/2 ‖w‖²,   ∇pen(w) = a·sign(w) + c·w,   prox_{η·pen}(v) = S(v, ηa) / (1 + ηc)

    none     a = 0       c = 0
    l2       a = 0       c = λ
    l1       a = λ       c = 0
    elastic  a = λρ      c = λ(1−ρ)     (ρ = ``l1_ratio``, as in scikit-learn)

``λ`` and ``ρ`` may be Python floats or tensors that broadcast against the weights (the population
kernel passes one value per configuration as a ``[K, 1]`` column), so one formula serves every path.
``sign(0) = 0``: the subgradient the lesson's autograd L1 uses. ``has_l1`` / ``has_l2`` say which
parts a penalty has (whatever λ and ρ), so a kernel can skip the arithmetic of an absent part.
The proximal operator is written once, in place (``prox_``): the update rules of
``wdbench.rules`` and ``Penalty.prox`` both call it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["PENALTIES", "Penalty", "get_penalty", "prox_", "soft_threshold", "soft_threshold_"]

Scalar = float | torch.Tensor


@dataclass(frozen=True)
class Penalty:
    """A penalty by name, as weights of its L1 and L2 parts (ρ-dependent for elastic)."""

    name: str
    formula: str
    uses_l1_ratio: bool
    l1_weight: float
    l2_weight: float

    @property
    def has_l1(self) -> bool:
        """Whether the penalty has an L1 part (l1, elastic): it breaks linearity, gives zeros."""
        return self.uses_l1_ratio or self.l1_weight != 0

    @property
    def has_l2(self) -> bool:
        """Whether the penalty has an L2 part (l2, elastic): a decay of w."""
        return self.uses_l1_ratio or self.l2_weight != 0

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
        return prox_(v.clone(), step * a, 1 + step * c, l1=self.has_l1, l2=self.has_l2)


def prox_(
    v: torch.Tensor,
    t: Scalar,
    shrink: Scalar,
    *,
    l1: bool,
    l2: bool,
    buffer: torch.Tensor | None = None,
) -> torch.Tensor:
    """v ← S(v, t) / shrink in place (t = step·a, shrink = 1 + step·c): the proximal operator of
    step·pen. ``l1`` / ``l2`` skip an absent part; ``buffer`` (v's shape) avoids an allocation."""
    if l1:
        soft_threshold_(v, t, buffer)
    if l2:
        v.div_(shrink)
    return v


def soft_threshold_(v: torch.Tensor, t: Scalar, buffer: torch.Tensor | None = None) -> torch.Tensor:
    """v ← S(v, t) = sign(v)·max(|v| − t, 0) in place, as v − clamp(v, −t, t): exact zeros inside
    [−t, t], NaN stays NaN. ``t`` is a number or a tensor broadcasting against v."""
    if not isinstance(t, torch.Tensor):
        t = torch.tensor(t, dtype=v.dtype, device=v.device)
    v.sub_(torch.clamp(v, min=-t, max=t, out=buffer))
    return v


def soft_threshold(v: torch.Tensor, t: Scalar) -> torch.Tensor:
    """S(v, t), out of place (``soft_threshold_`` on a copy)."""
    return soft_threshold_(v.clone(), t)


PENALTIES: dict[str, Penalty] = {
    p.name: p
    for p in (
        Penalty("none", "0", uses_l1_ratio=False, l1_weight=0.0, l2_weight=0.0),
        Penalty("l2", "λ/2‖w‖²", uses_l1_ratio=False, l1_weight=0.0, l2_weight=1.0),
        Penalty("l1", "λ‖w‖₁", uses_l1_ratio=False, l1_weight=1.0, l2_weight=0.0),
        Penalty(
            "elastic", "λ(ρ‖w‖₁ + (1−ρ)/2‖w‖²)", uses_l1_ratio=True, l1_weight=0.0, l2_weight=0.0
        ),
    )
}


def get_penalty(name: str) -> Penalty:
    """The registered penalty ``name`` (``ValueError`` naming the choices otherwise)."""
    try:
        return PENALTIES[name]
    except KeyError:
        raise ValueError(f"penalty must be one of {sorted(PENALTIES)}, got {name!r}") from None
