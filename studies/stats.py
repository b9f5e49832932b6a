"""Summary statistics over data seeds: mean, sample standard deviation, 95% CI half-width."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = ["SeedSummary", "summarize"]


@dataclass(frozen=True)
class SeedSummary:
    """mean, std (ddof = 1) and the Student-t 95% half-width t₀.₉₇₅,ₙ₋₁ · std / √n.

    With one seed, std and the half-width are NaN (no spread can be estimated).
    """

    mean: float
    std: float
    ci95: float


def summarize(values: Sequence[float] | np.ndarray) -> SeedSummary:
    """Mean ± 95% CI of ``values`` (one per data seed)."""
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    if x.size == 0:
        raise ValueError("summarize needs at least one value")
    mean = float(x.mean())
    if x.size == 1:
        return SeedSummary(mean, math.nan, math.nan)
    std = float(x.std(ddof=1))
    half = float(stats.t.ppf(0.975, x.size - 1)) * std / math.sqrt(x.size)
    return SeedSummary(mean, std, half)
