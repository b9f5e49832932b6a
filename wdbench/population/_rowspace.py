"""The row-space form of the linear rules, and the kernel that trains a group in it.

With no L1 part (penalties none and l2) every rule of ``wdbench.rules`` is linear in w:
w ← κ·w − μ·∇ℓ(w_old) per configuration, (κ, μ) = ``Rule.linear`` (coupled / decoupled: κ = 1 − ηc,
μ = η; proximal: κ = 1/(1 + ηc), μ = κη). Every ∇ℓ = X_bᵀr/B lies in the row space of X_train.
``RowSpace`` holds that space once, from a float64 SVD X = U·S·Qᵀ on the CPU (every device sees the
same one; rank by numpy's ``matrix_rank`` rule), in the two forms the kernels use:

* orthonormal: w = Q z + σ·w₀⊥ with z₀ = Qᵀw₀, σ₀ = 1 (``rows``, ``start``, ``weights``): the same
  kernel run on the r + 1 columns ``[X Q, 0]`` from ``[z₀, 1]`` — the last coordinate has a zero
  data column, so only the decay moves it. The Triton kernel (``wdbench.population.triton``).
* dual: w = κᵗ·w₀⊥ + Xᵀα with α₀ = β = U S⁻¹ Qᵀw₀ (``split``): one coefficient per training row.
  The torch kernel below.

The torch kernel needs only the predictions P = X·w = G·α on the n training rows (G = X·Xᵀ):

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

from dataclasses import dataclass

import torch

from wdbench.population._graph import run_epochs
from wdbench.population._group import DivergenceLog, EpochHook, Group, GroupOutput

__all__ = ["RowSpace", "rowspace_applies", "train_group_rowspace"]


@dataclass(frozen=True, eq=False)
class RowSpace:
    """The row spaces of S training sets, float64 on their device: ``basis [S, d, R]`` = Q and
    ``dual [S, n, R]`` = U S⁻¹ (so Xᵀ·dual = Q), zero columns past a problem's rank."""

    basis: torch.Tensor
    dual: torch.Tensor

    @classmethod
    def of(cls, X_train: torch.Tensor) -> RowSpace:
        """The row spaces of ``X_train [S, n, d]``."""
        X = X_train.detach().to("cpu", torch.float64)
        u, sv, vh = torch.linalg.svd(X, full_matrices=False)
        tol = sv.amax(-1, keepdim=True) * max(X.shape[-2:]) * torch.finfo(torch.float64).eps
        keep = sv > tol  # [S, min(n, d)], leading entries first
        width = max(int(keep.sum(-1).max()), 1)
        basis = (vh.mT * keep[:, None, :])[..., :width]
        dual = (u * torch.where(keep, 1 / torch.where(keep, sv, 1), 0)[:, None, :])[..., :width]
        return cls(basis=basis.to(X_train.device), dual=dual.to(X_train.device))

    @property
    def dim(self) -> int:
        """Coordinates the orthonormal form carries: the widest rank, plus the scale σ."""
        return int(self.basis.shape[-1]) + 1

    def rows(self, X: torch.Tensor) -> torch.Tensor:
        """``[X Q, 0]`` for the training rows ``X [S, n, d]`` (float64)."""
        Xq = X.to(torch.float64) @ self.basis
        return torch.cat([Xq, torch.zeros_like(Xq[..., :1])], dim=-1)

    def project(self, w0: torch.Tensor) -> torch.Tensor:
        """``z₀ = w₀ Q`` ``[S, K, R]`` float64 for ``w0 [K, d]``; when every row of ``w0`` is the
        same (one seed and init scale: the usual group), computed once and expanded."""
        w0 = w0.to(self.basis.device, torch.float64)
        if int(w0.shape[0]) > 1 and bool((w0 == w0[:1]).all()):
            return (w0[:1] @ self.basis).expand(-1, int(w0.shape[0]), -1)
        return w0 @ self.basis

    def start(self, w0: torch.Tensor, z0: torch.Tensor | None = None) -> torch.Tensor:
        """``[z₀, 1] = [w₀ Q, 1]`` ``[S, K, R + 1]`` for the starting weights ``w0 [K, d]``
        (``z0``: ``project(w0)`` if already at hand)."""
        z0 = self.project(w0) if z0 is None else z0
        return torch.cat([z0, torch.ones_like(z0[..., :1])], dim=-1)

    def weights(
        self, z: torch.Tensor, w0: torch.Tensor, z0: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``w = Q z + σ·w⊥₀ = (z − σ z₀)Qᵀ + σ w₀`` ``[S, K, d]`` float64, for the orthonormal
        coordinates ``z [S, K, R + 1]`` started from ``w0 [K, d]`` (``z0``: ``project(w0)`` if
        already at hand)."""
        z = z.to(torch.float64)
        w0 = w0.to(torch.float64)
        z0 = self.project(w0) if z0 is None else z0
        sigma = z[..., -1:]
        return (z[..., :-1] - sigma * z0) @ self.basis.mT + sigma * w0

    def null_l1(self, w0: torch.Tensor, z0: torch.Tensor) -> torch.Tensor:
        """``‖w₀⊥‖₁`` ``[S, K]`` float64 (w₀⊥ = w₀ − Q z₀, ``z0 = project(w0)``); computed once
        when ``z0`` is one row expanded."""
        w0 = w0.to(self.basis.device, torch.float64)
        if int(z0.shape[1]) > 1 and z0.stride(1) == 0:
            one = (w0[:1] - z0[:, :1] @ self.basis.mT).abs().sum(-1)
            return one.expand(-1, int(w0.shape[0]))
        return (w0 - z0 @ self.basis.mT).abs().sum(-1)

    def split(self, w0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(w₀⊥ [S, K, d], β [S, n, K])`` float64 with w₀ = w₀⊥ + Xᵀβ, w₀⊥ ⟂ rows of X."""
        z = w0.to(self.basis.device, torch.float64) @ self.basis
        return w0.to(z) - z @ self.basis.mT, self.dual @ z.mT


def rowspace_applies(group: Group) -> bool:
    """A shared batch order, a penalty with no L1 part, fewer rows than features (n < d:
    otherwise the full space is the smaller one), and a rule other than proximal, or float64.

    Proximal L2 in float32 stays in the full space: dividing by 1 + ηc rounded to float32 at
    every step biases each weight by up to ~10⁻⁵ over 1000 steps at a small ηc; ``train`` has that
    bias, and only the per-weight full-space step reproduces it.
    """
    exact_enough = group.rule.name != "proximal" or group.X.dtype == torch.float64
    return (
        not group.penalty.has_l1
        and exact_enough
        and group.shared_order
        and group.X.shape[1] < group.X.shape[2]
    )


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
        self.w0_null, beta = RowSpace.of(X).split(group.w0)
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
            (
                self.perm[s : s + size],
                self.updates[:, s : s + size],
                self.gram[:, :, s : s + size],
                self.y[:, s : s + size],
            )
            for s in starts
        ]
        self.steps = len(self.batches)
        self.decay = _Decay(group, [len(batch[0]) for batch in self.batches])
        # divergence: ‖w‖₁ ≤ Σᵢ|αᵢ|·‖xᵢ‖₁ + |κᵗ|·‖w₀⊥‖₁ overflows when an entry of w does
        self.row_l1 = X.abs().sum(-1).unsqueeze(1)  # [S, 1, n]
        self.null_l1 = self.w0_null.abs().sum(-1).to(X.dtype).unsqueeze(1)  # [S, 1, K]
        self.null_scale = torch.ones(1, K, dtype=X.dtype, device=X.device)
        self.epoch_decay = null_decay(group, self.steps).abs().mT.to(X.dtype)  # [1, K]
        self.abs_alpha, self.bound = torch.empty_like(self.alpha), torch.empty_like(self.b)

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
        self.null_scale.mul_(self.epoch_decay)
        torch.abs(alpha, out=self.abs_alpha)
        torch.bmm(self.row_l1, self.abs_alpha, out=self.bound)
        self.bound.addcmul_(self.null_l1, self.null_scale)
        self.log.measure(self.bound.mT, b.mT)  # w = κᵗw₀⊥ + Xᵀα: finite while the bound is

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

    Inside an epoch the kernel keeps P̂ = P/D_j and α̂ = α/D_j (D_j = κʲ after j steps, (κ, μ) =
    ``Rule.linear``), so a step touches only its B rows and the rank-B update: the rows read are
    scaled by ``read[j]`` = D_j; the update r by ``scale[j]`` = (μ/B)/D_{j+1}; ``fold`` ends the
    epoch with P ← D_m·P̂ in the form P̂ − (1 − D_m)·P̂. Factors are computed in float64; the one
    applied to the stored state keeps its distance from 1, since in float32 1 − ηc itself keeps
    only a few digits of a small ηc. If some |κ|^m is so small that 1/D_m would overflow, each
    step applies the rule's own ``step_`` instead (eagerly, with r scaled by η/B).
    """

    def __init__(self, group: Group, sizes: list[int]) -> None:
        dtype, m = group.X.dtype, len(sizes)
        self.rule, self.factors = group.rule, group.factors().transposed()
        lr = self.factors.lr.double()
        self.lr_b = [(lr / size).to(dtype) for size in sizes]
        kappa, mu = group.rule.linear(lr, self.factors.lr_c.double())
        active = self.factors.has_l2
        self.lazy = active and bool(kappa.abs().amin() ** m > 1e-12)
        self.eager = active and not self.lazy
        if not self.lazy:
            kappa, mu = torch.ones_like(kappa), lr
        powers = [kappa**j for j in range(m + 1)]  # D_j
        self.read = [d.to(dtype) for d in powers]
        self.scale = [(mu / size / powers[j + 1]).to(dtype) for j, size in enumerate(sizes)]
        self.fold_factor = (1 - powers[m]).to(dtype)

    def eager_step(
        self,
        P: torch.Tensor,
        alpha: torch.Tensor,
        gram_b: torch.Tensor,
        idx: torch.Tensor,
        r: torch.Tensor,
    ) -> None:
        """One step of the rule on P and α, given r = (η/B)·residual."""
        self.rule.step_(P, lambda v: v.baddbmm_(gram_b, r, alpha=-1), self.factors, None)
        self.rule.step_(alpha, lambda v: v.index_add_(1, idx, r, alpha=-1), self.factors, None)

    def fold(self, P: torch.Tensor, alpha: torch.Tensor) -> None:
        """End of epoch (lazy): P ← D_m·P̂, α ← D_m·α̂."""
        if self.lazy:
            P.addcmul_(P, self.fold_factor, value=-1)
            alpha.addcmul_(alpha, self.fold_factor, value=-1)


def null_decay(group: Group, steps: int) -> torch.Tensor:
    """κ^steps ``[K, 1]`` in float64: what ``steps`` steps leave of the null-space part of w₀."""
    factors = group.factors()
    kappa, _ = group.rule.linear(factors.lr.double(), factors.lr_c.double())
    return kappa**steps
