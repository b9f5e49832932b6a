"""The full-space kernel: any penalty, any rule, one shared batch order, in-place steps.

The rule's own in-place ``step_`` (``wdbench.rules``) on ``w [S, d, K]``, with the data step
w ← w − η∇ℓ done as one batched product: r = X_b·w + b − y_b, scaled by η/B, then
w ← w − X_bᵀ·r. The rows are gathered once in step order, so a batch is a slice; every step runs
in place on preallocated buffers (no allocation, no host synchronization), and on CUDA each epoch
is one graph replay (``wdbench.population._graph``). Layout ``w [S, d, K]``: per-configuration
values along the contiguous axis, so the rule's factors are ``[1, K]`` rows.
"""

from __future__ import annotations

import torch

from wdbench.population._graph import run_epochs
from wdbench.population._group import DivergenceLog, EpochHook, Group, GroupOutput

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
            (
                self.X[:, s : s + size],
                self.X_t[:, :, s : s + size],
                self.y[:, s : s + size],
                resid[:, : min(size, n - s)],
            )
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
    """The group's rule in place on ``w [S, d, K]``, given (η/B)·r and the batch rows X_bᵀ."""

    def __init__(self, group: Group) -> None:
        n, size = int(group.X.shape[1]), group.batch_size
        self.factors = group.factors().transposed()
        self.lr_b = {B: self.factors.lr / B for B in {min(size, n - s) for s in range(0, n, size)}}
        self.step_ = group.rule.step_
        S, d = int(group.X.shape[0]), int(group.X.shape[2])
        self.buffer = torch.empty(S, d, group.size, dtype=group.X.dtype, device=group.X.device)

    def step(self, w: torch.Tensor, r: torch.Tensor, X_bt: torch.Tensor) -> None:
        """w ← rule(w) given r = (η/B)·residual and the batch rows X_bᵀ ``[S, d, B]``."""
        self.step_(w, lambda v: v.baddbmm_(X_bt, r, alpha=-1), self.factors, self.buffer)
