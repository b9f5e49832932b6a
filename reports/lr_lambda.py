"""Learning rate × λ from the dense grid: the optimum per lr, its log–log slope, the decay
timescale, and whether decoupling the decay changes the best loss.

Every number here is recomputed from ``grid.parquet`` (one row per grid point × data seed):

* ``lr_lambda_means`` — mean validation loss over data seeds per (optimizer, decay, penalty, lr,
  λ), points that diverged on any seed dropped;
* ``optima`` — per (optimizer, decay, penalty, lr): the λ* of lowest mean loss, τ_iter = 1/(η·λ*)
  steps and τ_epoch = τ_iter / (steps per epoch); ``at_edge`` marks a λ* at the end of the λ range
  (the true optimum may lie outside it);
* ``slopes`` — the least-squares slope of log λ* on log η over the lrs whose λ* is interior, with
  its 95 % Student-t interval (n − 2 degrees of freedom): 0 means lr and λ are separable, −1 means
  λ* ∝ 1/η (a constant timescale τ_iter);
* ``decoupling`` — per optimizer and penalty, the best coupled against the best decoupled grid
  point, paired over data seeds (the same draws): mean difference with its 95 % t-interval. Both
  points were chosen on the same validation draws, so the interval is optimistic about how far
  each optimum generalizes; a replication on fresh draws is the stricter test.

Old grids (no ``optimizer``, ``decay`` or ``lr`` column) are read as plain SGD at the run's lr
(``reports.load``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from reports.stats import ci_half_width, row_at

__all__ = [
    "LR_KEYS",
    "Decoupling",
    "Slope",
    "decoupling",
    "has_lr_axis",
    "lr_lambda_means",
    "optima",
    "reference_slice",
    "slopes",
    "steps_per_epoch",
]

#: One panel of the lr × λ picture.
LR_KEYS = ["optimizer", "decay", "penalty"]


def has_lr_axis(grid: pd.DataFrame | None) -> bool:
    """Whether the grid varies the lr or holds an optimizer other than plain SGD (the lr × λ
    section is then drawn; a plain-SGD study at one lr is the report it always was)."""
    if grid is None or not {"optimizer", "decay", "lr"} <= set(grid.columns):
        return False
    lam = grid["penalty"] != "none"
    # two columns of the λ > 0 rows and their unique values: a copy of the grid and a set built
    # from every row's string took ≈ 15 ms a call
    optimizers = set(grid.loc[lam, "optimizer"].unique())
    return bool(grid.loc[lam, "lr"].nunique() > 1 or optimizers - {"sgd"})


def lr_lambda_means(grid: pd.DataFrame) -> pd.DataFrame:
    """Mean validation loss per (optimizer, decay, penalty, lr, λ) over data seeds (λ > 0, best
    l1_ratio of elastic per lr and λ); columns ``LR_KEYS, lr, lam, val_mean, n``."""
    part = grid[(grid["penalty"] != "none") & (grid["lam"] > 0)]
    ok = part.assign(ok=(part["status"] == "ok") & np.isfinite(part["val_loss"].astype(float)))
    keys = [*LR_KEYS, "lr", "lam", "l1_ratio"]
    means = ok.groupby(keys, dropna=False, sort=True).agg(
        val_mean=("val_loss", "mean"), n=("val_loss", "size"), ok=("ok", "all")
    )
    means = means[means["ok"]].reset_index()
    best = means.sort_values("val_mean", kind="stable").drop_duplicates([*LR_KEYS, "lr", "lam"])
    out: pd.DataFrame = best.drop(columns=["ok"]).sort_values([*LR_KEYS, "lr", "lam"])
    return out.reset_index(drop=True)


def optima(means: pd.DataFrame, steps_per_epoch: float) -> pd.DataFrame:
    """λ* per (optimizer, decay, penalty, lr), with τ_iter, τ_epoch and ``at_edge``."""
    rows = []
    for key, g in means.groupby([*LR_KEYS, "lr"], sort=True):
        best = row_at(g, "val_mean")
        lam, lr = float(best["lam"]), float(best["lr"])
        tau = 1.0 / (lr * lam)
        edge = lam in (float(g["lam"].min()), float(g["lam"].max()))
        rows.append(
            {
                **dict(zip([*LR_KEYS, "lr"], key, strict=True)),
                "lam_opt": lam,
                "val_mean": float(best["val_mean"]),
                "tau_iter": tau,
                "tau_epoch": tau / steps_per_epoch,
                "at_edge": edge,
            }
        )
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class Slope:
    """d log λ* / d log η with its 95 % half-width, over ``n`` interior lrs of ``n_lr``."""

    optimizer: str
    decay: str
    penalty: str
    slope: float
    ci95: float
    n: int
    n_lr: int


def slopes(opt: pd.DataFrame) -> list[Slope]:
    """Least-squares slope of log λ* on log η per panel, interior optima only (NaN below 3)."""
    from scipy import stats as sps  # ≈ 0.7 s to import: only for a study with an lr axis

    out = []
    for key, g in opt.groupby(LR_KEYS, sort=True):
        inner = g[~g["at_edge"].astype(bool)]
        x, y = np.log(inner["lr"].to_numpy(float)), np.log(inner["lam_opt"].to_numpy(float))
        slope, half = math.nan, math.nan
        if len(x) >= 3 and np.ptp(x) > 0:
            fit = sps.linregress(x, y)
            slope = float(fit.slope)
            half = float(sps.t.ppf(0.975, len(x) - 2)) * float(fit.stderr)
        elif len(x) == 2 and np.ptp(x) > 0:
            slope = float((y[1] - y[0]) / (x[1] - x[0]))
        optimizer, decay, penalty = (str(k) for k in key)
        out.append(Slope(optimizer, decay, penalty, slope, half, len(x), len(g)))
    return out


@dataclass(frozen=True)
class Decoupling:
    """Best decoupled minus best coupled grid point (validation loss), paired over seeds."""

    optimizer: str
    penalty: str
    coupled: dict[str, float]
    decoupled: dict[str, float]
    diff: float
    ci95: float
    n: int


def decoupling(grid: pd.DataFrame, penalty: str | None = None) -> list[Decoupling]:
    """Per optimizer and penalty (or only ``penalty``) with both couplings in the grid: the
    paired comparison of their best grid points (each best over lr, λ and l1_ratio)."""
    part = grid[(grid["penalty"] != "none") & (grid["lam"] > 0)]
    if penalty is not None:
        part = part[part["penalty"] == penalty]
    out = []
    for (optimizer, name), g in part.groupby(["optimizer", "penalty"], sort=True):
        if set(g["decay"]) < {"coupled", "decoupled"}:
            continue
        best = {d: _best_point(g[g["decay"] == d]) for d in ("coupled", "decoupled")}
        if any(b is None for b in best.values()):
            continue
        losses = {d: _per_seed(g[g["decay"] == d], b) for d, b in best.items() if b is not None}
        seeds = losses["coupled"].index.intersection(losses["decoupled"].index)
        diff = (losses["decoupled"].loc[seeds] - losses["coupled"].loc[seeds]).to_numpy(float)
        std = float(np.std(diff, ddof=1)) if len(diff) > 1 else math.nan
        out.append(
            Decoupling(
                str(optimizer),
                str(name),
                best["coupled"] or {},
                best["decoupled"] or {},
                float(diff.mean()),
                ci_half_width(std, len(diff)),
                len(diff),
            )
        )
    return out


def _best_point(g: pd.DataFrame) -> dict[str, float] | None:
    keys = ["lr", "lam", "l1_ratio"]
    ok = g.assign(ok=(g["status"] == "ok") & np.isfinite(g["val_loss"].astype(float)))
    means = ok.groupby(keys, dropna=False).agg(val_mean=("val_loss", "mean"), ok=("ok", "all"))
    means = means[means["ok"]].reset_index()
    if means.empty:
        return None
    row = row_at(means, "val_mean")
    return {k: float(row[k]) for k in (*keys, "val_mean")}


def _per_seed(g: pd.DataFrame, point: dict[str, float]) -> pd.Series:
    mask = np.isclose(g["lr"], point["lr"]) & np.isclose(g["lam"], point["lam"])
    if math.isfinite(point["l1_ratio"]):
        mask &= np.isclose(g["l1_ratio"].astype(float), point["l1_ratio"])
    rows = g[mask]
    series: pd.Series = rows.groupby("data_seed")["val_loss"].min()
    return series


def reference_slice(grid: pd.DataFrame, selected: pd.DataFrame | None) -> pd.DataFrame:
    """The grid rows of the chosen optimizer at the grid lr nearest the chosen one: what the
    figures against λ show when the grid also varies lr and the optimizer."""
    if not has_lr_axis(grid):
        return grid
    optimizer, lr = str(grid["optimizer"].iloc[0]), float(grid["lr"].iloc[0])
    if selected is not None and (selected["label"] == "best").any():
        row = selected[selected["label"] == "best"].iloc[0]
        optimizer, lr = str(row["optimizer"]), float(row["lr"])
    part = grid[grid["optimizer"] == optimizer]
    if part.empty:
        part = grid
    lrs = np.unique(part["lr"].to_numpy(float))
    nearest = lrs[np.argmin(np.abs(np.log(lrs) - math.log(lr)))] if math.isfinite(lr) else lrs[0]
    sliced: pd.DataFrame = part[np.isclose(part["lr"], nearest)]
    return sliced


def steps_per_epoch(grid: pd.DataFrame) -> float:
    """Optimizer steps per epoch recorded in the grid (NaN in grids written before it was)."""
    if "steps_per_epoch" not in grid.columns or grid.empty:
        return math.nan
    return float(grid["steps_per_epoch"].iloc[0])
