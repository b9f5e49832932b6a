"""Figures against λ: validation loss (fig. 2), ‖w‖₂ (fig. 3a), fraction of exact zeros (fig. 3b).

In every panel: Optuna trials as points, the dense same-budget grid as a line (mean over data
seeds) with its 95 % band, the converged oracle (ridge / lasso / elastic-net path, mean over data
seeds) as a dashed line. λ = 0 cannot sit on a log axis, so "no decay" is a horizontal line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes

from reports.document import Figure
from reports.load import RunData
from reports.plotting import (
    Missing,
    color_for,
    log_axis,
    mpl_text,
    new_figure,
    order_penalties,
    positive,
    save,
    theme,
)
from reports.stats import chosen_penalty, ci_half_width, row_at

__all__ = ["VAL_LOSS", "W_NORM", "Metric", "lam_figure", "zero_fraction_figure"]

_ORACLE_NAMES = {"l2": "ridge", "l1": "lasso", "elastic": "elastic net"}


@dataclass(frozen=True)
class Metric:
    """One y-quantity: its column in trials / grid summary / oracle summary, label, scale."""

    trial: str
    grid: str
    oracle: str
    label: str
    log: bool


VAL_LOSS = Metric("value", "val_mean", "val_loss", "validation loss (½·MSE)", log=True)
W_NORM = Metric("w_norm", "w_norm", "w_norm", "‖w‖₂ (mean over data seeds)", log=True)


def lam_figure(
    run: RunData, grid: pd.DataFrame | None, oracle: pd.DataFrame | None, metric: Metric, path: Path
) -> Figure | Missing:
    """One panel per penalty (none excluded) of ``metric`` against λ; saved to ``path``."""
    complete = run.complete
    names = list(complete["penalty"]) + ([] if grid is None else list(grid["penalty"]))
    penalties = [p for p in order_penalties(names) if p != "none"]
    if not penalties:
        return Missing("no trial or grid point has a penalty other than none")
    with theme():
        fig, axes = new_figure(len(penalties), sharey=True)
        for ax, penalty in zip(axes, penalties, strict=True):
            _grid_lines(ax, grid, penalty, metric)
            _trial_points(ax, complete, penalty, metric.trial)
            _oracle_line(ax, oracle, penalty, metric.oracle)
            _reference(ax, run, grid, metric)
            if metric is VAL_LOSS:
                _chosen(ax, run.selected, penalty)
            _finish(ax, penalty, metric)
        save(fig, path)
    caption = (
        f"{metric.label} against λ (log–log), one panel per penalty. Points: COMPLETE Optuna "
        "trials (failed and pruned excluded). Solid line: dense same-budget grid, mean over data "
        "seeds"
        + (f" with its 95 % t-interval (band; {_seeds(grid)})" if metric is VAL_LOSS else "")
        + ". Dashed: "
        "the converged oracle (exact ridge / lasso path). Dotted: no decay (λ = 0)."
        + (
            " Red star: the chosen best of each penalty with its 95 % interval."
            if metric is VAL_LOSS
            else ""
        )
    )
    return Figure(path.name, caption, f"{metric.label} against λ, one panel per penalty")


def zero_fraction_figure(
    run: RunData, grid: pd.DataFrame | None, oracle: pd.DataFrame | None, path: Path
) -> Figure | Missing:
    """Fraction of exact zeros in w against λ for L1: proximal versus subgradient, and lasso."""
    has_grid = grid is not None and bool((grid["penalty"] == "l1").any())
    has_trials = bool((run.complete["penalty"] == "l1").any())
    if not (has_grid or has_trials):
        return Missing("no L1 configuration was trained, so there are no zeros to count")
    metric = Metric(
        "zero_fraction", "zero_fraction", "zero_fraction", "fraction of exact zeros in w", log=False
    )
    with theme():
        fig, (ax,) = new_figure(1, panel=(6.5, 4.0))
        _grid_lines(ax, grid, "l1", metric)
        _trial_points(ax, run.complete, "l1", metric.trial)
        _oracle_line(ax, oracle, "l1", metric.oracle)
        _finish(ax, "l1: proximal (soft-threshold) vs subgradient (scratch)", metric)
        ax.set_ylim(-0.03, 1.03)
        save(fig, path)
    caption = (
        "Fraction of coordinates of w that are exactly 0 against λ (log x) for L1. Proximal "
        "(soft-threshold) updates produce exact zeros; the subgradient update (the lesson's "
        "sign(w)·λ) leaves weights hovering near zero. Lines: dense grid, mean over data seeds; "
        "points: trials; dashed: converged lasso."
    )
    return Figure(path.name, caption, "fraction of exact zeros in w against λ for L1")


def _grid_lines(ax: Axes, grid: pd.DataFrame | None, penalty: str, metric: Metric) -> None:
    """Dense grid: one line per (loop, l1_ratio), with the 95 % band for validation loss."""
    if grid is None:
        return
    part = _best_ratio(grid[(grid["penalty"] == penalty) & positive(grid["lam"].to_numpy())])
    loops = sorted(set(part["loop"]))
    for (loop, ratio), g in part.groupby(["loop", "l1_ratio"], dropna=False, sort=True):
        color = color_for(str(loop), loops)
        name = f"grid · {loop}" + (f" ρ={ratio:g}" if _finite(ratio) else "")
        ax.plot(g["lam"], g[metric.grid], color=color, lw=1.8, label=mpl_text(name))
        if metric.grid == "val_mean":
            low = g["val_mean"] - g["val_ci95"]
            ax.fill_between(g["lam"], low, g["val_mean"] + g["val_ci95"], color=color, alpha=0.15)


def _best_ratio(part: pd.DataFrame) -> pd.DataFrame:
    """Per loop, only the l1_ratio whose best grid point is lowest: one line per loop, not per ρ."""
    if part.empty or part["l1_ratio"].nunique() <= 1:
        return part
    keep: list[pd.DataFrame] = []
    for _, g in part.groupby("loop", sort=True):
        ratio = row_at(g, "val_mean")["l1_ratio"]
        keep.append(g[g["l1_ratio"] == ratio])
    return pd.concat(keep)


def _trial_points(ax: Axes, complete: pd.DataFrame, penalty: str, column: str) -> None:
    """Optuna trials (COMPLETE only) as points coloured by loop."""
    part = complete[(complete["penalty"] == penalty) & positive(complete["lam"].to_numpy())]
    if part.empty:
        return
    loops = sorted(set(part["loop"]))
    shown = part.assign(loop_label=[mpl_text(f"trials · {x}") for x in part["loop"]])
    palette = {mpl_text(f"trials · {x}"): color_for(x, loops) for x in loops}
    sns.scatterplot(
        data=shown,
        x="lam",
        y=column,
        hue="loop_label",
        palette=palette,
        ax=ax,
        s=22,
        alpha=0.65,
        edgecolor="none",
        legend=True,
    )


def _oracle_line(ax: Axes, oracle: pd.DataFrame | None, penalty: str, column: str) -> None:
    """The converged solution path (mean over data seeds), dashed."""
    if oracle is None or penalty not in _ORACLE_NAMES:
        return
    part = oracle[(oracle["penalty"] == penalty) & positive(oracle["lam"].to_numpy())]
    for ratio, g in part.groupby("l1_ratio", dropna=False, sort=True):
        name = f"converged {_ORACLE_NAMES[penalty]}" + (f" ρ={ratio:g}" if _finite(ratio) else "")
        ax.plot(g["lam"], g[column], color="black", ls="--", lw=1.3, label=mpl_text(name))


def _reference(ax: Axes, run: RunData, grid: pd.DataFrame | None, metric: Metric) -> None:
    """No decay as a horizontal dotted line (selection for the loss, else the grid)."""
    value = math.nan
    sel = run.selected
    if metric is VAL_LOSS and sel is not None and (sel["label"] == "no-decay").any():
        value = float(sel.loc[sel["label"] == "no-decay", "val_mean"].iloc[0])
    elif grid is not None and (grid["penalty"] == "none").any():
        value = float(grid.loc[grid["penalty"] == "none", metric.grid].mean())
    if math.isfinite(value) and (value > 0 or not metric.log):
        ax.axhline(value, color="#7f7f7f", ls=":", lw=1.5, label="no decay (λ = 0)")


def _chosen(ax: Axes, selected: pd.DataFrame | None, penalty: str) -> None:
    """The chosen best of this penalty: a star with its 95 % interval; larger if overall best."""
    if selected is None:
        return
    rows = selected[(selected["label"] == f"best-{penalty}") & positive(selected["lam"].to_numpy())]
    best = penalty == chosen_penalty(selected)
    for _, row in rows.iterrows():
        ax.errorbar(
            [row["lam"]],
            [row["val_mean"]],
            yerr=_nan0(row["val_ci95"]),
            fmt="*",
            ms=16 if best else 12,
            color="#d62728",
            mec="black",
            zorder=5,
            label="chosen (overall best)" if best else "chosen for this penalty",
        )


def _finish(ax: Axes, title: str, metric: Metric) -> None:
    log_axis(ax, "x")
    if metric.log:
        log_axis(ax, "y")
    ax.set_xlabel("λ (penalty strength, log scale)")
    ax.set_ylabel(metric.label)
    ax.set_title(mpl_text(title))
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, labels, fontsize="x-small", loc="best")


def _seeds(grid: pd.DataFrame | None) -> str:
    """How many seeds the band rests on, and the t multiplier that implies."""
    if grid is None or grid.empty:
        return "no grid"
    n = int(grid["n"].max())
    if n < 2:
        return "1 seed: no interval"
    return f"mean ± t·sd/√S over S = {n} data seeds, t = {ci_half_width(1.0, n) * math.sqrt(n):.3g}"


def _finite(x: object) -> bool:
    return isinstance(x, int | float | np.floating) and math.isfinite(float(x))


def _nan0(x: object) -> float:
    return float(x) if isinstance(x, int | float | np.floating) and math.isfinite(x) else 0.0
