"""The row-space form of the linear dynamics: r ≤ n coordinates plus one scale per configuration.

Without an L1 part (a = 0: penalties none and l2, either rule) every update is linear in w, and the
data gradient g = Σ_i r_i x_i / B lies in the row space of X_train. Write

    w = Q z + σ·w⊥₀,    Q [d, r] an orthonormal basis of the row space (r = rank X_train ≤ n),
                        w⊥₀ = (I − QQᵀ) w₀ the initial weight's null-space part, z₀ = Qᵀw₀, σ₀ = 1.

Then x_i·w = (x_i Q)·z for every training row, and the updates become

    sgd        z ← z − η(Qᵀg + c z)          σ ← σ − η(0 + c σ)
    proximal   z ← (z − ηQᵀg) / (1 + ηc)     σ ← σ / (1 + ηc)

which is the same kernel run on the r + 1 columns ``[X Q, 0]`` from ``[z₀, 1]``: the last coordinate
has a zero data column, so only the decay moves it. At d = 200, n = 50 the kernel carries 51
numbers per configuration instead of 200. The basis comes from a float64 SVD on the CPU (every
device sees the same one); the weights are rebuilt in float64 as w = (z − σ z₀)Qᵀ + σ w₀.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["RowSpace"]


@dataclass(frozen=True, eq=False)
class RowSpace:
    """Orthonormal bases ``basis [S, d, R]`` of S training sets (float64, on their device; zero
    columns past a problem's rank, which the dynamics leave at zero)."""

    basis: torch.Tensor

    @classmethod
    def of(cls, X_train: torch.Tensor) -> RowSpace:
        """The row spaces of ``X_train [S, n, d]`` (rank by numpy's ``matrix_rank`` rule)."""
        X = X_train.detach().to("cpu", torch.float64)
        _, sv, vh = torch.linalg.svd(X, full_matrices=False)
        tol = sv.amax(-1, keepdim=True) * max(X.shape[-2:]) * torch.finfo(torch.float64).eps
        keep = (sv > tol).to(torch.float64)  # [S, min(n, d)], leading entries first
        width = max(int(keep.sum(-1).max()), 1)
        basis = (vh.mT * keep[:, None, :])[..., :width]
        return cls(basis=basis.to(X_train.device))

    @property
    def dim(self) -> int:
        """Coordinates the kernel carries: the widest rank, plus the scale σ."""
        return int(self.basis.shape[-1]) + 1

    def rows(self, X: torch.Tensor) -> torch.Tensor:
        """``[X Q, 0]`` for the training rows ``X [S, n, d]`` (float64)."""
        Xq = X.to(torch.float64) @ self.basis
        return torch.cat([Xq, torch.zeros_like(Xq[..., :1])], dim=-1)

    def start(self, w0: torch.Tensor) -> torch.Tensor:
        """``[z₀, 1] = [w₀ Q, 1]`` ``[S, K, R + 1]`` for the starting weights ``w0 [K, d]``."""
        z0 = w0.to(torch.float64) @ self.basis
        return torch.cat([z0, torch.ones_like(z0[..., :1])], dim=-1)

    def weights(self, z: torch.Tensor, w0: torch.Tensor) -> torch.Tensor:
        """``w = Q z + σ·w⊥₀ = (z − σ z₀)Qᵀ + σ w₀`` ``[S, K, d]`` float64, for the kernel's
        coordinates ``z [S, K, R + 1]`` started from ``w0 [K, d]``."""
        z = z.to(torch.float64)
        w0 = w0.to(torch.float64)
        sigma = z[..., -1:]
        return (z[..., :-1] - sigma * (w0 @ self.basis)) @ self.basis.mT + sigma * w0
