"""The full-space kernel: any penalty, both rules, one shared batch order, in-place steps.

The same rules as ``train_group_reference``, with (a, c) the L1 and L2 coefficients per
configuration (``[K, 1]``), r = X_b·w + b − y_b and ∇ℓ = X_bᵀr/B:

    sgd       w ← w − ηc·w − η·∇ℓ − ηa·sign(w)            (all at the old w)
    proximal  v = w − η·∇ℓ;  w ← (v − clamp(v, −ηa, ηa)) / (1 + ηc)

The decay is applied as w − ηc·w, never as (1 − ηc)·w: in float32, 1 − ηc keeps only a few
digits of a small ηc (η = 0.003, λ = 10⁻³), a bias that 1000 steps turn into a 10⁻⁵ error.

``v − clamp(v, −t, t)`` is the soft threshold S(v, t) (exact zeros inside [−t, t]). The rows are
gathered once in step order, so a batch is a slice; every step runs in place on preallocated
buffers (no allocation, no host synchronization), and on CUDA each epoch is one graph replay
(``wdbench._graph``). Layout ``w [S, d, K]``: per-configuration values along the contiguous axis.
"""

from __future__ import annotations

import torch

from wdbench._graph import run_epochs
from wdbench._group import DivergenceLog, EpochHook, Group, GroupOutput

__all__ = ["train_group_fullspace"]


@torch.no_grad()
def train_group_fullspace(group: Group, on_epoch: EpochHook | None = None) -> GroupOutput:
    """Train a shared-order group in the d-dimensional weight space (see module)."""
    program = _FullSpaceEpochs(group, on_epoch)
    run_epochs(program, group.epochs, group.X.device)
    w, b = program.w, program.b
    return GroupOutput(w=w.mT.contiguous(), b=b[:, 0], bad_epoch=program.log.bad_epoch())


class _FullSpaceEpochs:
    """The full-space steps as an ``EpochProgram``: state ``w [S, d, K]`` (configurations along
    the contiguous axis), ``b [S, 1, K]``; static per-epoch inputs: the epoch's batch rows (and
    their transpose) and targets, gathered once for the whole run in step order."""

    def __init__(self, group: Group, on_epoch: EpochHook | None) -> None:
        X, order, size = group.X, group.order[0], group.batch_size
        S, K, n = int(X.shape[0]), group.size, int(X.shape[1])
        self.on_epoch = on_epoch
        self.w = group.w0.T.expand(S, -1, -1).contiguous()
        self.b = torch.zeros(S, 1, K, dtype=X.dtype, device=X.device)
        self.log = DivergenceLog(group.epochs, self.b[:, 0])
        self.X_all = X[:, order].transpose(0, 1).contiguous()  # [E, S, n, d]
        self.y_all = group.y[:, order].transpose(0, 1).unsqueeze(-1).contiguous()  # [E, S, n, 1]
        self.X, self.y = self.X_all[0].clone(), self.y_all[0].clone()
        self.X_t = self.X.mT.contiguous()  # [S, d, n]
        self.rule = _Rule(group)
        resid = torch.empty(S, size, K, dtype=X.dtype, device=X.device)
        self.bias_step = torch.empty_like(self.b)
        self.batches = [
            (self.X[:, s : s + size], self.X_t[:, :, s : s + size], self.y[:, s : s + size],
             resid[:, : min(size, n - s)])
            for s in range(0, n, size)
        ]

    def load(self, epoch: int) -> None:
        self.X.copy_(self.X_all[epoch])
        self.X_t.copy_(self.X_all[epoch].mT)
        self.y.copy_(self.y_all[epoch])

    def run(self) -> None:
        w, b, rule = self.w, self.b, self.rule
        for X_b, X_bt, y_b, r in self.batches:
            size = r.shape[1]
            torch.bmm(X_b, w, out=r)
            r.add_(b).sub_(y_b)
            torch.sum(r, 1, keepdim=True, out=self.bias_step)
            b.addcmul_(self.bias_step, rule.lr_b[size], value=-1)
            rule.step(w, r.mul_(rule.lr_b[size]), X_bt)
        self.log.measure(w.mT, b.mT)

    def after(self, epoch: int) -> None:
        self.log.keep(epoch)
        if self.on_epoch is not None:
            self.on_epoch(epoch, self.w.mT, self.b.mT)


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
        S, d = int(group.X.shape[0]), int(group.X.shape[2])
        self.buffer = torch.empty(S, d, group.size, dtype=group.X.dtype, device=group.X.device)

    def step(self, w: torch.Tensor, r: torch.Tensor, X_bt: torch.Tensor) -> None:
        """w ← rule(w) given r = (η/B)·residual and the batch rows X_bᵀ ``[S, d, B]``."""
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
