"""The full-space kernel: any penalty, both rules, one shared batch order, in-place steps.

The same rules as ``train_group_reference``, with (a, c) the L1 and L2 coefficients per
configuration (``[K, 1]``), r = X_b·w + b − y_b and ∇ℓ = X_bᵀr/B:

    sgd       w ← w − ηc·w − η·∇ℓ − ηa·sign(w)            (all at the old w)
    proximal  v = w − η·∇ℓ;  w ← (v − clamp(v, −ηa, ηa)) / (1 + ηc)

The decay is applied as w − ηc·w, never as (1 − ηc)·w: in float32, 1 − ηc keeps only a few
digits of a small ηc (η = 0.003, λ = 10⁻³), a bias that 1000 steps turn into a 10⁻⁵ error.

``v − clamp(v, −t, t)`` is the soft threshold S(v, t) (exact zeros inside [−t, t]). Each epoch's
rows are gathered once in the epoch's order, so a batch is a contiguous slice; every step runs on
preallocated buffers (no allocation per step, no host synchronization).
"""

from __future__ import annotations

import torch

from wdbench._group import DivergenceLog, EpochHook, Group, GroupOutput

__all__ = ["train_group_fullspace"]


@torch.no_grad()
def train_group_fullspace(group: Group, on_epoch: EpochHook | None = None) -> GroupOutput:
    """Train a shared-order group in the d-dimensional weight space (see module)."""
    X = group.X
    S, K = int(X.shape[0]), group.size
    w = group.w0.T.expand(S, -1, -1).contiguous()  # [S, d, K]
    b = torch.zeros(S, 1, K, dtype=X.dtype, device=X.device)
    log = DivergenceLog(group.epochs, b[:, 0])
    rule = _Rule(group)
    resid, bias_step = torch.empty(S, group.batch_size, K, dtype=X.dtype, device=X.device), b.clone()
    for epoch, steps in enumerate(_epoch_steps(group)):
        for X_b, X_bt, y_b in steps:
            size = X_b.shape[1]
            r = resid[:, :size]
            torch.bmm(X_b, w, out=r)
            r.add_(b).sub_(y_b)
            torch.sum(r, 1, keepdim=True, out=bias_step)
            b.addcmul_(bias_step, rule.lr_b[size], value=-1)
            rule.step(w, r.mul_(rule.lr_b[size]), X_bt)
        log.record(epoch, w.mT, b.mT)
        if on_epoch is not None:
            on_epoch(epoch, w.mT, b.mT)
    return GroupOutput(w=w.mT.contiguous(), b=b[:, 0], bad_epoch=log.bad_epoch())


def _epoch_steps(group: Group) -> list[list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]]:
    """Every step's ``(X_b [S, B, d], X_bᵀ [S, d, B], y_b [S, B, 1])``: the training rows are
    gathered once in step order for the whole run, so a batch is a slice."""
    order, size = group.order[0], group.batch_size
    X_steps = group.X[:, order].transpose(0, 1).contiguous()  # [E, S, n, d]
    X_steps_t = X_steps.mT.contiguous()  # [E, S, d, n]
    y_steps = group.y[:, order].transpose(0, 1).unsqueeze(-1).contiguous()  # [E, S, n, 1]
    n = int(order.shape[1])
    return [
        [
            (X_steps[e, :, start : start + size], X_steps_t[e, :, :, start : start + size],
             y_steps[e, :, start : start + size])
            for start in range(0, n, size)
        ]
        for e in range(order.shape[0])
    ]


class _Rule:
    """The weight update of the group's rule, in place on ``w [S, d, K]`` given (η/B)·r."""

    def __init__(self, group: Group) -> None:
        a, c = group.coefficients()
        n, size = int(group.X.shape[1]), group.batch_size
        self.lr_b = {B: group.lr.T / B for B in {min(size, n - s) for s in range(0, n, size)}}
        self.lr_a, self.lr_c, self.shrink = (group.lr * a).T, (group.lr * c).T, (1 + group.lr * c).T
        self.proximal = group.rule == "proximal"
        self.decays = group.penalty.l2_weight != 0 or group.penalty.uses_l1_ratio
        self.l1 = group.penalty.l1_weight != 0 or group.penalty.uses_l1_ratio
        self.buffer: torch.Tensor | None = None

    def step(self, w: torch.Tensor, r: torch.Tensor, X_bt: torch.Tensor) -> None:
        if self.buffer is None:
            self.buffer = torch.empty_like(w)
        if self.proximal:
            w.baddbmm_(X_bt, r, alpha=-1)
            if self.l1:
                torch.clamp(w, min=-self.lr_a, max=self.lr_a, out=self.buffer)
                w.sub_(self.buffer)
            if self.decays:
                w.div_(self.shrink)
            return
        if self.l1:
            torch.sign(w, out=self.buffer)
        if self.decays:
            w.addcmul_(w, self.lr_c, value=-1)
        w.baddbmm_(X_bt, r, alpha=-1)
        if self.l1:
            w.addcmul_(self.buffer, self.lr_a, value=-1)
