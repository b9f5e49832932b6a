"""Shared plotting pieces: the Agg backend, a scoped seaborn theme, stable colours, safe text.

Figures are ``matplotlib.figure.Figure`` objects (no pyplot state), drawn inside ``theme()`` so
that the seaborn style never leaks into the caller's global rcParams.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure as MplFigure
from matplotlib.legend import Legend
from matplotlib.ticker import LogFormatter, LogLocator

__all__ = [
    "DPI",
    "Missing",
    "color_for",
    "figure_legend",
    "in_range",
    "log_axis",
    "loss_label",
    "mpl_text",
    "new_figure",
    "null_line",
    "null_value",
    "order_penalties",
    "place_panel_rows",
    "placed_panels",
    "positive",
    "save",
    "theme",
]

DPI = 100
#: Widest log axis (in decades) that still gets minor ticks.
MINOR_DECADES = 2.5
_FIXED_COLORS = {
    "none": "#7f7f7f",
    "no-decay": "#7f7f7f",
    "l2": "#0173b2",
    "best-l2": "#0173b2",
    "l1": "#de8f05",
    "best-l1": "#de8f05",
    "elastic": "#029e73",
    "best-elastic": "#029e73",
    "scratch": "#cc78bc",
    "proximal": "#029e73",
    "optim": "#0173b2",
    "decoupled": "#d55e00",
    "concise": "#949494",
}
_PENALTY_ORDER = ("none", "l2", "l1", "elastic")


@dataclass(frozen=True)
class Missing:
    """A figure that could not be drawn, and why (shown in its place in the report)."""

    reason: str


def mpl_text(text: object) -> str:
    """Text safe for a matplotlib label: ``$`` would start mathtext, so it is escaped."""
    return str(text).replace("$", r"\$")


def color_for(key: str, keys: Sequence[str]) -> str:
    """A stable colour: fixed for known penalties, loops and labels, else by rank in ``keys``."""
    if key in _FIXED_COLORS:
        return _FIXED_COLORS[key]
    palette = sns.color_palette("colorblind", 10).as_hex()
    index = sorted(set(keys)).index(key) if key in keys else len(keys)
    return str(palette[(index + 5) % len(palette)])


def order_penalties(names: Sequence[str]) -> list[str]:
    """Known penalties in their canonical order, then any others sorted."""
    unique = set(names)
    known = [p for p in _PENALTY_ORDER if p in unique]
    return known + sorted(unique - set(_PENALTY_ORDER))


def positive(x: np.ndarray) -> np.ndarray:
    """Boolean mask of finite, strictly positive values (what a log axis can show)."""
    x = np.asarray(x, dtype=float)
    mask: np.ndarray = np.isfinite(x) & (x > 0)
    return mask


@contextmanager
def theme() -> Iterator[None]:
    """Seaborn's whitegrid style and paper-sized fonts, for the ``with`` block only."""
    with sns.axes_style("whitegrid"), sns.plotting_context("notebook", font_scale=0.85):
        yield


def new_figure(
    ncols: int,
    nrows: int = 1,
    panel: tuple[float, float] = (5.0, 3.8),
    sharey: bool = False,
    placed: bool = False,
) -> tuple[MplFigure, list[Axes]]:
    """A figure of ``nrows × ncols`` panels (flattened, row-major), each ``panel`` inches; laid
    out by matplotlib's constrained layout, or with ``placed`` by ``place_panel_rows``."""
    size = (panel[0] * ncols, panel[1] * nrows)
    if placed:
        fig = MplFigure(figsize=size)
        rows = placed_panels(fig, nrows, ncols, sharey)
    else:
        fig = MplFigure(figsize=size, layout="constrained")
        rows = fig.subplots(nrows, ncols, sharey=sharey, squeeze=False).tolist()
    return fig, [ax for row in rows for ax in row]


