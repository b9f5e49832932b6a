"""Figures of learning rate × λ from the dense grid (``reports.lr_lambda``).

Figure 6a: a heatmap of the mean validation loss over lr × λ, one panel per optimizer (rows) and
coupling (columns) — the picture of Loshchilov & Hutter (coupled L2 under Adam gives a diagonal
valley, decoupled decay a more separable one) — with the optimum per lr, the grid's best point and
the chosen configuration marked. Figure 6b: that optimum λ* against lr on log–log axes with its
fitted slope, and the same optimum as the decay timescale τ_epoch.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm

from reports.document import Figure
from reports.load import RunData
from reports.lr_lambda import Slope
from reports.plotting import (
    Missing,
    color_for,
    log_axis,
    loss_label,
    mpl_text,
    new_figure,
    save,
    theme,
)
from reports.stats import row_at

__all__ = ["heatmap_figure", "heatmap_penalty", "optimum_figure"]


def heatmap_penalty(means: pd.DataFrame) -> str | None:
    """The penalty the lr × λ figures show: l2 when the grid has it, else the first one."""
    names = sorted(set(means["penalty"]))
    if not names:
        return None
    return "l2" if "l2" in names else names[0]


def heatmap_figure(
    run: RunData, means: pd.DataFrame, opt: pd.DataFrame, path: Path
) -> Figure | Missing:
    """Figure 6a (see module); saved to ``path``."""
    penalty = heatmap_penalty(means)
    if penalty is None:
        return Missing("the dense grid has no point with λ > 0")
    part = means[means["penalty"] == penalty]
    optimizers = sorted(set(part["optimizer"]))
    decays = sorted(set(part["decay"]))
    low = float(part["val_mean"].min())
    norm = LogNorm(low, max(float(part["val_mean"].quantile(0.75)), 10 * low))
    chosen = _chosen(run)
    mesh = None
    with theme():
        fig, axes = new_figure(len(decays), len(optimizers), panel=(4.6, 3.8))
        for i, optimizer in enumerate(optimizers):
            for j, decay in enumerate(decays):
                ax = axes[i * len(decays) + j]
                cell = part[(part["optimizer"] == optimizer) & (part["decay"] == decay)]
                title = f"{optimizer} · {decay} · {penalty}"
                if cell.empty:
                    why = (
                        "plain SGD: one update, shown as coupled"
                        if optimizer == "sgd"
                        else ("not in the grid")
                    )
                    ax.set_title(mpl_text(title))
                    ax.text(0.5, 0.5, mpl_text(why), ha="center", va="center", fontsize="small")
                    ax.set_axis_off()
                    continue
                table = cell.pivot_table(index="lam", columns="lr", values="val_mean")
                if table.empty:
                    ax.set_axis_off()
                    continue
                mesh = ax.pcolormesh(
                    _edges(table.columns.to_numpy(float)),
                    _edges(table.index.to_numpy(float)),
                    table.to_numpy(float),
                    norm=norm,
                    cmap="viridis_r",
                    shading="flat",
                )
                best = opt[(opt["optimizer"] == optimizer) & (opt["decay"] == decay)
                           & (opt["penalty"] == penalty)]  # fmt: skip
                ax.plot(best["lr"], best["lam_opt"], "o", ms=3.5, color="white", label="λ* per lr")
                top = row_at(best, "val_mean") if not best.empty else None
                if top is not None:
                    ax.plot([top["lr"]], [top["lam_opt"]], "X", ms=11, color="white",
                            mec="black", label="grid best")  # fmt: skip
                if chosen is not None and chosen[:3] == (optimizer, decay, penalty):
                    ax.plot([chosen[3]], [chosen[4]], "*", ms=15, color="#d62728", mec="black",
                            label="chosen (best trial)")  # fmt: skip
                log_axis(ax, "x")
                log_axis(ax, "y")
                ax.set_xlabel("learning rate η")
                ax.set_ylabel("λ")
                ax.set_title(mpl_text(title))
                ax.legend(fontsize="x-small", loc="lower left")
        if mesh is None:
            return Missing("no lr × λ cell of the grid finished on every data seed")
        fig.colorbar(mesh, ax=axes, label="validation loss (mean over data seeds)")
        save(fig, path)
    caption = (
        loss_label(
            "Validation loss (½·MSE, mean over data seeds, log colour; the worst quarter "
            "saturates) ",
            run.classification,
        )
        + "of the "
        f"dense grid over learning rate × λ for {penalty}, one panel per optimizer (rows) and "
        "coupling (columns: coupled = the penalty in the optimizer's gradient, torch.optim.SGD/"
        "Adam weight_decay; decoupled = AdamW / SGDW decay, the proximal step for l1 and "
        "elastic). White dots: the best λ at each lr; white cross: the panel's best point; red "
        "star: the configuration the search chose, when it lies in the panel. A diagonal valley "
        "means lr and λ trade off; a valley parallel to an axis means they are separable. Points "
        "that diverged on any data seed are blank."
    )
    return Figure(path.name, caption, "lr × λ heatmaps of validation loss")


def optimum_figure(
    opt: pd.DataFrame, found: list[Slope], penalty: str, path: Path
) -> Figure | Missing:
    """Figure 6b (see module); saved to ``path``."""
    part = opt[opt["penalty"] == penalty]
    if part["lr"].nunique() < 2:
        return Missing("the grid has a single learning rate: no optimum to follow across lr")
    with theme():
        fig, (left, right) = new_figure(2, panel=(5.2, 4.0))
        keys = [f"{o} · {d}" for o, d in zip(part["optimizer"], part["decay"], strict=True)]
        for (optimizer, decay), g in part.groupby(["optimizer", "decay"], sort=True):
            key = f"{optimizer} · {decay}"
            color = color_for(key, keys)
            slope = next((s for s in found if (s.optimizer, s.decay, s.penalty)
                          == (optimizer, decay, penalty)), None)  # fmt: skip
            label = key + (f" (slope {_slope_text(slope)})" if slope is not None else "")
            edge = g["at_edge"].astype(bool).to_numpy()
            left.plot(g["lr"], g["lam_opt"], "-", color=color, lw=1.4, label=mpl_text(label))
            left.plot(g["lr"][~edge], g["lam_opt"][~edge], "o", color=color, ms=5)
            left.plot(g["lr"][edge], g["lam_opt"][edge], "o", color=color, ms=5, mfc="none")
            right.plot(g["lr"], g["tau_epoch"], "o-", color=color, ms=4, lw=1.2,
                       label=mpl_text(key))  # fmt: skip
        for ax, ylabel in ((left, "optimal λ*"), (right, "τ_epoch = 1/(η·λ*) / steps per epoch")):
            log_axis(ax, "x")
            log_axis(ax, "y")
            ax.set_xlabel("learning rate η")
            ax.set_ylabel(ylabel)
            ax.legend(fontsize="x-small", loc="best")
        left.set_title(mpl_text(f"optimal λ against lr ({penalty})"))
        right.set_title("the optimum as a decay timescale")
        save(fig, path)
    caption = (
        "Left: the λ of lowest mean validation loss at each learning rate of the dense grid "
        f"({penalty}), log–log; open circles lie at the end of the λ range (the optimum may be "
        "outside it) and are left out of the slope, a least-squares fit of log λ* on log η with "
        "its 95 % t-interval. Slope 0: lr and λ separable; slope −1: λ* ∝ 1/η, i.e. a constant "
        "decay timescale τ_iter = 1/(ηλ*). Right: that timescale in epochs, τ_epoch = τ_iter / "
        "(steps per epoch), the number to carry to another dataset size."
    )
    return Figure(path.name, caption, "optimal λ and decay timescale against lr")


def _slope_text(s: Slope) -> str:
    if not math.isfinite(s.slope):
        return "n/a"
    if math.isfinite(s.ci95):
        return f"{s.slope:.2f} ± {s.ci95:.2f}"
    return f"{s.slope:.2f}"


def _chosen(run: RunData) -> tuple[str, str, str, float, float] | None:
    """(optimizer, decay, penalty, lr, λ) of the best selected configuration."""
    sel = run.selected
    if sel is None or not (sel["label"] == "best").any():
        return None
    row = sel[sel["label"] == "best"].iloc[0]
    if not {"optimizer", "decay", "lr"} <= set(sel.columns):
        return None
    return (str(row["optimizer"]), str(row["decay"]), str(row["penalty"]), float(row["lr"]),
            float(row["lam"]))  # fmt: skip


def _edges(centers: np.ndarray) -> np.ndarray:
    """Cell edges of log-spaced centres (geometric midpoints, one half-step beyond the ends)."""
    if len(centers) == 1:
        return np.array([centers[0] / 1.5, centers[0] * 1.5])
    logs = np.log(centers)
    mids = (logs[1:] + logs[:-1]) / 2
    first, last = logs[0] - (mids[0] - logs[0]), logs[-1] + (logs[-1] - mids[-1])
    edges: np.ndarray = np.exp(np.concatenate([[first], mids, [last]]))
    return edges
