"""What the population benchmarks train: the kernel, and draws from the study's search space.

penalty uniform over none / l2 / l1 / elastic; λ log-uniform in [1e-5, 1e2] (0 for none); for
l1 and elastic the rule is the subgradient loop (``scratch``) or ``proximal`` with equal odds;
l1_ratio uniform in [0.05, 0.95]. Every configuration shares one train seed (one w₀, one batch
order), as the configurations of one study batch do. Drawn from a named ``torch.Generator``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
import torch

import wdbench
from wdbench.seeding import generator

__all__ = ["LAM_RANGE", "PENALTIES", "population_kernel", "space_configs"]

PENALTIES = ("none", "l2", "l1", "elastic")
LAM_RANGE = (1e-5, 1e2)


def space_configs(k: int, epochs: int = 100, seed: int = 0) -> list[wdbench.TrainConfig]:
    """``k`` configurations drawn from the search space (train seed ``seed`` for all)."""
    gen = generator(seed, "benchmarks", "space", k)
    which = torch.randint(len(PENALTIES), (k,), generator=gen)
    low, high = (math.log(v) for v in LAM_RANGE)
    lams = torch.exp(low + (high - low) * torch.rand(k, generator=gen, dtype=torch.float64))
    proximal = torch.rand(k, generator=gen) < 0.5
    ratios = 0.05 + 0.9 * torch.rand(k, generator=gen, dtype=torch.float64)
    configs = []
    for i in range(k):
        penalty = PENALTIES[int(which[i])]
        l1_part = penalty in ("l1", "elastic")
        configs.append(
            wdbench.TrainConfig(
                penalty=penalty,
                lam=0.0 if penalty == "none" else float(lams[i]),
                l1_ratio=float(ratios[i]) if penalty == "elastic" else 0.5,
                loop="proximal" if l1_part and bool(proximal[i]) else "scratch",
                epochs=epochs,
                seed=seed,
            )
        )
    return configs


def population_kernel() -> Callable[..., Any]:
    """``wdbench.train_population``, or a skip saying it is absent from this checkout."""
    kernel = getattr(wdbench, "train_population", None)
    if kernel is None:
        pytest.skip("wdbench.train_population is not available in this checkout")
    return kernel  # type: ignore[no-any-return]
