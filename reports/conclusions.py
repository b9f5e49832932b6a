"""Conclusions generated from the data, each sentence carrying its own evidence.

Comparisons between two chosen configurations are paired over data seeds (common random numbers:
every configuration sees the same draws), using the last epoch of ``curves.parquet``: the mean
difference d = loss(a) − loss(b) with its 95 % Student-t interval. "a beats b" is said only when the
interval excludes 0. Without curves, the unpaired means and intervals of ``selected.parquet`` are
compared and the sentence says so.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from reports.bench_results import BenchData
from reports.figures_bench import reference_throughput
from reports.load import RunData
from reports.stats import PairedDifference, final_losses, paired_difference, row_at
from reports.tables import fmt, grid_best_value, pm

__all__ = ["conclusions", "problem_name"]

#: Problems whose true weights are dense / sparse, for the comparison with common lore.
_DENSE = frozenset({"synthetic"})
_SPARSE = frozenset({"synthetic-sparse"})
_STATE_WORDS = {
    "COMPLETE": "complete",
    "FAIL": "failed",
    "PRUNED": "pruned",
    "RUNNING": "running",
    "WAITING": "waiting",
}


def problem_name(run: RunData) -> str:
    """The problem's registry name from ``run.json`` (``problem`` may be a name or an object)."""
    problem = run.run.get("problem")
    if isinstance(problem, dict):
        problem = problem.get("name")
    return str(problem) if problem else ""


def conclusions(
    run: RunData, grid: pd.DataFrame | None, oracle: pd.DataFrame | None, bench: BenchData
) -> tuple[str, ...]:
    """All findings the data supports, most important first."""
    final = final_losses(run.curves, "val") if run.curves is not None else None
    found = [
        _choice(run),
        _versus_none(run, final),
        _l1_vs_l2(run, final),
        _runner_up(run, final),
        _regret(run, grid),
        _edge(run, grid),
        _budget(grid, oracle),
        _sparsity(run, grid),
        _trials(run),
        *_bench(bench),
    ]
    return tuple(f for f in found if f)


def _row(run: RunData, label: str) -> pd.Series | None:
    sel = run.selected
    if sel is None or not (sel["label"] == label).any():
        return None
    return sel[sel["label"] == label].iloc[0]


def _choice(run: RunData) -> str:
    best = _row(run, "best")
    if best is None:
        return "No configuration was selected (selected.parquet is missing or has no 'best' row)."
    seeds = (
        run.run.get("seeds", {}).get("data_seeds")
        if isinstance(run.run.get("seeds"), dict)
        else None
    )
    over = f" over {len(seeds)} data seeds" if isinstance(seeds, list) else ""
    ratio = f", l1_ratio = {fmt(best['l1_ratio'], 3)}" if best["penalty"] == "elastic" else ""
    val = pm(best["val_mean"], best["val_ci95"])
    test = pm(best["test_mean"], best["test_ci95"])
    return (
        f"Choose penalty {best['penalty']} ({best['loop']} loop) with λ = {fmt(best['lam'])}"
        f"{ratio}: validation loss {val}{over} (95 % CI); on the held-out test split, "
        f"evaluated once after selection, {test}."
    )


def _difference(
    run: RunData, final: pd.DataFrame | None, a: str, b: str
) -> tuple[PairedDifference, str] | None:
    """d = val(a) − val(b): paired over seeds from curves, else unpaired from the selection."""
    if final is not None:
        paired = paired_difference(final, a, b)
        if paired is not None and paired.n >= 2:
            return paired, f"paired over {paired.n} data seeds"
    ra, rb = _row(run, a), _row(run, b)
    if ra is None or rb is None:
        return None
    ci = math.hypot(float(ra["val_ci95"]), float(rb["val_ci95"]))
    mean_a, mean_b = float(ra["val_mean"]), float(rb["val_mean"])
    diff = PairedDifference(mean_a - mean_b, ci, 0, mean_a, mean_b)
    return diff, "unpaired (no per-seed curves), interval from the two CIs"


