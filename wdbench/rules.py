"""The update rules, each written once, and the data loss every path differentiates.

A rule moves the weights w given the data gradient ∇ℓ of a batch, with η = ``lr`` and (a, c) the
L1 and L2 coefficients of the penalty (``wdbench.penalties``); the bias always takes the plain step
b ← b − η ∂ℓ/∂b (penalties never touch it). The table ``RULES``:

    coupled    w ← w − η(∇ℓ + ∇pen(w))            penalty (sub)gradient in the gradient the
                = w − ηc·w − η∇ℓ − ηa·sign(w)     optimizer sees; torch.optim.SGD(weight_decay)
    decoupled  w ← w − ηc·w − η∇ℓ                 decay outside the optimizer (none, l2):
                                                  SGDW / AdamW; for plain SGD ≡ coupled
    proximal   w ← prox_{η·pen}(w − η∇ℓ)          = S(w − η∇ℓ, ηa) / (1 + ηc): exact zeros
                                                  for l1 / elastic

Every rule is one in-place function ``step_(w, descend, factors, buffer)``: ``descend(w)``
subtracts η∇ℓ in place however the caller has ∇ℓ (the reference kernel and the single loops hold
it as a tensor; the full-space kernel as a batched product X_bᵀ·(η/B)·r), and ``factors`` holds
per-configuration η, ηa, ηc, 1 + ηc as numbers broadcasting against w (``[K, 1]`` or ``[1, K]``
columns, or 0-d tensors for one run). No step allocates given a ``buffer`` shaped like w, so the
fast kernels replay it as is. ``Rule.step`` is the out-of-place form on a copy. Without an L1 part
every rule is linear, w ← κ·w − μ·∇ℓ(w_old), and ``Rule.linear`` gives (κ, μ): what the row-space
kernel runs on instead of ``step_``.

The decay is applied as w − ηc·w, never as (1 − ηc)·w: in float32, 1 − ηc keeps only a few digits
of a small ηc (η = 0.003, λ = 10⁻³), a bias that 1000 steps turn into a 10⁻⁵ error.

Adding a rule is one ``Rule`` entry (its ``step_``, ``linear`` and the penalties it applies) plus
its tests; ``wdbench.config`` then lists it, and the conformance tests of ``tests/test_rules.py``
run it through the single loop, the reference kernel and the fast kernel. A rule with optimizer
state (momentum, Adam moments) would carry that state per configuration beside w.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from wdbench.penalties import Penalty, Scalar, prox_

__all__ = [
    "RULES",
    "Descend",
    "Factors",
    "Rule",
    "data_grad",
    "get_rule",
    "half_mse",
    "residual",
    "sgd_",
]

#: ``descend(w)``: w ← w − η∇ℓ in place.
Descend = Callable[[torch.Tensor], object]


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


@torch.no_grad()
def sgd_(params: list[torch.Tensor], lr: float, batch_size: int) -> None:
    """The lesson's in-place minibatch SGD: p ← p − η·p.grad / B, then clear the gradient."""
    for p in params:
        assert p.grad is not None
        p -= lr * p.grad / batch_size
        p.grad.zero_()


@dataclass(frozen=True, eq=False)
class Factors:
    """Per-configuration factors of a step: η, ηa, ηc and 1 + ηc, broadcasting against w, and
    which penalty parts are present (an absent part's arithmetic is skipped)."""

    lr: torch.Tensor
    lr_a: torch.Tensor
    lr_c: torch.Tensor
    shrink: torch.Tensor
    has_l1: bool
    has_l2: bool

    @classmethod
    def of(cls, penalty: Penalty, lr: Scalar, lam: Scalar, l1_ratio: Scalar,
           like: torch.Tensor) -> Factors:  # fmt: skip
        """Factors in ``like``'s dtype and device; ``lr``, ``lam``, ``l1_ratio`` are cast to it
        first, so a 0-d run and a ``[K, 1]`` column round the same products the same way."""
        lr, lam, l1_ratio = (torch.as_tensor(v, dtype=like.dtype, device=like.device)
                             for v in (lr, lam, l1_ratio))  # fmt: skip
        a, c = penalty.coefficients(lam, l1_ratio)
        lr_a, lr_c = lr * torch.as_tensor(a), lr * torch.as_tensor(c)
        return cls(lr, lr_a, lr_c, 1 + lr_c, penalty.has_l1, penalty.has_l2)

    def transposed(self) -> Factors:
        """``[K, 1]`` columns as ``[1, K]`` rows (the fast kernels keep configurations last)."""
        lr, lr_a, lr_c, shrink = (t.T for t in (self.lr, self.lr_a, self.lr_c, self.shrink))
        return Factors(lr, lr_a, lr_c, shrink, self.has_l1, self.has_l2)


