"""The row-space kernel: plain SGD / proximal steps for penalties without an L1 part (none, l2).

With no L1 part both rules are linear in w: w ← κ·w − μ·∇ℓ per configuration, with
``sgd``: κ = 1 − ηc, μ = η and ``proximal``: κ = 1/(1 + ηc), μ = κη (c = λ for l2, 0 for none).
Every ∇ℓ = X_bᵀr/B lies in the row space of X_train, so with w₀ = w₀⊥ + Xᵀβ split exactly (in
float64, G⁺ the pseudo-inverse of G = X·Xᵀ, β = G⁺X·w₀):

    w_t = κᵗ·w₀⊥ + Xᵀα_t          α₀ = β   (α ∈ ℝⁿ: one dual coefficient per training row)

and a step needs only the predictions P = X·w = G·α on the n training rows:

    r = P[batch] + b − y[batch]        (B values: no product with d)
    P ← κ·P − (μ/B)·G[:, batch]·r,   α ← κ·α − (μ/B)·e_batch·r,   b ← b − η·mean(r)

A step costs O(K·B·n) instead of O(K·B·d). The null-space part w₀⊥ only decays by κ per step (for
``none`` it stays: why λ = 0 overfits), and w is rebuilt once at the end. Splitting w₀ first keeps
the rebuilt row-space part free of cancellation. The decay is applied lazily within an epoch
(see ``_Decay``). Layout: ``P``, ``α`` are ``[S, n, K]``, so per-configuration values run along
the last, contiguous axis and a batch is B gathered rows. ``train_group_reference`` is the
definition this kernel is tested against (equal to rounding).
"""

from __future__ import annotations

import torch

from wdbench._graph import run_epochs
from wdbench._group import DivergenceLog, EpochHook, Group, GroupOutput

__all__ = ["rowspace_applies", "split_init", "train_group_rowspace"]


def rowspace_applies(group: Group) -> bool:
    """A shared batch order, a penalty with no L1 part, fewer rows than features (n < d:
    otherwise the full space is the smaller one), and the ``sgd`` rule or float64.

    Proximal L2 in float32 stays in the full space: dividing by 1 + ηc rounded to float32 at
    every step biases each weight by up to ~10⁻⁵ over 1000 steps at a small ηc; ``train`` has that
    bias, and only the per-weight full-space step reproduces it.
    """
    penalty = group.penalty
    no_l1 = not penalty.uses_l1_ratio and penalty.l1_weight == 0
    exact_enough = group.rule == "sgd" or group.X.dtype == torch.float64
    return no_l1 and exact_enough and group.shared_order and group.X.shape[1] < group.X.shape[2]