def _verdict(d: PairedDifference, name_a: str, name_b: str) -> tuple[str, int]:
    """A sentence on which is lower, and the sign (−1: a lower, +1: b lower, 0: undecided)."""
    low, high = d.mean - d.ci95, d.mean + d.ci95
    interval = (
        f"d = val({name_a}) − val({name_b}) = {fmt(d.mean, 3)}, "
        f"95 % CI [{fmt(low, 3)}, {fmt(high, 3)}]"
    )
    if not math.isfinite(d.ci95) or low <= 0 <= high:
        return f"{name_a} and {name_b} cannot be told apart ({interval})", 0
    winner, loser, sign = (name_a, name_b, -1) if d.mean < 0 else (name_b, name_a, 1)
    lo, hi = sorted((d.mean_a, d.mean_b))
    factor = f"{hi / lo:.3g}× lower" if lo > 0 else "lower"
    return f"{winner} beats {loser}: validation loss {factor} ({interval})", sign


def _versus_none(run: RunData, final: pd.DataFrame | None) -> str:
    best = _row(run, "best")
    if best is None:
        return ""
    label = f"best-{best['penalty']}"
    if final is None or not (final["label"] == label).any():
        label = "best"
    found = _difference(run, final, "no-decay", label)
    if found is None:
        return ""
    sentence, _ = _verdict(found[0], "no decay", f"the chosen {best['penalty']}")
    return f"Decay versus none: {sentence}; {found[1]}."


def _l1_vs_l2(run: RunData, final: pd.DataFrame | None) -> str:
    found = _difference(run, final, "best-l1", "best-l2")
    if found is None:
        return ""
    sentence, sign = _verdict(found[0], "L1", "L2")
    return f"L1 versus L2 (each at its best λ): {sentence}; {found[1]}.{_lore(run, sign)}"


def _runner_up(run: RunData, final: pd.DataFrame | None) -> str:
    """The chosen penalty against the next-best other penalty (unless that is L1 versus L2)."""
    best, sel = _row(run, "best"), run.selected
    if best is None or sel is None:
        return ""
    others = sel[
        sel["label"].str.startswith("best-") & ~sel["penalty"].isin([best["penalty"], "none"])
    ]
    if others.empty:
        return ""
    runner = row_at(others, "val_mean")
    if {str(best["penalty"]), str(runner["penalty"])} == {"l1", "l2"}:
        return ""
    found = _difference(run, final, f"best-{best['penalty']}", str(runner["label"]))
    if found is None:
        return ""
    sentence, _ = _verdict(found[0], str(best["penalty"]), str(runner["penalty"]))
    return f"Chosen versus runner-up penalty: {sentence}; {found[1]}."


def _lore(run: RunData, sign: int) -> str:
    """How the L1/L2 verdict compares with the lore 'L1 pays off only for sparse true weights'."""
    problem = problem_name(run)
    dense = _dense_truth(run, problem)
    if sign == 0 or dense is None:
        return ""
    agrees = (sign > 0) == dense
    truth = "dense (every weight nonzero)" if dense else "sparse"
    verb = "agrees with" if agrees else "contradicts"
    return (
        f" This {verb} the common lore that L1 pays off only when the true weights are sparse: "
        f"on '{problem}' they are {truth}."
    )


def _dense_truth(run: RunData, problem: str) -> bool | None:
    """Whether the true weights are dense (None: unknown, e.g. a user's data): from run.json
    ``data`` (count of non-zero true weights) when recorded, else from the problem's name."""
    data = run.run.get("data")
    if isinstance(data, dict) and "true_nonzero" in data:
        nonzero, dim = data.get("true_nonzero"), data.get("dim")
        return None if nonzero is None or dim is None else nonzero == dim
    return True if problem in _DENSE else False if problem in _SPARSE else None


def _regret(run: RunData, grid: pd.DataFrame | None) -> str:
    best = _row(run, "best")
    ref = grid_best_value(grid)
    if best is None or not math.isfinite(ref):
        return ""
    regret = float(best["val_mean"]) - ref
    rel = f" ({100 * regret / ref:+.1f} %)" if ref > 0 else ""
    side = "above" if regret > 0 else "below" if regret < 0 else "equal to"
    notes = []
    if regret > 0 and ref > 0 and regret / ref > 0.1:
        notes.append("the search has not reached the grid's optimum: more trials would help")
    ci = float(best["val_ci95"])
    if math.isfinite(ci) and abs(regret) <= ci:
        notes.append(
            f"the gap is within the choice's own ± {fmt(ci, 2)}, so the data seeds "
            "cannot separate the two"
        )
    tail = "; " + "; ".join(notes) if notes else ""
    return (
        f"How close the search came: the choice is {fmt(abs(regret), 3)}{rel} {side} the best "
        f"point of the dense same-budget grid ({fmt(ref)}){tail}."
    )


