"""The row-space kernel: plain SGD / proximal steps for penalties without an L1 part (none, l2).

With no L1 part both rules are linear in w: w ← κ·w − μ·∇ℓ with, per configuration,
``sgd``: κ = 1 − ηc, μ = η; ``proximal``: κ = 1/(1 + ηc), μ = η/(1 + ηc) (c = λ for l2, 0 for
none). Each ∇ℓ = X_bᵀr/B lies in the row space of X_train, so after t steps

    w_t = κᵗ·w₀ + Xᵀα_t          (α ∈ ℝⁿ: one dual coefficient per training row)

and only the predictions P = X·w on the n training rows are needed to take a step:

    r = P[batch] + b − y[batch]                    (B values, no product with d)
    P ← κ·P − (μ/B)·G[:, batch]·r,  α ← κ·α − (μ/B)·e_batch·r,  b ← b − η·mean(r)

with G = X·Xᵀ (n × n). A step costs O(K·B·n) instead of O(K·B·d); the part of w₀ outside the row
space only decays by κ per step (for ``none`` it stays, which is why λ = 0 overfits). Within an
epoch P, α and y are kept permuted by the epoch's order, so each batch is a contiguous slice.
Exact in exact arithmetic; ``train_group_reference`` is the definition it is tested against.
"""

from __future__ import annotations

import torch

from wdbench._group import EpochHook, Group, GroupOutput, mark_diverged

__all__ = ["rowspace_applies", "train_group_rowspace"]


def rowspace_applies(group: Group) -> bool:
    """Whether the group's penalty has no L1 part (then both rules are linear in w)."""
    penalty = group.penalty
    return not penalty.uses_l1_ratio and penalty.l1_weight == 0 and group.shared_order


def decay_and_step(group: Group) -> tuple[torch.Tensor, torch.Tensor]:
    """``(κ, μ)`` ``[K, 1]``: w ← κ·w − μ·∇ℓ is the group's rule for a penalty with a = 0."""
    _, c = group.coefficients()
    lr = group.lr
    if group.rule == "sgd":
        return 1 - lr * c, lr.clone()
    return 1 / (1 + lr * c), lr / (1 + lr * c)


@torch.no_grad()
def train_group_rowspace(group: Group, on_epoch: EpochHook | None = None) -> GroupOutput:
    """Train a shared-order group with no L1 part in the n-dimensional row space (see module)."""
    X, y, order = group.X, group.y, group.order[0]
    S, K, n = int(X.shape[0]), group.size, int(X.shape[1])
    kappa, mu = decay_and_step(group)
    decays = group.penalty.l2_weight != 0
    gram = X @ X.mT
    P = group.w0 @ X.mT
    alpha = torch.zeros(S, K, n, dtype=X.dtype, device=X.device)
    b = torch.zeros(S, K, 1, dtype=X.dtype, device=X.device)
    bad = torch.zeros(S, K, dtype=torch.int64, device=X.device)
    Pp, alpha_p = torch.empty_like(P), torch.empty_like(alpha)
    slices = _slices(n, group.batch_size)
    scaled = {size: (mu / size, group.lr / size) for size in {stop - start for start, stop in slices}}
    resid = {size: torch.empty(S, K, size, dtype=X.dtype, device=X.device) for size in scaled}
    bias_step = torch.empty_like(b)
    for epoch in range(group.epochs):
        perm = order[epoch]
        torch.index_select(P, 2, perm, out=Pp)
        torch.index_select(alpha, 2, perm, out=alpha_p)
        gram_p, y_p = gram[:, perm][:, :, perm], y[:, perm].unsqueeze(1)
        for start, stop in slices:
            r = resid[stop - start]
            mu_b, lr_b = scaled[stop - start]
            torch.add(Pp[..., start:stop], b, out=r)
            r.sub_(y_p[..., start:stop])
            torch.sum(r, -1, keepdim=True, out=bias_step)
            b.addcmul_(bias_step, lr_b, value=-1)
            r.mul_(mu_b)
            if decays:
                Pp.mul_(kappa)
                alpha_p.mul_(kappa)
            Pp.baddbmm_(r, gram_p[:, start:stop], alpha=-1)
            alpha_p[..., start:stop].sub_(r)
        P.index_copy_(2, perm, Pp)
        alpha.index_copy_(2, perm, alpha_p)
        mark_diverged(bad, epoch, alpha, b)
        if on_epoch is not None:
            on_epoch(epoch, _weights(group, kappa, alpha, (epoch + 1) * len(slices)), b)
    w = _weights(group, kappa, alpha, group.epochs * len(slices))
    return GroupOutput(w=w, b=b.squeeze(-1), bad_epoch=bad)


def _weights(group: Group, kappa: torch.Tensor, alpha: torch.Tensor, steps: int) -> torch.Tensor:
    """w = κ^steps·w₀ + Xᵀα, ``[S, K, d]``."""
    return torch.baddbmm((kappa**steps * group.w0).expand(alpha.shape[0], -1, -1), alpha, group.X)


def _slices(n: int, batch_size: int) -> list[tuple[int, int]]:
    """Consecutive ``[start, stop)`` batches of one epoch (the last may be partial)."""
    return [(start, min(start + batch_size, n)) for start in range(0, n, batch_size)]