def placed_panels(
    fig: MplFigure, nrows: int, ncols: int, sharey: bool | Literal["row"] = False
) -> list[list[Axes]]:
    """``nrows`` rows of ``ncols`` panels of ``fig`` for ``place_panel_rows``: each title sits on
    its panel's top edge — where matplotlib's automatic title position puts it above x ticks at
    the bottom, after measuring the y axis of every panel at each save (≈ 20 % of the time)."""
    with matplotlib.rc_context({"axes.titley": 1.0}):
        axes = fig.subplots(nrows, ncols, sharey=sharey, squeeze=False)
    return [list(row) for row in axes]


class _PlainLogFormatter(LogFormatter):
    """``LogFormatter``'s choice of which ticks to label, written plainly: 0.04, 300, 2e5."""

    def __call__(self, x: float, pos: int | None = None) -> str:
        if not super().__call__(x, pos):
            return ""
        if 1e-3 <= abs(x) < 1e4:
            return f"{x:g}"
        mantissa, exponent = f"{x:.0e}".split("e")
        return f"{mantissa}e{int(exponent)}"


class _SparseMinorLocator(LogLocator):
    """Log minor ticks only where they carry labels or help: none on an axis spanning more than
    ``MINOR_DECADES`` decades (each minor tick is a text object laid out at every draw, most of a
    report's drawing time)."""

    def __init__(self, base: float) -> None:
        super().__init__(base=base, subs="auto")
        self.decade = base

    def tick_values(self, vmin: float, vmax: float) -> Any:
        lo, hi = sorted((vmin, vmax))
        if lo > 0 and math.log(hi / lo, self.decade) > MINOR_DECADES:
            return []
        return super().tick_values(vmin, vmax)


def log_axis(ax: Axes, which: str, base: float = 10) -> None:
    """Log scale on the ``x`` or ``y`` axis, non-positive values clipped.

    Tick labels are plain text (``LogFormatter``: decades, plus intermediate ticks when the axis
    spans less than a decade or two) rather than mathtext, which keeps figures fast to draw.
    """
    axis = ax.xaxis if which == "x" else ax.yaxis
    if which == "x":
        ax.set_xscale("log", base=base, nonpositive="clip")
    else:
        ax.set_yscale("log", base=base, nonpositive="clip")
    _bound(ax, which)
    axis.set_major_formatter(_PlainLogFormatter(base=base, labelOnlyBase=False))
    axis.set_minor_formatter(
        _PlainLogFormatter(base=base, labelOnlyBase=False, minor_thresholds=(2.0, 0.5))
    )
    axis.set_minor_locator(_SparseMinorLocator(base))


def figure_legend(fig: MplFigure, axes: Sequence[Axes], columns: int = 3) -> Legend | None:
    """One legend for the whole figure, below the panels (it covers no data), each label once;
    the axes' own legends are removed. A figure without a layout engine gets it at its bottom
    edge (``place_panel_rows`` then makes room for it)."""
    seen: dict[str, Artist] = {}
    for ax in axes:
        handles, labels = ax.get_legend_handles_labels()
        for handle, label in zip(handles, labels, strict=True):
            if not label.startswith("_"):
                seen.setdefault(label, handle)
        legend = ax.get_legend()
        if legend is not None:
            legend.remove()
    if not seen:
        return None
    engine = fig.get_layout_engine() is not None
    return fig.legend(
        list(seen.values()),
        list(seen),
        loc="outside lower center" if engine else "lower center",
        bbox_to_anchor=None if engine else (0.5, _PAD / fig.get_size_inches()[1]),
        ncols=min(columns, len(seen)),
        fontsize="small",
        frameon=False,
    )


#: Inches around the panels of ``place_panel_rows`` (the ``theme`` fonts, one-line titles).
_PAD, _RIGHT, _TOP, _BETWEEN, _ROW_GAP, _BELOW = 0.06, 0.08, 0.3, 0.45, 0.85, 0.62