def _edge(run: RunData, grid: pd.DataFrame | None) -> str:
    """Warn when the best grid λ of the chosen penalty is the smallest or largest grid λ."""
    best = _row(run, "best")
    if best is None or grid is None or best["penalty"] == "none":
        return ""
    part = grid[(grid["penalty"] == best["penalty"]) & (grid["lam"] > 0)]
    if part["lam"].nunique() < 3:
        return ""
    lam = float(row_at(part, "val_mean")["lam"])
    if part["lam"].min() < lam < part["lam"].max():
        return ""
    return (
        f"Caution: for {best['penalty']} the grid's best λ ({fmt(lam)}) is at the edge of the "
        "searched range, so the optimum may lie outside it; widen the λ range."
    )


def _budget(grid: pd.DataFrame | None, oracle: pd.DataFrame | None) -> str:
    """Same-budget SGD versus the converged solution, per penalty with an exact path."""
    if grid is None or oracle is None:
        return ""
    parts = []
    for penalty, name in (("l2", "ridge"), ("l1", "lasso")):
        same = grid_best_value(grid, penalty)
        conv = oracle[oracle["penalty"] == penalty]["val_loss"]
        if math.isfinite(same) and not conv.empty:
            parts.append(
                f"{penalty}: {fmt(same)} with the training budget vs {fmt(conv.min())} "
                f"for the converged {name}"
            )
    if not parts:
        return ""
    return (
        "Training budget: best mean validation loss "
        + "; ".join(parts)
        + ". A large gap means the budget, not the penalty, limits the result."
    )


def _sparsity(run: RunData, grid: pd.DataFrame | None) -> str:
    """Exact zeros of proximal versus subgradient L1 at the grid λ nearest the chosen L1 λ."""
    chosen = _row(run, "best-l1")
    if grid is None or chosen is None or not float(chosen["lam"]) > 0:
        return ""
    l1 = grid[(grid["penalty"] == "l1") & (grid["lam"] > 0)]
    if not {"proximal", "scratch"} <= set(l1["loop"]):
        return ""
    distance = np.abs(np.log(l1["lam"].to_numpy(dtype=float)) - math.log(float(chosen["lam"])))
    lam = float(l1["lam"].iloc[int(np.argmin(distance))])
    at = l1[l1["lam"] == lam].groupby("loop")["zero_fraction"].mean()
    top = l1.groupby("loop")["zero_fraction"].max()
    return (
        f"Sparsity: at the grid λ = {fmt(lam, 3)} nearest the chosen L1 strength, proximal L1 "
        f"sets {100 * at['proximal']:.0f} % of w exactly to zero and subgradient L1 "
        f"{100 * at['scratch']:.0f} % (at most {100 * top['proximal']:.0f} % vs "
        f"{100 * top['scratch']:.0f} % over the grid, fig. 3b)."
    )


def _trials(run: RunData) -> str:
    counts = run.trials["state"].value_counts()
    parts = ", ".join(
        f"{int(n)} {_STATE_WORDS.get(str(s), str(s).lower())}" for s, n in counts.items()
    )
    excluded = len(run.trials) - len(run.complete)
    note = f"; the {excluded} not complete are excluded from every fit" if excluded else ""
    return f"Evidence base: {len(run.trials)} trials ({parts}){note}."


def _bench(bench: BenchData) -> list[str]:
    found = []
    runs = bench.group("update-loops-run")
    for device, g in runs.groupby("device_label", sort=True):
        fastest, slowest = row_at(g, "median"), row_at(g, "median", largest=True)
        found.append(
            f"Cost on {device}: fastest {fastest['config']} at "
            f"{fmt(fastest['median'], 3)} s per training run, slowest {slowest['config']} "
            f"at {fmt(slowest['median'], 3)} s (median over rounds)."
        )
    pop = bench.group("population")
    tps = pd.to_numeric(pop["trajectories_per_s"], errors="coerce")
    for device, g in pop.assign(tps=tps).dropna(subset=["tps"]).groupby("device_label"):
        top = row_at(g, "tps", largest=True)
        ref = reference_throughput(bench, str(device))
        gain = (
            f", {top['tps'] / ref.rate:.3g}× the seed-faithful scratch loop on {ref.where}"
            if ref is not None
            else ""
        )
        found.append(
            f"Population on {device}: up to {fmt(top['tps'], 3)} training runs/s at "
            f"K = {fmt(top['K'])}{gain}."
        )
    return found
