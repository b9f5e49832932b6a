"""``Problem``: train / validation / test tensors of a regression or classification task, and its
builders.

Tensors are generated in float64 on the CPU and cast on request, so float32 and float64 runs, and
CPU and CUDA runs, see the same data (a classification problem's labels stay ``torch.long``).
The builders live in their own modules (``_synthetic``, ``_diabetes``, ``_digits``, ``_split``
for tables); the classmethods here are their public face.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from wdbench.problems._tabular import (
    TEST_FRACTION,
    VAL_FRACTION,
    Table,
    array_table,
    frame_table,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Problem"]


@dataclass(frozen=True, eq=False)
class Problem:
    """Train/validation/test tensors of a problem: features ``X`` ``[n, d]`` and targets ``y``
    ``[n]``.

    ``n_classes == 0`` (the default) is a regression problem: ``y`` is a float tensor of the
    features' dtype. ``n_classes >= 2`` is a classification problem: ``y`` holds class indices in
    ``[0, n_classes)`` as ``torch.long``, and ``to`` casts only the features.
    """

    name: str
    X_train: torch.Tensor
    y_train: torch.Tensor
    X_val: torch.Tensor
    y_val: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor
    meta: dict[str, Any] = field(default_factory=dict)
    n_classes: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.n_classes, bool) or not isinstance(self.n_classes, int):
            raise ValueError(f"n_classes must be an integer, got {self.n_classes!r}")
        if self.n_classes == 1 or self.n_classes < 0:
            raise ValueError(f"n_classes must be 0 (regression) or >= 2, got {self.n_classes}")
        for split in ("train", "val", "test"):
            y = getattr(self, f"y_{split}")
            if self.n_classes and y.dtype != torch.long:
                raise ValueError(f"y_{split} of a classification problem must be torch.long")
            if not self.n_classes and not y.is_floating_point():
                raise ValueError(f"y_{split} of a regression problem must be a float tensor")

    @property
    def task(self) -> str:
        """``"classification"`` when the problem has classes, else ``"regression"``."""
        return "classification" if self.n_classes else "regression"

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
        """A copy on ``device`` with floating tensors cast to ``dtype`` (class labels stay
        ``torch.long``; self if nothing changes)."""
        device = self.device if device is None else torch.device(device)
        dtype = self.dtype if dtype is None else dtype
        if device == self.device and dtype == self.dtype:
            return self
        moved: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, torch.Tensor):
                cast = dtype if value.is_floating_point() else value.dtype
                moved[f.name] = value.to(device=device, dtype=cast)
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
        rho: float = 0.0,
        seed: int = 0,
        dtype: torch.dtype = torch.float32,
    ) -> Problem:
        """The lesson's data: y = true_b + Σᵢ w*ᵢ xᵢ + ε, x ~ N(0, Σ), ε ~ N(0, noise²).

        Σᵢⱼ = ``rho``^|i−j| (Toeplitz; ``rho=0``: the lesson's identity). w*ᵢ = ``true_w`` for every
        i, or, with ``sparsity=k``, for k coordinates drawn from the seed (the others 0). The d2l
        book's setting is ``n_train=20, true_b=0.05``.
        """
        from wdbench.problems._synthetic import synthetic

        return synthetic(
            seed=seed,
            dtype=dtype,
            n_train=n_train,
            n_val=n_val,
            n_test=n_test,
            dim=dim,
            true_w=true_w,
            true_b=true_b,
            noise=noise,
            sparsity=sparsity,
            rho=rho,
        )

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
        from wdbench.problems._diabetes import diabetes

        return diabetes(seed=seed, dtype=dtype, n_train=n_train, degree=degree, n_val=n_val)

    @classmethod
    def digits(
        cls,
        n_train: int = 200,
        n_val: int = 300,
        seed: int = 0,
        dtype: torch.dtype = torch.float32,
    ) -> Problem:
        """scikit-learn's handwritten digits (1,797 images of 8×8 pixels, 10 classes, shipped with
        it): 64 features, classification.

        Rows are split at random by ``seed``: ``n_train`` training rows, ``n_val`` validation
        rows, the rest (1,297 by default) test rows. Pixels are standardized with training-split
        statistics only (a pixel constant on the training rows is only centred).
        """
        from wdbench.problems._digits import digits

        return digits(seed=seed, dtype=dtype, n_train=n_train, n_val=n_val)

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        target: str | None = None,
        features: Sequence[str] | None = None,
        *,
        seed: int = 0,
        n_train: int | None = None,
        val_fraction: float = VAL_FRACTION,
        test_fraction: float = TEST_FRACTION,
        dtype: torch.dtype = torch.float32,
    ) -> Problem:
        """A draw of a data frame's rows: ``target`` (default: the last column) predicted from
        ``features`` (default: every other column) — regression for a numeric target,
        classification for a categorical one; splits and scaling as ``from_table``."""
        return cls.from_table(
            frame_table(frame, target, features),
            seed=seed,
            n_train=n_train,
            val_fraction=val_fraction,
            test_fraction=test_fraction,
            dtype=dtype,
        )

    @classmethod
    def from_arrays(
        cls,
        X: Any,
        y: Any,
        *,
        seed: int = 0,
        n_train: int | None = None,
        val_fraction: float = VAL_FRACTION,
        test_fraction: float = TEST_FRACTION,
        dtype: torch.dtype = torch.float32,
    ) -> Problem:
        """A draw of the rows of ``X`` ``[rows, features]`` and ``y`` ``[rows]`` (arrays or
        tensors); splits and scaling as ``from_table``."""
        return cls.from_table(
            array_table(X, y),
            seed=seed,
            n_train=n_train,
            val_fraction=val_fraction,
            test_fraction=test_fraction,
            dtype=dtype,
        )

    @classmethod
    def from_table(
        cls,
        table: Table,
        *,
        seed: int = 0,
        n_train: int | None = None,
        val_fraction: float = VAL_FRACTION,
        test_fraction: float = TEST_FRACTION,
        dtype: torch.dtype = torch.float32,
    ) -> Problem:
        """One draw of a table's rows by ``seed``: test, validation (their fractions of the rows)
        and ``n_train`` training rows (default: the rest), disjoint. Features are standardized and
        a numeric target is centred and scaled with training statistics only, in float64, then
        cast; a categorical target (``Table.classes``) gives class labels (``n_classes``)."""
        from wdbench.problems._split import table_problem

        return table_problem(
            table,
            seed=seed,
            n_train=n_train,
            val_fraction=val_fraction,
            test_fraction=test_fraction,
            dtype=dtype,
        )

    @classmethod
    def _from_splits(
        cls,
        name: str,
        splits: dict[str, tuple[torch.Tensor, torch.Tensor]],
        meta: dict[str, Any],
        n_classes: int = 0,
    ) -> Problem:
        return cls(
            name=name,
            n_classes=n_classes,
            X_train=splits["train"][0],
            y_train=splits["train"][1],
            X_val=splits["val"][0],
            y_val=splits["val"][1],
            X_test=splits["test"][0],
            y_test=splits["test"][1],
            meta=meta,
        )
