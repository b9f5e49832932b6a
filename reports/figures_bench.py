"""Benchmark figures (fig. 5): time per training run by update loop and device, and population
throughput against K with the seed-faithful (``scratch``) loop as the reference line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes

from reports.bench_results import BenchData
from reports.document import Figure
from reports.plotting import (
    Missing,
    color_for,
    log_axis,
    mpl_text,
    new_figure,
    positive,
    save,
    theme,
)

__all__ = [
    "Reference",
    "loops_figure",
    "population_figure",
    "reference_throughput",
    "series_labels",
]


def loops_figure(bench: BenchData, path: Path) -> Figure | Missing:
    """Median seconds per full training run for every update loop on each device (log x)."""
    runs = bench.group("update-loops-run")
    runs = runs[positive(runs["median"].to_numpy())]
    if runs.empty:
        return Missing("no 'update-loops-run' benchmark was found")
    shown = runs.assign(
        config=[mpl_text(c) for c in runs["config"]],
        device=[mpl_text(d) for d in runs["device_label"]],
    ).sort_values(["config", "device"])
    with theme():
        height = max(3.0, 0.45 * shown["config"].nunique() + 1.4)
        fig, (ax,) = new_figure(1, panel=(8.0, height))
        devices = sorted(set(shown["device"]))
        palette = {d: color_for(d, devices) for d in devices}
        ax.hlines(
            shown["config"],
            shown["min"],
            shown["max"],
            colors=[palette[d] for d in shown["device"]],
            lw=1.2,
            alpha=0.7,
        )
        sns.scatterplot(
            data=shown,
            y="config",
            x="median",
            hue="device",
            style="device",
            palette=palette,
            s=60,
            ax=ax,
            zorder=3,
        )
        log_axis(ax, "x")
        ax.set(xlabel="time per training run (s, log scale)", ylabel="update loop · penalty")
        ax.legend(title="device", fontsize="x-small")
        save(fig, path)
    caption = (
        "Time per complete training run (all epochs) for every update loop and penalty, on each "
        "device: the median over pytest-benchmark rounds (marker) and the min–max range (line), "
        "log x; the rounds are in the table below."
    )
    return Figure(path.name, caption, "time per training run by update loop and device")


def series_labels(frame: pd.DataFrame) -> list[str]:
    """One label per row: the device, plus whichever of dtype / loop / penalty vary."""
    varying = [
        c for c in ("dtype", "variant", "loop", "penalty") if frame[c].astype(str).nunique() > 1
    ]
    return [
        " · ".join([str(row["device_label"]), *(str(row[c]) for c in varying)])
        for _, row in frame.iterrows()
    ]


@dataclass(frozen=True)
class Reference:
    """Training runs per second of the seed-faithful ``scratch`` loop, and where it was timed."""

    rate: float
    where: str


def reference_throughput(bench: BenchData, device_label: str) -> Reference | None:
    """The scratch reference of the population rows of one device.

    In order: the ``scratch_s`` the rows were measured against (1 / seconds, on
    ``scratch_device``); else throughput / ``speedup_vs_scratch``; else the ``update-loops-run``
    scratch benchmark on the same device (1 / median seconds per run). ``None`` if none is there.
    """
    pop = bench.group("population")
    pop = pop[pop["device_label"] == device_label]
    seconds = pd.to_numeric(pop["scratch_s"], errors="coerce")
    seconds = seconds[positive(seconds.to_numpy())]
    if not seconds.empty:
        where = pop["scratch_device"].dropna().astype(str)
        return Reference(1.0 / float(seconds.median()), where.iloc[0] if len(where) else "?")
    ratio = pd.to_numeric(pop["trajectories_per_s"], errors="coerce") / pd.to_numeric(
        pop["speedup_vs_scratch"], errors="coerce"
    )
    ratio = ratio[positive(ratio.to_numpy())]
    if not ratio.empty:
        return Reference(float(ratio.median()), "the speed-up's reference run")
    runs = bench.group("update-loops-run")
    scratch = runs[(runs["device_label"] == device_label) & (runs["loop"] == "scratch")]
    times = scratch["median"][positive(scratch["median"].to_numpy())]
    return Reference(1.0 / float(times.min()), device_label) if not times.empty else None


def population_figure(bench: BenchData, path: Path) -> Figure | Missing:
    """Population throughput (trajectories/s) against K, log–log, with the scratch reference."""
    pop = bench.group("population")
    pop = pop.assign(
        K=pd.to_numeric(pop["K"], errors="coerce"),
        tps=pd.to_numeric(pop["trajectories_per_s"], errors="coerce"),
    )
    pop = pop[positive(pop["K"].to_numpy()) & positive(pop["tps"].to_numpy())]
    if pop.empty:
        return Missing("no 'population' benchmark with K and trajectories_per_s was found")
    pop = pop.assign(series=[mpl_text(s) for s in series_labels(pop)]).sort_values(["series", "K"])
    series = sorted(set(pop["series"]))
    palette = {s: color_for(s, series) for s in series}
    with theme():
        fig, (ax,) = new_figure(1, panel=(7.5, 4.5))
        sns.lineplot(
            data=pop,
            x="K",
            y="tps",
            hue="series",
            palette=palette,
            marker="o",
            errorbar=None,
            ax=ax,
        )
        _reference_lines(ax, bench, sorted(set(pop["device_label"])))
        log_axis(ax, "x", base=2)
        log_axis(ax, "y")
        ax.set(
            xlabel="K (configurations trained together)",
            ylabel="throughput (training runs per second)",
        )
        ax.legend(fontsize="x-small", loc="best")
        save(fig, path)
    caption = (
        "Population kernel throughput — complete training runs per second — against the number K "
        "of configurations trained in one batched computation (log–log). Dashed: the seed-faithful "
        "scratch loop, one configuration at a time, on the device named in the legend."
    )
    return Figure(path.name, caption, "population throughput against K")


def _reference_lines(ax: Axes, bench: BenchData, devices: list[str]) -> None:
    """One dashed line per distinct scratch reference (usually one: the CPU run)."""
    drawn: set[tuple[float, str]] = set()
    for device in devices:
        ref = reference_throughput(bench, device)
        if ref is None or (ref.rate, ref.where) in drawn:
            continue
        drawn.add((ref.rate, ref.where))
        ax.axhline(
            ref.rate,
            color="#555555",
            ls="--",
            lw=1.2,
            label=mpl_text(f"seed-faithful scratch loop ({ref.where})"),
        )
