"""Small hand-built problems for the network tests: a regression draw (the lesson's generator)
and a classification draw (long class indices in [0, n_classes), as ``Problem`` defines)."""

from __future__ import annotations

import functools
import math
from typing import Any

import torch

from wdbench import Problem, TrainConfig
from wdbench.seeding import generator


@functools.cache
def regression(shift: float = 0.0) -> Problem:
    """n_train = 23 (a partial last batch of 3 at B = 5), d = 12; ``shift`` moves every y."""
    base = Problem.synthetic(n_train=23, n_val=11, n_test=17, dim=12, seed=4, dtype=torch.float64)
    moved = {f"y_{s}": getattr(base, f"y_{s}") + shift for s in ("train", "val", "test")}
    return Problem(
        name="regression",
        X_train=base.X_train,
        X_val=base.X_val,
        X_test=base.X_test,
        **moved,
    )


@functools.cache
def classification(n_train: int = 23, dim: int = 12, n_classes: int = 4) -> Problem:
    """Rows x ~ N(0, I), classes from a random linear teacher plus noise (float64)."""
    gen = generator(11, "test-classification")
    teacher = torch.randn(dim, n_classes, generator=gen, dtype=torch.float64)
    splits: dict[str, Any] = {}
    for split, m in (("train", n_train), ("val", 13), ("test", 19)):
        X = torch.randn(m, dim, generator=gen, dtype=torch.float64)
        noise = torch.randn(m, n_classes, generator=gen, dtype=torch.float64)
        splits[f"X_{split}"] = X
        splits[f"y_{split}"] = (X @ teacher / math.sqrt(dim) + noise).argmax(-1)
    return Problem(name="classification", n_classes=n_classes, **splits)


PROBLEMS = {"regression": regression, "classification": classification}


def mlp(**fields: Any) -> TrainConfig:
    """Two hidden layers of 7 (unequal widths in and out), float64, 6 epochs."""
    base: dict[str, Any] = {
        "model": "mlp",
        "hidden": 7,
        "layers": 2,
        "dtype": "float64",
        "impl": "functional",
        "lr": 0.05,
        "epochs": 6,
        "seed": 3,
    }
    return TrainConfig(**{**base, **fields})