def split_init(X: torch.Tensor, w0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(w₀⊥ [S, K, d], β [S, n, K])`` with w₀ = w₀⊥ + Xᵀβ, w₀⊥ ⟂ rows of X (float64)."""
    X64, w64 = X.double(), w0.double()
    vals, vecs = torch.linalg.eigh(X64 @ X64.mT)
    keep = vals > vals.amax(-1, keepdim=True) * X.shape[1] * torch.finfo(torch.float64).eps
    inv = torch.where(keep, 1 / torch.where(keep, vals, 1), 0)
    beta = (vecs * inv.unsqueeze(-2)) @ vecs.mT @ (X64 @ w64.T)
    return w64 - beta.mT @ X64, beta


@torch.no_grad()
def train_group_rowspace(group: Group, on_epoch: EpochHook | None = None) -> GroupOutput:
    """Train a shared-order group with no L1 part in the n-dimensional row space (see module)."""
    program = _RowSpaceEpochs(group, on_epoch)
    run_epochs(program, group.epochs, group.X.device)
    w = program.weights(group.epochs * program.steps)
    return GroupOutput(w=w, b=program.b[:, 0], bad_epoch=program.log.bad_epoch())


class _RowSpaceEpochs:
    """The row-space recursion as an ``EpochProgram``: state ``P``, ``α`` ``[S, n, K]``,
    ``b [S, 1, K]``; static per-epoch inputs: the epoch's order, Gram columns and targets."""

    def __init__(self, group: Group, on_epoch: EpochHook | None) -> None:
        X, order = group.X, group.order[0]
        S, K, n = int(X.shape[0]), group.size, int(X.shape[1])
        self.group, self.on_epoch = group, on_epoch
        self.w0_null, beta = split_init(X, group.w0)
        gram64 = X.double() @ X.double().mT
        self.P, self.alpha = (gram64 @ beta).to(X.dtype), beta.to(X.dtype)
        self.b = torch.zeros(S, 1, K, dtype=X.dtype, device=X.device)
        self.log = DivergenceLog(group.epochs, self.b[:, 0])
        # everything each epoch needs, gathered once in step order
        self.gram_all = gram64.to(X.dtype)[:, :, order].permute(2, 0, 1, 3).contiguous()
        self.y_all = group.y[:, order].transpose(0, 1).unsqueeze(-1).contiguous()
        self.order, self.perm = order, order[0].clone()
        self.gram, self.y = self.gram_all[0].clone(), self.y_all[0].clone()
        self.updates = torch.empty_like(self.P)  # (η/B)·r of the epoch, rows in its order
        self.bias_step = torch.empty_like(self.b)
        size = group.batch_size
        starts = range(0, n, size)
        self.batches = [
            (self.perm[s : s + size], self.updates[:, s : s + size], self.gram[:, :, s : s + size],
             self.y[:, s : s + size])
            for s in starts
        ]
        self.steps = len(self.batches)
        self.decay = _Decay(group, [len(batch[0]) for batch in self.batches])

    def load(self, epoch: int) -> None:
        self.perm.copy_(self.order[epoch])
        self.gram.copy_(self.gram_all[epoch])
        self.y.copy_(self.y_all[epoch])

    def run(self) -> None:
        P, alpha, b, decay = self.P, self.alpha, self.b, self.decay
        for j, (idx, r, gram_b, y_b) in enumerate(self.batches):
            torch.index_select(P, 1, idx, out=r)
            if decay.lazy and j:
                r.mul_(decay.read[j])
            r.add_(b).sub_(y_b)
            torch.sum(r, 1, keepdim=True, out=self.bias_step)
            b.addcmul_(self.bias_step, decay.lr_b[j], value=-1)
            r.mul_(decay.scale[j])
            if decay.eager:
                decay.eager_step(P, alpha, gram_b, idx, r)
            else:
                P.baddbmm_(gram_b, r, alpha=-1)
        if not decay.eager:
            alpha.index_add_(1, self.perm, self.updates, alpha=-1)
        decay.fold(P, alpha)
        self.log.measure(alpha.mT, b.mT)  # w = κᵗw₀⊥ + Xᵀα is finite with α

    def after(self, epoch: int) -> None:
        self.log.keep(epoch)
        if self.on_epoch is not None:
            self.on_epoch(epoch, self.weights((epoch + 1) * self.steps), self.b.mT)

    def weights(self, steps: int) -> torch.Tensor:
        """w = κ^steps·w₀⊥ + Xᵀα, ``[S, K, d]`` in the group's dtype."""
        null = (null_decay(self.group, steps) * self.w0_null).to(self.alpha.dtype)
        return torch.baddbmm(null, self.alpha.mT, self.group.X)


class _Decay:
    """Per-step factors ``[1, K]`` of an epoch's m steps, with the L2 decay applied lazily.

    Inside an epoch the kernel keeps P̂ = P/D_j and α̂ = α/D_j (D_j = κʲ after j steps), so a
    step touches only its B rows and the rank-B update: the rows read are scaled by
    ``read[j]`` = D_j; the update r is scaled by ``scale[j]`` = (η/B)/D_{j+1} (``sgd``: decay,
    then step) or (η/B)/D_j (``proximal``: step, then decay); ``fold`` ends the epoch with
    P ← D_m·P̂ in the form P̂ − (1 − D_m)·P̂. Factors are computed in float64; the one applied
    to the stored state keeps its distance from 1, since in float32 1 − ηc itself keeps only a
    few digits of a small ηc. If some |κ|^m is so small that 1/D_m would overflow, the decay is
    applied eagerly at every step instead, in the reference's form (x − ηc·x, or x / (1 + ηc)).
    """

    def __init__(self, group: Group, sizes: list[int]) -> None:
        _, c = group.coefficients()
        dtype, m = group.X.dtype, len(sizes)
        lr = group.lr.T.double()
        self.lr_b = [(lr / size).to(dtype) for size in sizes]
        self.proximal = group.rule == "proximal"
        self.lr_c, self.shrink = (group.lr * c).T, (1 + group.lr * c).T
        kappa = 1 / self.shrink.double() if self.proximal else 1 - self.lr_c.double()
        active = group.penalty.l2_weight != 0
        self.lazy = active and bool(kappa.abs().amin() ** m > 1e-12)
        self.eager = active and not self.lazy
        if not self.lazy:
            kappa = torch.ones_like(kappa)
        powers = [kappa**j for j in range(m + 1)]  # D_j
        self.read = [d.to(dtype) for d in powers]
        shift = 0 if self.proximal else 1
        self.scale = [(lr / size / powers[j + shift]).to(dtype) for j, size in enumerate(sizes)]
        self.fold_factor = (1 - powers[m]).to(dtype)

    def eager_step(
        self, P: torch.Tensor, alpha: torch.Tensor, gram_b: torch.Tensor, idx: torch.Tensor,
        r: torch.Tensor,
    ) -> None:
        """One step with its decay (``sgd``: x − ηc·x first; ``proximal``: x / (1 + ηc) after)."""
        if not self.proximal:
            P.addcmul_(P, self.lr_c, value=-1)
            alpha.addcmul_(alpha, self.lr_c, value=-1)
        P.baddbmm_(gram_b, r, alpha=-1)
        alpha.index_add_(1, idx, r, alpha=-1)
        if self.proximal:
            P.div_(self.shrink)
            alpha.div_(self.shrink)

    def fold(self, P: torch.Tensor, alpha: torch.Tensor) -> None:
        """End of epoch (lazy): P ← D_m·P̂, α ← D_m·α̂."""
        if self.lazy:
            P.addcmul_(P, self.fold_factor, value=-1)
            alpha.addcmul_(alpha, self.fold_factor, value=-1)


def null_decay(group: Group, steps: int) -> torch.Tensor:
    """κ^steps ``[K, 1]`` in float64: what ``steps`` steps leave of the null-space part of w₀
    (``sgd``: κ = 1 − ηc; ``proximal``: κ = 1/(1 + ηc), 1 + ηc rounded as the step rounds it)."""
    _, c = group.coefficients()
    if group.rule == "sgd":
        return (1 - (group.lr * c).double()) ** steps
    return (1 + group.lr * c).double() ** -steps
