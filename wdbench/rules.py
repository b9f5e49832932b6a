"""The update rules, each written once, and the linear model's data gradient (its loss is
``wdbench.losses.half_mse``).

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

With an optimizer that keeps state (``wdbench.optimizers``: momentum, Adam) a rule is three
parts around the optimizer's step p ← p − η·d(g), where g is what the optimizer sees
(``Rule.update_``)::

                 into g (grad_)       before the step (before_)   after the step (after_)
    coupled      g ← ∇ℓ + ∇pen(w)     —                           —
    decoupled    g ← ∇ℓ               w ← w − ηc·w                —
    proximal     g ← ∇ℓ               —                           w ← S(w, ηa) / (1 + ηc)

so coupled is ``torch.optim.SGD/Adam(weight_decay=λ)`` (L1: the subgradient a·sign(w) in g),
decoupled is AdamW (its decay comes first, at the old w, as ``torch.optim.AdamW`` does) and SGDW,
and proximal is the decoupled form of L1 and elastic: the proximal step of the whole penalty after
the optimizer's step. With plain SGD, ``update_`` is ``step_`` up to rounding (a tested identity;
``step_`` stays the plain-SGD form the fast stateless kernels replay).

Adding a rule is one ``Rule`` entry (its ``step_``, ``linear``, its three parts and the penalties
it applies) plus its tests; ``wdbench.config`` then lists it, and the conformance tests of
``tests/test_rules.py`` run it through the single loop, the reference kernel and the fast kernels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from wdbench.losses import residual
from wdbench.optimizers import Optimizer, OptimizerState
from wdbench.penalties import Penalty, Scalar, prox_

__all__ = [
    "RULES",
    "Descend",
    "Factors",
    "Rule",
    "data_grad",
    "get_rule",
    "sgd_",
]

#: ``descend(w)``: w ← w − η∇ℓ in place.
Descend = Callable[[torch.Tensor], object]


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
    """Per-configuration factors of a step: η, ηa, ηc and 1 + ηc, broadcasting against w, the
    coefficients a and c themselves (for the gradient an optimizer sees), and which penalty
    parts are present (an absent part's arithmetic is skipped)."""

    lr: torch.Tensor
    lr_a: torch.Tensor
    lr_c: torch.Tensor
    shrink: torch.Tensor
    has_l1: bool
    has_l2: bool
    a: torch.Tensor | None = None
    c: torch.Tensor | None = None

    @classmethod
    def of(cls, penalty: Penalty, lr: Scalar, lam: Scalar, l1_ratio: Scalar,
           like: torch.Tensor) -> Factors:  # fmt: skip
        """Factors in ``like``'s dtype and device; ``lr``, ``lam``, ``l1_ratio`` are cast to it
        first, so a 0-d run and a ``[K, 1]`` column round the same products the same way."""
        lr, lam, l1_ratio = (torch.as_tensor(v, dtype=like.dtype, device=like.device)
                             for v in (lr, lam, l1_ratio))  # fmt: skip
        a, c = (torch.as_tensor(v) for v in penalty.coefficients(lam, l1_ratio))
        lr_a, lr_c = lr * a, lr * c
        return cls(lr, lr_a, lr_c, 1 + lr_c, penalty.has_l1, penalty.has_l2, a, c)

    def transposed(self) -> Factors:
        """``[K, 1]`` columns as ``[1, K]`` rows (the fast kernels keep configurations last)."""
        lr, lr_a, lr_c, shrink = (t.T for t in (self.lr, self.lr_a, self.lr_c, self.shrink))
        a, c = (None if t is None else t.T for t in (self.a, self.c))
        return Factors(lr, lr_a, lr_c, shrink, self.has_l1, self.has_l2, a, c)


Step = Callable[[torch.Tensor, Descend, Factors, "torch.Tensor | None"], None]
Linear = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
#: ``grad_(g, w, factors, buffer)``: what the rule adds to the gradient the optimizer sees.
GradPart = Callable[[torch.Tensor, torch.Tensor, Factors, "torch.Tensor | None"], None]
#: ``part_(w, factors, buffer)``: what the rule does to w before or after the optimizer's step.
Part = Callable[[torch.Tensor, Factors, "torch.Tensor | None"], None]


@dataclass(frozen=True)
class Rule:
    """An update rule by name: its in-place step, its linear form (no L1 part) and the
    penalties it applies (see the module docstring for the table)."""

    name: str
    formula: str
    penalties: tuple[str, ...]
    step_: Step
    linear: Linear
    grad_: GradPart
    before_: Part
    after_: Part

    def update_(
        self,
        w: torch.Tensor,
        g: torch.Tensor,
        optimizer: Optimizer,
        state: OptimizerState,
        factors: Factors,
        buffer: torch.Tensor | None,
    ) -> None:
        """One step of the rule through ``optimizer``, in place: the penalty into the data
        gradient ``g`` (coupled), the decay before the step (decoupled), the optimizer's step,
        the proximal step after it (proximal). ``g`` is used as scratch; ``buffer`` (w's shape)
        is needed with an L1 part."""
        self.grad_(g, w, factors, buffer)
        self.before_(w, factors, buffer)
        optimizer.step_(w, g, state, factors.lr)
        self.after_(w, factors, buffer)

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
    _decay_part_(w, f, buffer)
    descend(w)


def _proximal_(w: torch.Tensor, descend: Descend, f: Factors, buffer: torch.Tensor | None) -> None:
    """w ← prox_{η·pen}(w − η∇ℓ) = S(w − η∇ℓ, ηa) / (1 + ηc)."""
    descend(w)
    _prox_part_(w, f, buffer)


def _penalty_grad_(
    g: torch.Tensor, w: torch.Tensor, f: Factors, buffer: torch.Tensor | None
) -> None:
    """g ← g + c·w + a·sign(w): the penalty's (sub)gradient in the gradient the optimizer sees."""
    assert f.a is not None and f.c is not None
    if f.has_l2:
        g.addcmul_(w, f.c)
    if f.has_l1:
        assert buffer is not None
        g.addcmul_(torch.sign(w, out=buffer), f.a)


def _decay_part_(w: torch.Tensor, f: Factors, buffer: torch.Tensor | None) -> None:
    """w ← w − ηc·w, before the optimizer's step."""
    _decay_(w, f)


def _prox_part_(w: torch.Tensor, f: Factors, buffer: torch.Tensor | None) -> None:
    """w ← S(w, ηa) / (1 + ηc), after the optimizer's step."""
    prox_(w, f.lr_a, f.shrink, l1=f.has_l1, l2=f.has_l2, buffer=buffer)


def _no_grad_(g: torch.Tensor, w: torch.Tensor, f: Factors, buffer: torch.Tensor | None) -> None:
    """Nothing into the gradient."""


def _nothing_(w: torch.Tensor, f: Factors, buffer: torch.Tensor | None) -> None:
    """Nothing before or after the step."""


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
        Rule(
            "coupled",
            "w ← w − η(∇ℓ + ∇pen(w))",
            ALL_PENALTIES,
            _coupled_,
            _decay_first,
            _penalty_grad_,
            _nothing_,
            _nothing_,
        ),
        Rule(
            "decoupled",
            "w ← w − ηc·w − η∇ℓ",
            ("none", "l2"),
            _decoupled_,
            _decay_first,
            _no_grad_,
            _decay_part_,
            _nothing_,
        ),
        Rule(
            "proximal",
            "w ← prox_{η·pen}(w − η∇ℓ)",
            ALL_PENALTIES,
            _proximal_,
            _shrink_after,
            _no_grad_,
            _nothing_,
            _prox_part_,
        ),
    )
}


def get_rule(name: str) -> Rule:
    """The registered rule ``name`` (``ValueError`` naming the choices otherwise)."""
    try:
        return RULES[name]
    except KeyError:
        raise ValueError(f"rule must be one of {sorted(RULES)}, got {name!r}") from None
