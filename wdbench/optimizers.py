"""The optimizers a rule's step runs through: plain SGD, SGD with momentum (heavy ball or
Nesterov) and Adam, each written once as an in-place step ``p ← p − η·d(g)`` on a gradient g.

With g the gradient the optimizer sees (the data gradient, plus the penalty's (sub)gradient under
the coupled rule: ``wdbench.rules``), η = lr, t the step count (1 at the first step)::

    sgd       p ← p − η·g                                          torch.optim.SGD
    momentum  u ← μ·u + g;  p ← p − η·u   (Nesterov: p − η(g + μu)) torch.optim.SGD(momentum,
                                                                     nesterov), dampening 0
    adam      m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²               torch.optim.Adam / AdamW
              p ← p − η/(1−β₁ᵗ) · m / (√v/√(1−β₂ᵗ) + ε)

State (u, or m and v) starts at zero, as torch's does (torch's first momentum buffer is a copy of
g: the same number, μ·0 + g = g). The step count and the bias corrections are per group of
parameters, Python numbers as in torch; η may be a number, a 0-d tensor (one run) or a column of
per-configuration values broadcasting against p (the population), so one function serves every
path. A step allocates nothing beyond small per-configuration factors and uses g as scratch: g is
garbage afterwards. Adam's last line is computed as p ← p − m / D with
D = (√v·(1−β₁ᵗ)/(η√(1−β₂ᵗ)) + ε(1−β₁ᵗ)/η), the same number up to rounding, in three passes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

__all__ = ["OPTIMIZERS", "Optimizer", "OptimizerState"]

Scalar = float | torch.Tensor

#: Optimizer name → (its state buffers, the torch.optim class it is: coupled / decoupled decay).
OPTIMIZERS: dict[str, tuple[tuple[str, ...], str, str]] = {
    "sgd": ((), "SGD(weight_decay=λ)", "SGD(weight_decay=λ) (the same update)"),
    "momentum": (("momentum_buffer",), "SGD(momentum, nesterov, weight_decay=λ)", "SGDW"),
    "adam": (("exp_avg", "exp_avg_sq"), "Adam(weight_decay=λ)", "AdamW(weight_decay=λ)"),
}


@dataclass
class OptimizerState:
    """One parameter's optimizer state: named buffers shaped like it, and the step count."""

    buffers: dict[str, torch.Tensor]
    steps: int = 0


@dataclass(frozen=True)
class Optimizer:
    """An optimizer by name with its hyperparameters (torch's defaults; ``momentum`` and
    ``nesterov`` are read by ``"momentum"``, ``beta1``, ``beta2``, ``eps`` by ``"adam"``)."""

    name: str = "sgd"
    momentum: float = 0.9
    nesterov: bool = False
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8

    def __post_init__(self) -> None:
        if self.name not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)}, got {self.name!r}")

    @property
    def stateful(self) -> bool:
        """Whether the optimizer keeps state (anything but plain SGD)."""
        return bool(OPTIMIZERS[self.name][0])

    def state(self, like: torch.Tensor) -> OptimizerState:
        """Zero state for a parameter shaped like ``like``."""
        return OptimizerState({n: torch.zeros_like(like) for n in OPTIMIZERS[self.name][0]})

    def step_(self, p: torch.Tensor, g: torch.Tensor, state: OptimizerState, lr: Scalar) -> None:
        """p ← p − η·d(g) in place, advancing ``state`` (``g`` is used as scratch)."""
        state.steps += 1
        _STEPS[self.name](self, p, g, state, lr)


def _sgd_step_(
    opt: Optimizer, p: torch.Tensor, g: torch.Tensor, state: OptimizerState, lr: Scalar
) -> None:
    """p ← p − η·g."""
    _descend_(p, g, lr)


def _momentum_step_(
    opt: Optimizer, p: torch.Tensor, g: torch.Tensor, state: OptimizerState, lr: Scalar
) -> None:
    """u ← μ·u + g; p ← p − η·u, or p ← p − η·(g + μ·u) with Nesterov (torch's order)."""
    u = state.buffers["momentum_buffer"]
    u.mul_(opt.momentum).add_(g)
    if opt.nesterov:
        _descend_(p, g.add_(u, alpha=opt.momentum), lr)
    else:
        _descend_(p, u, lr)


def _adam_step_(
    opt: Optimizer, p: torch.Tensor, g: torch.Tensor, state: OptimizerState, lr: Scalar
) -> None:
    """Adam's moments (torch's order), then p ← p − m / D (see the module docstring)."""
    m, v = state.buffers["exp_avg"], state.buffers["exp_avg_sq"]
    m.lerp_(g, 1 - opt.beta1)
    v.mul_(opt.beta2).addcmul_(g, g, value=1 - opt.beta2)
    bc1 = 1 - opt.beta1**state.steps
    bc2 = 1 - opt.beta2**state.steps
    if isinstance(lr, torch.Tensor):
        lr = lr.to(p.dtype)
        scale, shift = bc1 / (lr * math.sqrt(bc2)), (opt.eps * bc1) / lr
        torch.addcmul(shift, torch.sqrt(v, out=g), scale, out=g)
    else:
        torch.sqrt(v, out=g).mul_(bc1 / (lr * math.sqrt(bc2))).add_(opt.eps * bc1 / lr)
    p.addcdiv_(m, g, value=-1)


def _descend_(p: torch.Tensor, d: torch.Tensor, lr: Scalar) -> None:
    """p ← p − η·d (η a number or a tensor broadcasting against p)."""
    if isinstance(lr, torch.Tensor):
        p.addcmul_(d, lr, value=-1)
    else:
        p.add_(d, alpha=-lr)


_STEPS: dict[str, Callable[..., None]] = {
    "sgd": _sgd_step_,
    "momentum": _momentum_step_,
    "adam": _adam_step_,
}
