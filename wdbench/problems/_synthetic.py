"""The lesson's synthetic family: y = b* + x·w* + ε with knobs for size, noise, sparsity and
correlation.

Every split is a separate draw (its own generator derived from the seed), so changing one split's
size never changes another split's rows. Correlated features (Toeplitz Σᵢⱼ = ρ^|i−j|) are the
AR(1) recursion x₀ = z₀, xⱼ = ρ·xⱼ₋₁ + √(1−ρ²)·zⱼ over the same standard normal draws z, so each
feature keeps unit variance and ``rho=0`` draws exactly the lesson's x.
"""

from __future__ import annotations

import math

import torch

from wdbench.problems._problem import Problem
from wdbench.seeding import generator

__all__ = ["check_synthetic", "synthetic"]


def check_synthetic(
    n_train: int,
    n_val: int,
    n_test: int,
    dim: int,
    noise: float,
    sparsity: int | None,
    rho: float,
) -> None:
    """``ValueError`` naming the first invalid argument of ``synthetic``."""
    for name, value in (("n_train", n_train), ("n_val", n_val), ("n_test", n_test)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if dim < 1:
        raise ValueError(f"dim must be >= 1, got {dim}")
    if not noise >= 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    if sparsity is not None and not 0 <= sparsity <= dim:
        raise ValueError(f"sparsity must be in [0, {dim}], got {sparsity}")
    if not -1 < rho < 1:
        raise ValueError(f"rho must be in (-1, 1), got {rho}")


def synthetic(
    *,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    n_train: int = 50,
    n_val: int = 100,
    n_test: int = 1000,
    dim: int = 200,
    true_w: float = 0.01,
    true_b: float = 0.1,
    noise: float = 0.01,
    sparsity: int | None = None,
    rho: float = 0.0,
) -> Problem:
    """A draw of the family (``Problem.synthetic`` documents the model)."""
    check_synthetic(n_train, n_val, n_test, dim, noise, sparsity, rho)
    w_star = torch.full((dim,), float(true_w), dtype=torch.float64)
    if sparsity is not None:
        keep = torch.randperm(dim, generator=generator(seed, "synthetic", "support"))
        w_star[keep[sparsity:]] = 0.0

    def draw(split: str, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        gen = generator(seed, "synthetic", split)
        X = _correlate(torch.randn(n, dim, generator=gen, dtype=torch.float64), rho)
        eps = torch.randn(n, generator=gen, dtype=torch.float64) * noise
        return X, X @ w_star + true_b + eps

    splits = {s: draw(s, n) for s, n in (("train", n_train), ("val", n_val), ("test", n_test))}
    meta = {
        "true_w": w_star,
        "true_b": float(true_b),
        "noise": float(noise),
        "sparsity": sparsity,
        "rho": float(rho),
        "seed": seed,
    }
    name = "synthetic" if sparsity is None else "synthetic-sparse"
    return Problem._from_splits(name, splits, meta).to(dtype=dtype)


def _correlate(Z: torch.Tensor, rho: float) -> torch.Tensor:
    """Columns of Z (i.i.d. N(0, 1)) turned into an AR(1) sequence with correlation ρ^|i−j|."""
    if rho == 0:
        return Z
    X = Z.clone()
    scale = math.sqrt(1 - rho * rho)
    for j in range(1, X.shape[1]):
        X[:, j] = rho * X[:, j - 1] + scale * Z[:, j]
    return X