def place_panel_rows(fig: MplFigure, rows: Sequence[Sequence[Axes]], legend: Legend | None) -> None:
    """Lay out rows of panels that share y within each row (tick labels on the first column
    only; or one panel) above the figure's legend, without a layout engine: matplotlib's
    constrained layout measures every panel's decorations twice per save, 35-40 % of these
    figures' time. The left margin is measured (the first column's y tick labels and label); the
    rest are fixed inches for one-line titles (or none) and x labels in the ``theme`` fonts."""
    width, height = (float(v) for v in fig.get_size_inches())
    nrows, ncols = len(rows), len(rows[0])
    top = _TOP if any(ax.get_title() for ax in rows[0]) else _PAD + 0.1  # half a tick label
    renderer = fig._get_renderer()  # type: ignore[attr-defined]
    below = _BELOW + _PAD + (legend.get_window_extent(renderer).height / fig.dpi if legend else 0)

    def place(left: float) -> None:
        panel_w = (width - left - _RIGHT - (ncols - 1) * _BETWEEN) / ncols
        panel_h = (height - top - below - (nrows - 1) * _ROW_GAP) / nrows
        fig.subplots_adjust(
            left=left / width,
            right=1 - _RIGHT / width,
            top=1 - top / height,
            bottom=below / height,
            wspace=_BETWEEN / panel_w,
            hspace=_ROW_GAP / panel_h if nrows > 1 else 0.0,
        )

    place(0.8)
    label_widths = [0.0]
    for row in rows:
        box = row[0].yaxis.get_tightbbox(renderer)
        if box is not None:
            label_widths.append((row[0].bbox.x0 - box.x0) / fig.dpi)
    place(max(label_widths) + _PAD)


def null_value(selected: pd.DataFrame | None, column: str = "val_mean") -> float:
    """The null model's mean validation loss (``selected.parquet``'s ``null`` row; or another
    ``column``, e.g. ``val_acc_mean``), or NaN."""
    if selected is None or column not in selected or not (selected["label"] == "null").any():
        return float("nan")
    return float(selected.loc[selected["label"] == "null", column].iloc[0])


def null_line(ax: Axes, selected: pd.DataFrame | None, column: str = "val_mean") -> None:
    """The null model's validation loss (or ``column``) as a dotted black reference line."""
    value = null_value(selected, column)
    classify = selected is not None and "val_acc_mean" in selected.columns
    what = "the majority class" if classify else "the mean"
    if value > 0:
        ax.axhline(value, color="black", ls=":", lw=1.4, label=f"null model (predict {what})")


#: What a study's loss is called in figures: the lesson's half squared error, or for
#: classification the cross-entropy.
LOSS_NAMES = {False: "½·MSE", True: "cross-entropy"}


def loss_label(text: str, classification: bool) -> str:
    """``text`` naming the loss of the study (½·MSE → cross-entropy for classification)."""
    return text.replace(LOSS_NAMES[False], LOSS_NAMES[classification])


#: Most decades a log axis shows: a run that blew up to 1e267 without overflowing (momentum or
#: Adam at a large lr) would otherwise push the axis, and its tick labels, past float range.
MAX_DECADES = 12


def in_range(x: np.ndarray) -> np.ndarray:
    """Mask of values a log axis shows: within ``MAX_DECADES`` of the smallest positive one (a
    finite blow-up such as 1e267 is left out, as a non-finite one is)."""
    x = np.asarray(x, dtype=float)
    ok = positive(x)
    if not ok.any():
        return ok
    top = float(x[ok].min()) * 10.0**MAX_DECADES
    mask: np.ndarray = ok & (x <= top)
    return mask


def _bound(ax: Axes, which: str) -> None:
    """Keep a log axis within ``MAX_DECADES`` of its smallest value (larger values are clipped)."""
    low, high = ax.get_ylim() if which == "y" else ax.get_xlim()
    if not (math.isfinite(low) and low > 0):
        return
    top = low * 10.0**MAX_DECADES
    if not math.isfinite(high) or high > top:
        if which == "y":
            ax.set_ylim(low, top)
        else:
            ax.set_xlim(low, top)


def save(fig: MplFigure, path: Path) -> None:
    """Write ``fig`` as a PNG (deterministic bytes for the same data). zlib's fastest level: 40 %
    less time encoding than the default level 6, for ≈ 6 % more bytes."""
    fig.savefig(
        path, dpi=DPI, format="png", metadata={"Software": None}, pil_kwargs={"compress_level": 1}
    )
