"""scikit-learn's handwritten digits (8×8 images, 10 classes), split at random by the seed."""

from __future__ import annotations

import torch

from wdbench.problems._problem import Problem
from wdbench.problems._split import feature_scale
from wdbench.seeding import generator

__all__ = ["DIGITS_CLASSES", "DIGITS_ROWS", "check_digits", "digits"]

#: Rows and classes of the data set (shipped with scikit-learn).
DIGITS_ROWS = 1797
DIGITS_CLASSES = 10


def check_digits(n_train: int, n_val: int) -> None:
    """``ValueError`` naming the invalid arguments of ``digits``."""
    if n_train < 2 or n_val < 1 or n_train + n_val >= DIGITS_ROWS:
        raise ValueError(
            f"n_train ({n_train}) >= 2 and n_val ({n_val}) >= 1 must leave test rows "
            f"out of {DIGITS_ROWS}"
        )


def digits(
    *,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    n_train: int = 200,
    n_val: int = 300,
) -> Problem:
    """A draw of the data set (``Problem.digits`` documents it)."""
    from sklearn.datasets import load_digits

    check_digits(n_train, n_val)
    X_raw, y_raw = load_digits(return_X_y=True)
    X_all = torch.from_numpy(X_raw).to(torch.float64)
    y_all = torch.from_numpy(y_raw).to(torch.long)
    perm = torch.randperm(X_all.shape[0], generator=generator(seed, "digits", "split"))
    parts = {
        "train": perm[:n_train],
        "val": perm[n_train : n_train + n_val],
        "test": perm[n_train + n_val :],
    }
    tr = parts["train"]
    x_mean, x_std = feature_scale(X_all[tr])
    splits = {s: ((X_all[idx] - x_mean) / x_std, y_all[idx]) for s, idx in parts.items()}
    meta = {"seed": seed, "rows": {s: idx.tolist() for s, idx in parts.items()}}
    return Problem._from_splits("digits", splits, meta, n_classes=DIGITS_CLASSES).to(dtype=dtype)
