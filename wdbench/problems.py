"""Problems: train / validation / test splits of a linear regression task.

Every split is a separate draw (its own generator derived from the seed), so changing one split's
size never changes another split's rows. Tensors are generated in float64 on the CPU and cast on
request, so float32 and float64 runs, and CPU and CUDA runs, see the same data.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import torch

from wdbench.seeding import generator

__all__ = ["PROBLEMS", "Problem"]

PROBLEMS = ("synthetic", "synthetic-sparse", "diabetes")


@dataclass(frozen=True, eq=False)
class Problem:
    """Train/validation/test tensors of a linear regression problem (y has shape ``[n]``)."""

    name: str
    X_train: torch.Tensor
    y_train: torch.Tensor
    X_val: torch.Tensor
    y_val: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_train(self) -> int:
        return int(self.X_train.shape[0])

    @property
    def dim(self) -> int:
        return int(self.X_train.shape[1])

    @property
    def dtype(self) -> torch.dtype:
        return self.X_train.dtype

    @property
    def device(self) -> torch.device:
        return self.X_train.device

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """``(X, y)`` of the split ``"train"``, ``"val"`` or ``"test"``."""
        if name not in ("train", "val", "test"):
            raise ValueError(f"split must be train, val or test, not {name!r}")
        return getattr(self, f"X_{name}"), getattr(self, f"y_{name}")

    def to(
        self, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> Problem:
        """A copy on ``device`` with tensors cast to ``dtype`` (self if nothing changes)."""
        device = self.device if device is None else torch.device(device)
        dtype = self.dtype if dtype is None else dtype
        if device == self.device and dtype == self.dtype:
            return self
        moved = {
            f.name: getattr(self, f.name).to(device=device, dtype=dtype)
            for f in dataclasses.fields(self)
            if isinstance(getattr(self, f.name), torch.Tensor)
        }
        return dataclasses.replace(self, **moved)

    @classmethod
    def synthetic(
        cls,
        n_train: int = 50,
        n_val: int = 100,
        n_test: int = 1000,
        dim: int = 200,
        true_w: float = 0.01,
        true_b: float = 0.1,
        noise: float = 0.01,
        sparsity: int | None = None,
        seed: int = 0,
        dtype: torch.dtype = torch.float32,
    ) -> Problem:
        """The lesson's data: y = true_b + Σᵢ w*ᵢ xᵢ + ε, x ~ N(0, I_dim), ε ~ N(0, noise²).

        w*ᵢ = ``true_w`` for every i, or, with ``sparsity=k``, for k coordinates drawn from the
        seed (the others 0). The d2l book's setting is ``n_train=20, true_b=0.05``.
        """
        for name, value in (("n_train", n_train), ("n_val", n_val), ("n_test", n_test)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if dim < 1:
            raise ValueError(f"dim must be >= 1, got {dim}")
        if noise < 0:
            raise ValueError(f"noise must be >= 0, got {noise}")
        w_star = torch.full((dim,), float(true_w), dtype=torch.float64)
        if sparsity is not None:
            if not 0 <= sparsity <= dim:
                raise ValueError(f"sparsity must be in [0, {dim}], got {sparsity}")
            keep = torch.randperm(dim, generator=generator(seed, "synthetic", "support"))
            w_star[keep[sparsity:]] = 0.0

        def draw(split: str, n: int) -> tuple[torch.Tensor, torch.Tensor]:
            gen = generator(seed, "synthetic", split)
            X = torch.randn(n, dim, generator=gen, dtype=torch.float64)
            eps = torch.randn(n, generator=gen, dtype=torch.float64) * noise
            return X, X @ w_star + true_b + eps

        splits = {s: draw(s, n) for s, n in (("train", n_train), ("val", n_val), ("test", n_test))}
        meta = {
            "true_w": w_star,
            "true_b": float(true_b),
            "noise": float(noise),
            "sparsity": sparsity,
            "seed": seed,
        }
        name = "synthetic" if sparsity is None else "synthetic-sparse"
        return cls._from_splits(name, splits, meta).to(dtype=dtype)

    @classmethod
    def diabetes(
        cls,
        n_train: int = 50,
        degree: int = 3,
        n_val: int = 100,
        seed: int = 0,
        dtype: torch.dtype = torch.float32,
    ) -> Problem:
        """scikit-learn's diabetes data (442 rows, shipped with it) with polynomial features.

        Degree 2 gives 65 features, degree 3 gives 285: more features than training rows. Rows are
        split at random by ``seed``; the remainder after train and validation is the test split.
        Features and target are standardized with training-split statistics only.
        """
        from sklearn.datasets import load_diabetes
        from sklearn.preprocessing import PolynomialFeatures

        if degree < 1:
            raise ValueError(f"degree must be >= 1, got {degree}")
        X_raw, y_raw = load_diabetes(return_X_y=True)
        n_total = X_raw.shape[0]
        if n_train < 2 or n_val < 1 or n_train + n_val >= n_total:
            raise ValueError(
                f"n_train ({n_train}) >= 2 and n_val ({n_val}) >= 1 must leave test rows "
                f"out of {n_total}"
            )
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
        x_mean, x_std = X_all[tr].mean(0), X_all[tr].std(0)
        x_std = torch.where(x_std > 0, x_std, torch.ones_like(x_std))
        y_mean, y_std = y_all[tr].mean(), y_all[tr].std()
        splits = {
            s: ((X_all[idx] - x_mean) / x_std, (y_all[idx] - y_mean) / y_std)
            for s, idx in parts.items()
        }
        meta = {"degree": degree, "seed": seed, "y_mean": float(y_mean), "y_std": float(y_std)}
        return cls._from_splits("diabetes", splits, meta).to(dtype=dtype)

    @classmethod
    def _from_splits(
        cls,
        name: str,
        splits: dict[str, tuple[torch.Tensor, torch.Tensor]],
        meta: dict[str, Any],
    ) -> Problem:
        return cls(
            name=name,
            X_train=splits["train"][0],
            y_train=splits["train"][1],
            X_val=splits["val"][0],
            y_val=splits["val"][1],
            X_test=splits["test"][0],
            y_test=splits["test"][1],
            meta=meta,
        )
