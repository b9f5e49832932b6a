"""Figures of a study over time: loss curves per epoch (fig. 1), optimisation history (fig. 4)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.ticker import MaxNLocator

from reports.document import Figure
from reports.load import RunData
from reports.plotting import (
    Missing,
    color_for,
    figure_legend,
    log_axis,
    loss_label,
    mpl_text,
    new_figure,
    null_line,
    order_penalties,
    place_panel_rows,
    save,
    theme,
)
from reports.stats import best_so_far, chosen_penalty, row_at

__all__ = ["curve_labels", "curves_figure", "history_figure"]

_SPLITS = (("train", "training loss"), ("val", "validation loss"))


def curve_labels(curves: pd.DataFrame) -> list[str]:
    """Labels to draw: no decay, then each penalty's best; ``best`` only if it has no twin."""
    labels = set(curves["label"])
    per_penalty = [
        f"best-{p}" for p in order_penalties([x[5:] for x in labels if x.startswith("best-")])
    ]
    rest = sorted(labels - set(per_penalty) - {"no-decay", "best"})
    chosen = ["no-decay"] if "no-decay" in labels else []
    if "best" in labels and not per_penalty:
        chosen.append("best")
    return chosen + per_penalty + rest


def curves_figure(run: RunData, path: Path) -> Figure | Missing:
    """Train and validation loss against epoch (log y), mean over data seeds, min–max band."""
    curves = run.curves
    if curves is None:
        return Missing("curves.parquet is missing, so there are no per-epoch losses to draw")
    labels = curve_labels(curves)
    chosen = f"best-{chosen_penalty(run.selected)}"
    with theme():
        fig, axes = new_figure(2, sharey=True, placed=True)
        for ax, (split, title) in zip(axes, _SPLITS, strict=True):
            for label in labels:
                part = curves[(curves["label"] == label) & (curves["split"] == split)]
                _band_line(
                    ax,
                    part,
                    color_for(label, labels),
                    label + (" (chosen)" if label == chosen else ""),
                )
            if split == "val":
                null_line(ax, run.selected)
            log_axis(ax, "y")
            ylabel = loss_label("loss (½·MSE, mean over the split)", run.classification)
            ax.set(xlabel="epoch", ylabel=ylabel, title=title)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        place_panel_rows(fig, [axes], figure_legend(fig, axes))
        save(fig, path)
    seeds = curves["data_seed"].nunique()
    null = (
        "predict the majority class of y_train"
        if run.classification
        else "w = 0, b = mean of y_train"
    )
    caption = (
        "Training (left) and validation (right) loss per epoch, log y: no decay and the best "
        f"configuration of each penalty. Line: mean over {seeds} data seed(s); band: the min–max "
        "range over those seeds. A widening gap between the two panels is overfitting. Dotted "
        f"black: the null model ({null}) on the validation split."
    )
    return Figure(path.name, caption, "training and validation loss against epoch")


def _band_line(ax: Axes, part: pd.DataFrame, color: str, label: str) -> None:
    """Mean line and min–max band of ``loss`` over data seeds, per epoch."""
    if part.empty:
        return
    by_epoch = part.groupby("epoch")["loss"].agg(["mean", "min", "max"]).reset_index()
    ax.plot(by_epoch["epoch"], by_epoch["mean"], color=color, label=mpl_text(label), lw=1.6)
    ax.fill_between(
        by_epoch["epoch"], by_epoch["min"], by_epoch["max"], color=color, alpha=0.2, lw=0
    )


def history_figure(run: RunData, grid: pd.DataFrame | None, path: Path) -> Figure | Missing:
    """Each COMPLETE trial's validation loss, the best so far, and the grid's best as a line."""
    complete = run.complete
    if complete.empty:
        return Missing("no trial completed, so there is no optimisation history")
    history = best_so_far(complete)
    penalties = order_penalties(list(history["penalty"]))
    with theme():
        fig, (ax,) = new_figure(1, panel=(8.0, 4.2), placed=True)
        shown = history.assign(penalty=[mpl_text(p) for p in history["penalty"]])
        palette = {mpl_text(p): color_for(p, penalties) for p in penalties}
        sns.scatterplot(
            data=shown,
            x="number",
            y="value",
            hue="penalty",
            palette=palette,
            hue_order=[mpl_text(p) for p in penalties],
            s=22,
            alpha=0.75,
            ax=ax,
            zorder=3,
        )
        ax.step(
            history["number"],
            history["best"],
            where="post",
            color="black",
            lw=1.8,
            label="best so far",
        )
        grid_best = _grid_best(grid)
        if grid_best is not None:
            ax.axhline(
                grid_best[0],
                color="#d62728",
                ls="--",
                lw=1.3,
                label=mpl_text(f"dense grid best ({grid_best[1]})"),
            )
        null_line(ax, run.selected)
        log_axis(ax, "y")
        ylabel = loss_label("validation loss (½·MSE, mean over seeds)", run.classification)
        ax.set(xlabel="trial number", ylabel=ylabel)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        place_panel_rows(fig, [[ax]], figure_legend(fig, [ax], columns=4))
        save(fig, path)
    caption = (
        f"Optimisation history: {len(history)} COMPLETE trials (failed and pruned excluded) as "
        "points, the best-so-far validation loss as a step line, and the best mean validation "
        "loss of the dense same-budget grid as the dashed reference (log y)."
    )
    return Figure(path.name, caption, "best-so-far validation loss against trial number")


def _grid_best(grid: pd.DataFrame | None) -> tuple[float, str] | None:
    """The grid configuration with the lowest mean validation loss: (value, description)."""
    if grid is None or grid.empty:
        return None
    row = row_at(grid, "val_mean")
    lam = float(row["lam"])
    ratio = float(row["l1_ratio"])
    text = f"{row['penalty']}, {row['loop']}, λ={lam:.3g}"
    text += f", ρ={ratio:g}" if np.isfinite(ratio) else ""
    return float(row["val_mean"]), text
