"""Summaries over data seeds: means with Student-t 95 % intervals, grid optima, paired differences.

Every interval of the suite (the study's trial statistics, its printed summary and the report) is
the two-sided 95 % Student-t interval of a mean over the S data seeds of a study:
mean ± t₀.₉₇₅,S−1 · sd / √S (sd with ddof = 1), from ``scipy.stats.t``. With one seed it is
undefined (NaN), never silently zero. This module is its one home; it needs no torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

__all__ = [
    "CONFIG_KEYS",
    "PairedDifference",
    "SeedSummary",
    "best_so_far",
    "chosen_penalty",
    "ci_half_width",
    "final_losses",
    "grid_summary",
    "oracle_summary",
    "paired_difference",
    "row_at",
    "summarize",
]

#: Columns that identify one configuration in every table.
CONFIG_KEYS = ["penalty", "loop", "lam", "l1_ratio"]


def ci_half_width(std: float, n: int) -> float:
    """Half-width of the 95 % Student-t interval of a mean of ``n`` values of sample sd ``std``."""
    if n < 2 or not math.isfinite(std):
        return math.nan
    return float(sps.t.ppf(0.975, n - 1)) * std / math.sqrt(n)


@dataclass(frozen=True)
class SeedSummary:
    """mean, std (ddof = 1) and the 95 % half-width (``ci_half_width``) of one value per seed.

    With one seed, std and the half-width are NaN (no spread can be estimated).
    """

    mean: float
    std: float
    ci95: float


def summarize(values: Sequence[float] | np.ndarray) -> SeedSummary:
    """Mean ± 95 % CI of ``values`` (one per data seed)."""
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    if x.size == 0:
        raise ValueError("summarize needs at least one value")
    std = float(x.std(ddof=1)) if x.size > 1 else math.nan
    return SeedSummary(float(x.mean()), std, ci_half_width(std, int(x.size)))


def _mean_ci(frame: pd.DataFrame, keys: list[str], column: str) -> pd.DataFrame:
    """Per group of ``keys``: mean, 95 % half-width and count of ``column``."""
    grouped = frame.groupby(keys, dropna=False, sort=True)[column]
    out = grouped.agg(["mean", "std", "count"]).reset_index()
    out["ci95"] = [ci_half_width(s, int(n)) for s, n in zip(out["std"], out["count"], strict=True)]
    return out.rename(columns={"count": "n"}).drop(columns="std")


def grid_summary(grid: pd.DataFrame) -> pd.DataFrame:
    """Mean over data seeds of each dense-grid configuration, diverged points excluded.

    Columns: ``CONFIG_KEYS``, ``val_mean``, ``val_ci95``, ``n`` (seeds that finished) and the means
    of ``train_loss``, ``w_norm``, ``zero_fraction``. Sorted by penalty, loop, λ.
    """
    ok = grid[(grid["status"] == "ok") & np.isfinite(grid["val_loss"].astype(float))]
    if ok.empty:
        return pd.DataFrame(columns=[*CONFIG_KEYS, "val_mean", "val_ci95", "n"])
    val = _mean_ci(ok, CONFIG_KEYS, "val_loss").rename(
        columns={"mean": "val_mean", "ci95": "val_ci95"}
    )
    others = (
        ok.groupby(CONFIG_KEYS, dropna=False, sort=True)[["train_loss", "w_norm", "zero_fraction"]]
        .mean()
        .reset_index()
    )
    merged = val.merge(others, on=CONFIG_KEYS, how="left")
    return merged.sort_values(CONFIG_KEYS).reset_index(drop=True)


def row_at(frame: pd.DataFrame, column: str, largest: bool = False) -> pd.Series:
    """The row where ``column`` is smallest (or largest), NaN ignored; ``frame`` must have one."""
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
    index = np.nanargmax(values) if largest else np.nanargmin(values)
    return frame.iloc[int(index)]


def best_so_far(complete: pd.DataFrame) -> pd.DataFrame:
    """Trials in number order with the running minimum of the validation loss (``best``)."""
    ordered = complete.sort_values("number")[["number", "penalty", "value"]].copy()
    ordered["best"] = ordered["value"].cummin()
    return ordered.reset_index(drop=True)


def final_losses(curves: pd.DataFrame, split: str) -> pd.DataFrame:
    """The last epoch's loss per label and data seed for one split (label, data_seed, loss)."""
    part = curves[curves["split"] == split]
    last = part.loc[part.groupby(["label", "data_seed"])["epoch"].idxmax()]
    return last[["label", "data_seed", "loss"]].reset_index(drop=True)


@dataclass(frozen=True)
class PairedDifference:
    """Mean over common data seeds of loss(a) − loss(b), with its 95 % half-width."""

    mean: float
    ci95: float
    n: int
    mean_a: float
    mean_b: float


def paired_difference(final: pd.DataFrame, label_a: str, label_b: str) -> PairedDifference | None:
    """Paired comparison of two labels on the data seeds they share; ``None`` if none shared.

    Pairing by data seed removes the draw-to-draw variation that both configurations see (common
    random numbers), so the interval is about the configurations, not about the draws.
    """
    a = final[final["label"] == label_a].set_index("data_seed")["loss"]
    b = final[final["label"] == label_b].set_index("data_seed")["loss"]
    seeds = a.index.intersection(b.index)
    if len(seeds) == 0:
        return None
    diff = (a.loc[seeds] - b.loc[seeds]).to_numpy(dtype=float)
    std = float(np.std(diff, ddof=1)) if len(diff) > 1 else math.nan
    return PairedDifference(
        mean=float(diff.mean()),
        ci95=ci_half_width(std, len(diff)),
        n=len(diff),
        mean_a=float(a.loc[seeds].mean()),
        mean_b=float(b.loc[seeds].mean()),
    )


def oracle_summary(oracle: pd.DataFrame) -> pd.DataFrame:
    """Mean over data seeds of each converged-oracle point (ridge / lasso / elastic-net path)."""
    keys = ["penalty", "lam", "l1_ratio"]
    columns = ["train_loss", "val_loss", "test_loss", "w_norm", "zero_fraction"]
    out = oracle.groupby(keys, dropna=False, sort=True)[columns].mean().reset_index()
    return out.sort_values(keys).reset_index(drop=True)


def chosen_penalty(selected: pd.DataFrame | None) -> str:
    """Penalty of the overall best configuration (the ``best`` row, else the ``is_best`` row).

    Its ``best-<penalty>`` row is the same configuration, so figures and tables mark both.
    """
    if selected is None:
        return ""
    rows = selected[selected["label"] == "best"]
    if rows.empty:
        rows = selected[selected["is_best"].astype(bool)]
    return str(rows["penalty"].iloc[0]) if not rows.empty else ""
