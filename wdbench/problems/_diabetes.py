"""scikit-learn's diabetes data with polynomial features, split at random by the seed."""

from __future__ import annotations

import torch

from wdbench.problems._problem import Problem
from wdbench.problems._split import feature_scale
from wdbench.seeding import generator

__all__ = ["DIABETES_ROWS", "check_diabetes", "diabetes"]

#: Rows of the data set (shipped with scikit-learn).
DIABETES_ROWS = 442


def check_diabetes(n_train: int, degree: int, n_val: int) -> None:
    """``ValueError`` naming the invalid arguments of ``diabetes``."""
    if degree < 1:
        raise ValueError(f"degree must be >= 1, got {degree}")
    if n_train < 2 or n_val < 1 or n_train + n_val >= DIABETES_ROWS:
        raise ValueError(
            f"n_train ({n_train}) >= 2 and n_val ({n_val}) >= 1 must leave test rows "
            f"out of {DIABETES_ROWS}"
        )


def diabetes(
    *,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    n_train: int = 50,
    degree: int = 3,
    n_val: int = 100,
) -> Problem:
    """A draw of the data set (``Problem.diabetes`` documents it)."""
    from sklearn.datasets import load_diabetes
    from sklearn.preprocessing import PolynomialFeatures

    check_diabetes(n_train, degree, n_val)
    X_raw, y_raw = load_diabetes(return_X_y=True)
    n_total = X_raw.shape[0]
    X_all = torch.from_numpy(
        PolynomialFeatures(degree, include_bias=False).fit_transform(X_raw)
    ).to(torch.float64)
    y_all = torch.from_numpy(y_raw).to(torch.float64)
    perm = torch.randperm(n_total, generator=generator(seed, "diabetes", "split"))
    parts = {
        "train": perm[:n_train],
        "val": perm[n_train : n_train + n_val],
        "test": perm[n_train + n_val :],
    }
    tr = parts["train"]
    x_mean, x_std = feature_scale(X_all[tr])
    y_mean, y_std = y_all[tr].mean(), y_all[tr].std()
    splits = {
        s: ((X_all[idx] - x_mean) / x_std, (y_all[idx] - y_mean) / y_std)
        for s, idx in parts.items()
    }
    meta = {"degree": degree, "seed": seed, "y_mean": float(y_mean), "y_std": float(y_std)}
    return Problem._from_splits("diabetes", splits, meta).to(dtype=dtype)
