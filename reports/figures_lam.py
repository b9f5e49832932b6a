"""Figures against λ: validation loss (fig. 2; and validation accuracy, fig. 2b, for
classification), ‖w‖₂ (fig. 3a), fraction of exact zeros (fig. 3b).

In every panel: Optuna trials as points, the dense same-budget grid as a line (mean over data
seeds) with its 95 % band, the converged oracle (ridge / lasso / elastic-net path, mean over data
seeds) as a dashed line. λ = 0 cannot sit on a log axis, so "no decay" is a horizontal line.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure as MplFigure

from reports.document import Figure
from reports.load import RunData
from reports.plotting import (
    Missing,
    color_for,
    figure_legend,
    in_range,
    log_axis,
    loss_label,
    mpl_text,
    new_figure,
    null_line,
    null_value,
    order_penalties,
    place_panel_rows,
    placed_panels,
    positive,
    save,
    theme,
)
from reports.stats import chosen_penalty, ci_half_width, row_at

__all__ = ["VAL_ACC", "VAL_LOSS", "W_NORM", "Metric", "lam_figure", "zero_fraction_figure"]

_ORACLE_NAMES = {"l2": "ridge", "l1": "lasso", "elastic": "elastic net"}
NULL = "null"
#: The zoomed row of fig. 2 reaches this multiple of the null model's loss.
ZOOM = 3.0
#: Line style and trial marker per loop (the colour is the penalty's).
LOOP_STYLES = {"proximal": "-", "scratch": "-."}
LOOP_MARKERS = {"proximal": "o", "scratch": "^"}


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
#: Classification only: trials' ``val_acc``, the grid summary's ``val_acc_mean`` (no oracle).
VAL_ACC = Metric("val_acc", "val_acc_mean", "", "validation accuracy (mean over data seeds)", False)


def lam_figure(
    run: RunData, grid: pd.DataFrame | None, oracle: pd.DataFrame | None, metric: Metric, path: Path
) -> Figure | Missing:
    """One panel per penalty (none excluded) of ``metric`` against λ; saved to ``path``.

    For the validation loss a second row zooms on the optimum: linear y from just below the
    best grid point to ``ZOOM`` × the null model's loss, where the intervals are visible.
    """
    complete = run.complete
    names = list(complete["penalty"]) + ([] if grid is None else list(grid["penalty"]))
    penalties = [p for p in order_penalties(names) if p not in ("none", NULL)]
    if not penalties:
        return Missing("no trial or grid point has a penalty other than none")
    if metric is VAL_ACC and (grid is None or VAL_ACC.grid not in grid):
        return Missing("the dense grid has no accuracies (not a classification study)")
    metric = dataclasses.replace(metric, label=loss_label(metric.label, run.classification))
    zoom = _zoom_limits(run, grid) if _is_loss(metric) else None
    with theme():
        rows = 1 if zoom is None else 2
        fig = MplFigure(figsize=(5.0 * len(penalties), 3.8 * rows + 0.9))  # place_panel_rows
        grid_axes = placed_panels(fig, rows, len(penalties), sharey="row")
        for row, axes in enumerate(grid_axes):
            for ax, penalty in zip(axes, penalties, strict=True):
                _panel(ax, run, grid, oracle, penalty, metric, zoomed=row == 1)
                if row == 1 and zoom is not None:
                    ax.set_ylim(*zoom)
                    ax.set_title(mpl_text(f"{penalty}: zoomed on the optimum (linear y)"))
        axes_all = [ax for axes in grid_axes for ax in axes]
        legend = figure_legend(fig, axes_all, columns=min(3, len(penalties)))  # within the width
        place_panel_rows(fig, grid_axes, legend)
        save(fig, path)
    caption = (
        f"{metric.label} against λ (log x), one panel per penalty, one colour per penalty. "
        "Points: COMPLETE Optuna trials (failed and pruned excluded; ○ proximal, △ "
        "(sub)gradient). Lines: dense same-budget grid, mean over data seeds (solid proximal, "
        "dash-dot (sub)gradient)"
        + (f", with its 95 % t-interval as a band ({_seeds(grid)})" if _is_loss(metric) else "")
        + (
            ". No oracle line: a network has no closed-form solution"
            if run.network
            else ". Dashed black: the converged oracle (exact ridge / lasso / elastic-net path)"
        )
        + ". Dotted grey: no decay (λ = 0)."
        + (
            f" Dotted black: the null model ({_null_words(run)}). Red star: the chosen "
            "best of each penalty with its 95 % interval (hollow: every weight 0, i.e. the null "
            "model). On the log axis of the top row a band whose lower end is ≤ 0 is cut at the "
            f"panel's floor; the bottom row zooms on the optimum (linear y, up to {ZOOM:g}× the "
            "null loss)."
            if _is_loss(metric)
            else ""
        )
        + (
            f" Dotted black: the null model ({_null_words(run)}). Red star: the chosen best of "
            "each penalty with its 95 % interval. Higher is better."
            if metric.grid == VAL_ACC.grid
            else ""
        )
    )
    return Figure(path.name, caption, f"{metric.label} against λ, one panel per penalty")


def _panel(
    ax: Axes,
    run: RunData,
    grid: pd.DataFrame | None,
    oracle: pd.DataFrame | None,
    penalty: str,
    metric: Metric,
    zoomed: bool,
) -> None:
    _grid_lines(ax, grid, penalty, metric, log=metric.log and not zoomed)
    _trial_points(ax, run.complete, penalty, metric.trial)
    _oracle_line(ax, oracle, penalty, metric.oracle)
    _reference(ax, run, grid, metric)
    if _is_loss(metric):
        null_line(ax, run.selected)
        _chosen(ax, run.selected, penalty)
    elif metric.grid == VAL_ACC.grid:
        null_line(ax, run.selected, "val_acc_mean")
        _chosen(ax, run.selected, penalty, "val_acc")
    _finish(ax, penalty, metric, log_y=metric.log and not zoomed)


def _is_loss(metric: Metric) -> bool:
    """Whether ``metric`` is the validation loss (fig. 2: zoom row, band, null model)."""
    return metric.grid == VAL_LOSS.grid


def _null_words(run: RunData) -> str:
    if run.classification:
        return "predict the majority class of y_train"
    return "w = 0, b = mean of y_train"


def _zoom_limits(run: RunData, grid: pd.DataFrame | None) -> tuple[float, float] | None:
    """(just below the best grid point, ``ZOOM`` × the null loss), or None without a null row."""
    null = null_value(run.selected)
    if grid is None or grid.empty or not math.isfinite(null):
        return None
    best = float(pd.to_numeric(grid["val_mean"], errors="coerce").min())
    if not math.isfinite(best):
        return None
    low = best - 0.1 * (null - best) if null > best else best * 0.95
    return max(low, 0.0), ZOOM * null


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
        fig, (ax,) = new_figure(1, panel=(6.5, 4.0), placed=True)
        _grid_lines(ax, grid, "l1", metric)
        _trial_points(ax, run.complete, "l1", metric.trial)
        _oracle_line(ax, oracle, "l1", metric.oracle)
        _finish(ax, "l1: proximal (soft-threshold) vs subgradient (scratch)", metric)
        ax.set_ylim(-0.03, 1.03)
        place_panel_rows(fig, [[ax]], figure_legend(fig, [ax]))
        save(fig, path)
    caption = (
        "Fraction of coordinates of w that are exactly 0 against λ (log x) for L1. Proximal "
        "(soft-threshold) updates produce exact zeros; the subgradient update (the lesson's "
        "sign(w)·λ) leaves weights hovering near zero. Lines: dense grid, mean over data seeds; "
        "points: trials; dashed: converged lasso."
    )
    return Figure(path.name, caption, "fraction of exact zeros in w against λ for L1")


def _grid_lines(
    ax: Axes, grid: pd.DataFrame | None, penalty: str, metric: Metric, log: bool = True
) -> None:
    """Dense grid: one line per (loop, l1_ratio) in the penalty's colour (line style by loop),
    with the 95 % band for validation loss (cut at a positive floor on a log axis)."""
    if grid is None:
        return
    part = _best_ratio(grid[(grid["penalty"] == penalty) & positive(grid["lam"].to_numpy())])
    color = color_for(penalty, [penalty])
    for (loop, ratio), g in part.groupby(["loop", "l1_ratio"], dropna=False, sort=True):
        name = f"grid · {penalty} · {loop}" + (f" ρ={ratio:g}" if _finite(ratio) else "")
        style = LOOP_STYLES.get(str(loop), "-")
        ax.plot(g["lam"], g[metric.grid], color=color, ls=style, lw=1.8, label=mpl_text(name))
        if metric.grid == "val_mean":
            low = (g["val_mean"] - g["val_ci95"]).to_numpy(dtype=float)
            high = (g["val_mean"] + g["val_ci95"]).to_numpy(dtype=float)
            if log:
                floor = 0.5 * float(np.nanmin(g["val_mean"].to_numpy(dtype=float)))
                low = np.maximum(low, floor)
            ax.fill_between(g["lam"], low, high, color=color, alpha=0.15, lw=0)


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
    """Optuna trials (COMPLETE only) as points in the penalty's colour, marker by loop."""
    part = complete[(complete["penalty"] == penalty) & positive(complete["lam"].to_numpy())]
    part = part[in_range(part[column].to_numpy(float))]
    color = color_for(penalty, [penalty])
    for loop, g in part.groupby("loop", sort=True):
        ax.scatter(
            g["lam"],
            g[column],
            color=color,
            marker=LOOP_MARKERS.get(str(loop), "o"),
            s=18,
            alpha=0.55,
            lw=0,
            label=mpl_text(f"trials · {penalty} · {loop}"),
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
    if _is_loss(metric) and sel is not None and (sel["label"] == "no-decay").any():
        value = float(sel.loc[sel["label"] == "no-decay", "val_mean"].iloc[0])
    elif grid is not None and (grid["penalty"] == "none").any():
        value = float(grid.loc[grid["penalty"] == "none", metric.grid].mean())
    if math.isfinite(value) and (value > 0 or not metric.log):
        ax.axhline(value, color="#7f7f7f", ls=":", lw=1.5, label="no decay (λ = 0)")


def _chosen(ax: Axes, selected: pd.DataFrame | None, penalty: str, column: str = "val") -> None:
    """The chosen best of this penalty: a star with its 95 % interval (capped bars); larger if
    overall best, hollow when every weight is 0 (the null model). ``column``: ``val`` (the loss)
    or ``val_acc``, read as ``<column>_mean`` ± ``<column>_ci95``."""
    if selected is None or f"{column}_mean" not in selected:
        return
    rows = selected[(selected["label"] == f"best-{penalty}") & positive(selected["lam"].to_numpy())]
    best = penalty == chosen_penalty(selected)
    for _, row in rows.iterrows():
        empty = "empty" in row.index and bool(row["empty"])
        label = "chosen (overall best)" if best else "chosen for this penalty"
        ax.errorbar(
            [row["lam"]],
            [row[f"{column}_mean"]],
            yerr=_nan0(row[f"{column}_ci95"]),
            fmt="*",
            ms=16 if best else 12,
            color="#d62728",
            mfc="none" if empty else "#d62728",
            mec="#d62728" if empty else "black",
            capsize=5,
            elinewidth=1.6,
            zorder=5,
            label=label + (" — w = 0: the null model" if empty else ""),
        )


def _finish(ax: Axes, title: str, metric: Metric, log_y: bool | None = None) -> None:
    log_axis(ax, "x")
    if metric.log if log_y is None else log_y:
        log_axis(ax, "y")
    ax.set_xlabel("λ (penalty strength, log scale)")
    ax.set_ylabel(metric.label)
    ax.set_title(mpl_text(title))


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
