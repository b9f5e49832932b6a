"""The stateful full-space kernel: momentum and Adam (any penalty, any rule), one shared batch
order, in-place steps on preallocated buffers.

The rule's own ``Rule.update_`` and the optimizer's own ``Optimizer.step_`` (``wdbench.rules``,
``wdbench.optimizers``) on ``w [S, d, K]`` with the optimizer's state beside it (same shape; the
bias ``b [S, 1, K]`` takes the optimizer's step with its own state). Unlike plain SGD the data
gradient is needed as a tensor (the optimizer transforms it), so a step is: r = X_b·w + b − y_b
scaled by 1/B, ∂ℓ/∂b = Σ r, ∇ℓ = X_bᵀ·r into a gradient buffer, then the rule and the
optimizer in place. The rows are gathered once in step order, so a batch is a slice. Layout
``[S, d, K]``: per-configuration values along the contiguous axis, the rule's factors as
``[1, K]`` rows. Epochs run eagerly on every device (the step count changes the optimizer's bias
corrections, which a replayed graph would freeze).
"""

from __future__ import annotations

import torch

from wdbench.population._group import DivergenceLog, EpochHook, Group, GroupOutput

__all__ = ["stateful_block", "train_group_stateful"]


@torch.no_grad()
def train_group_stateful(group: Group, on_epoch: EpochHook | None = None) -> GroupOutput:
    """Train a shared-order group with a stateful optimizer in the weight space (see module)."""
    X, order, size = group.X, group.order[0], group.batch_size
    S, K, n = int(X.shape[0]), group.size, int(X.shape[1])
    w = group.w0.T.expand(S, -1, -1).contiguous()  # [S, d, K]
    b = torch.zeros(S, 1, K, dtype=X.dtype, device=X.device)
    opt, rule, factors = group.optimizer, group.rule, group.factors().transposed()
    w_state, b_state = opt.state(w), opt.state(b)
    grad, buffer, grad_b = torch.empty_like(w), torch.empty_like(w), torch.empty_like(b)
    resid = torch.empty(S, size, K, dtype=X.dtype, device=X.device)
    X_all = X[:, order].transpose(0, 1).contiguous()  # [E, S, n, d]
    X_t_all = X_all.mT.contiguous()  # [E, S, d, n]
    y_all = group.y[:, order].transpose(0, 1).unsqueeze(-1).contiguous()  # [E, S, n, 1]
    starts = range(0, n, size)
    log = DivergenceLog(group.epochs, b[:, 0])
    for epoch in range(group.epochs):
        X_e, X_te, y_e = X_all[epoch], X_t_all[epoch], y_all[epoch]
        for s in starts:
            B = min(size, n - s)
            r = resid[:, :B]
            torch.bmm(X_e[:, s : s + B], w, out=r)
            r.add_(b).sub_(y_e[:, s : s + B]).div_(B)
            torch.sum(r, 1, keepdim=True, out=grad_b)
            torch.bmm(X_te[:, :, s : s + B], r, out=grad)
            rule.update_(w, grad, opt, w_state, factors, buffer)
            opt.step_(b, grad_b, b_state, factors.lr)
        log.record(epoch, w.mT, b.mT)
        if on_epoch is not None:
            on_epoch(epoch, w.mT, b.mT)
    return GroupOutput(w=w.mT.contiguous(), b=b[:, 0], bad_epoch=log.bad_epoch())


def stateful_block(group: Group) -> int:
    """Configurations per CPU chunk: the weights, the gradient, a buffer and the optimizer's
    state (up to five ``[S, d]`` columns per configuration) in about 1 MiB of cache."""
    S, d = int(group.X.shape[0]), int(group.X.shape[2])
    return max(64, (1 << 20) // (5 * S * d * group.X.element_size()))