Step = Callable[[torch.Tensor, Descend, Factors, "torch.Tensor | None"], None]
Linear = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class Rule:
    """An update rule by name: its in-place step, its linear form (no L1 part) and the
    penalties it applies (see the module docstring for the table)."""

    name: str
    formula: str
    penalties: tuple[str, ...]
    step_: Step
    linear: Linear

    def step(self, w: torch.Tensor, gw: torch.Tensor, factors: Factors) -> torch.Tensor:
        """The rule's new w for the data gradient ``gw``, on a copy of ``w``."""
        out = w.clone()
        buffer = torch.empty_like(out) if factors.has_l1 else None
        self.step_(out, lambda v: v.sub_(factors.lr * gw), factors, buffer)
        return out


def _decay_(w: torch.Tensor, f: Factors) -> None:
    """w ← w − ηc·w (nothing without an L2 part)."""
    if f.has_l2:
        w.addcmul_(w, f.lr_c, value=-1)


def _coupled_(w: torch.Tensor, descend: Descend, f: Factors, buffer: torch.Tensor | None) -> None:
    """w ← w − ηc·w − η∇ℓ − ηa·sign(w), every term at the old w (``buffer`` keeps sign(w))."""
    if f.has_l1:
        assert buffer is not None
        torch.sign(w, out=buffer)
    _decay_(w, f)
    descend(w)
    if f.has_l1:
        assert buffer is not None
        w.addcmul_(buffer, f.lr_a, value=-1)


def _decoupled_(w: torch.Tensor, descend: Descend, f: Factors, buffer: torch.Tensor | None) -> None:
    """w ← w − ηc·w − η∇ℓ: the decay outside the gradient step."""
    _decay_(w, f)
    descend(w)


def _proximal_(w: torch.Tensor, descend: Descend, f: Factors, buffer: torch.Tensor | None) -> None:
    """w ← prox_{η·pen}(w − η∇ℓ) = S(w − η∇ℓ, ηa) / (1 + ηc)."""
    descend(w)
    prox_(w, f.lr_a, f.shrink, l1=f.has_l1, l2=f.has_l2, buffer=buffer)


def _decay_first(lr: torch.Tensor, lr_c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """κ = 1 − ηc, μ = η: decay and gradient both at the old w."""
    return 1 - lr_c, lr


def _shrink_after(lr: torch.Tensor, lr_c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """κ = 1/(1 + ηc), μ = κη: the gradient step, then the shrinkage."""
    kappa = 1 / (1 + lr_c)
    return kappa, kappa * lr


ALL_PENALTIES = ("none", "l2", "l1", "elastic")

RULES: dict[str, Rule] = {
    r.name: r
    for r in (
        Rule("coupled", "w ← w − η(∇ℓ + ∇pen(w))", ALL_PENALTIES, _coupled_, _decay_first),
        Rule("decoupled", "w ← w − ηc·w − η∇ℓ", ("none", "l2"), _decoupled_, _decay_first),
        Rule("proximal", "w ← prox_{η·pen}(w − η∇ℓ)", ALL_PENALTIES, _proximal_, _shrink_after),
    )
}


def get_rule(name: str) -> Rule:
    """The registered rule ``name`` (``ValueError`` naming the choices otherwise)."""
    try:
        return RULES[name]
    except KeyError:
        raise ValueError(f"rule must be one of {sorted(RULES)}, got {name!r}") from None
