"""The row-space form of the linear dynamics: r ≤ n coordinates plus one scale per configuration.

Without an L1 part (a = 0: penalties none and l2, either rule) every update is linear in w, and the
data gradient g = Σ_i r_i x_i / B lies in the row space of X_train. Write

    w = Q z + σ·w⊥₀,    Q [d, r] an orthonormal basis of the row space (r = rank X_train ≤ n),
                        w⊥₀ = (I − QQᵀ) w₀ the initial weight's null-space part, z₀ = Qᵀw₀, σ₀ = 1.

Then x_i·w = (x_i Q)·z for every training row, and the updates become

    sgd        z ← z − η(Qᵀg + c z)          σ ← σ − η(0 + c σ)
    proximal   z ← (z − ηQᵀg) / (1 + ηc)     σ ← σ / (1 + ηc)

which is the same kernel run on the r + 1 columns ``[X Q, 0]`` from ``[z₀, 1]``: the last coordinate
has a zero data column, so only the decay moves it. Evaluation rows x become ``[x Q, x·w⊥₀]``. At
d = 200, n = 50 the kernel carries 51 numbers per configuration instead of 200. The basis comes from
a float64 SVD on the CPU, so every device sees the same one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["RowSpace"]


@dataclass(frozen=True, eq=False)
class RowSpace:
    """Bases of S training sets: ``basis [S, d, R]`` (zero columns past a problem's rank) and the
    initial weights' null-space parts ``w_perp [S, d]``, float64 on the CPU."""

    basis: torch.Tensor
    w_perp: torch.Tensor

    @classmethod
    def of(cls, X_train: torch.Tensor, w0: torch.Tensor) -> RowSpace:
        """The row spaces of ``X_train [S, n, d]`` and the split of ``w0 [S, d]``."""
        X = X_train.detach().to("cpu", torch.float64)
        _, sv, vh = torch.linalg.svd(X, full_matrices=False)
        tol = sv.amax(-1, keepdim=True) * max(X.shape[-2:]) * torch.finfo(torch.float64).eps
        keep = (sv > tol).to(torch.float64)  # [S, min(n, d)], leading entries first
        width = max(int(keep.sum(-1).max()), 1)
        basis = (vh.mT * keep[:, None, :])[..., :width]
        w = w0.detach().to("cpu", torch.float64)
        w_perp = w - (basis @ (basis.mT @ w[..., None]))[..., 0]
        return cls(basis=basis, w_perp=w_perp)

    @property
    def dim(self) -> int:
        """Coordinates the kernel carries: the widest rank, plus the scale σ."""
        return int(self.basis.shape[-1]) + 1

    def train_rows(self, X: torch.Tensor) -> torch.Tensor:
        """``[X Q, 0]``: training rows, which have no null-space part."""
        Xq = X.detach().to("cpu", torch.float64) @ self.basis
        return torch.cat([Xq, torch.zeros_like(Xq[..., :1])], dim=-1)

    def eval_rows(self, X: torch.Tensor) -> torch.Tensor:
        """``[X Q, X·w⊥₀]``: any other rows (validation, test)."""
        X = X.detach().to("cpu", torch.float64)
        return torch.cat([X @ self.basis, X @ self.w_perp[..., None]], dim=-1)

    def start(self, w0: torch.Tensor) -> torch.Tensor:
        """``[Qᵀ w₀, 1]`` for ``w0 [S, d]``."""
        z0 = (self.basis.mT @ w0.detach().to("cpu", torch.float64)[..., None])[..., 0]
        return torch.cat([z0, torch.ones_like(z0[..., :1])], dim=-1)

    def weights(self, z: torch.Tensor) -> torch.Tensor:
        """``w = Q z + σ·w⊥₀`` for the kernel's coordinates ``z [S, K, R + 1]``, computed in
        float64 on z's device."""
        z = z.detach().to(torch.float64)
        basis, w_perp = (t.to(z.device) for t in (self.basis, self.w_perp))
        return z[..., :-1] @ basis.mT + z[..., -1:] * w_perp[:, None, :]
