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

from wdbench._group import EpochHook, Group, GroupOutput, mark_diverged

__all__ = ["train_group_fullspace"]


@torch.no_grad()
def train_group_fullspace(group: Group, on_epoch: EpochHook | None = None) -> GroupOutput:
    """Train a shared-order group in the d-dimensional weight space (see module)."""
    X, y, order = group.X, group.y, group.order[0]
    S, K, n = int(X.shape[0]), group.size, int(X.shape[1])
    a, c = group.coefficients()
    lr = group.lr
    w = group.w0.expand(S, *group.w0.shape).contiguous()
    b = torch.zeros(S, K, 1, dtype=X.dtype, device=X.device)
    bad = torch.zeros(S, K, dtype=torch.int64, device=X.device)
    buffer, bias_step = torch.empty_like(w), torch.empty_like(b)
    slices = [(start, min(start + group.batch_size, n)) for start in range(0, n, group.batch_size)]
    sizes = {stop - start for start, stop in slices}
    lr_b = {size: lr / size for size in sizes}
    resid = {size: torch.empty(S, K, size, dtype=X.dtype, device=X.device) for size in sizes}
    proximal = group.rule == "proximal"
    decays = group.penalty.l2_weight != 0 or group.penalty.uses_l1_ratio
    lr_a, lr_c, shrink = lr * a, lr * c, 1 + lr * c
    for epoch in range(group.epochs):
        perm = order[epoch]
        X_p, y_p = X[:, perm], y[:, perm].unsqueeze(1)
        for start, stop in slices:
            size = stop - start
            X_b, r = X_p[:, start:stop], resid[size]
            torch.bmm(w, X_b.mT, out=r)
            r.add_(b).sub_(y_p[..., start:stop])
            torch.sum(r, -1, keepdim=True, out=bias_step)
            b.addcmul_(bias_step, lr_b[size], value=-1)
            r.mul_(lr_b[size])
            if proximal:
                w.baddbmm_(r, X_b, alpha=-1)
                torch.clamp(w, min=-lr_a, max=lr_a, out=buffer)
                w.sub_(buffer)
                if decays:
                    w.div_(shrink)
            else:
                torch.sign(w, out=buffer)
                if decays:
                    w.addcmul_(w, lr_c, value=-1)
                w.baddbmm_(r, X_b, alpha=-1)
                w.addcmul_(buffer, lr_a, value=-1)
        mark_diverged(bad, epoch, w, b)
        if on_epoch is not None:
            on_epoch(epoch, w, b)
    return GroupOutput(w=w, b=b.squeeze(-1), bad_epoch=bad)
