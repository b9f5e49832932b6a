"""Conclusions generated from the data, each sentence carrying its own evidence.

Every comparison between configurations comes from the replication (``comparisons.parquet``:
fresh draws never seen by the search, test split, Holm-adjusted across the family) through
``reports.verdicts`` — the same sentences the study printed and wrote to ``run.json``. The rest
describes the search itself: its regret against the dense grid, the edge of the λ range, the
budget against convergence, sparsity, the trial counts, and the benchmarks.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from reports.bench_results import BenchData
from reports.figures_bench import reference_throughput
from reports.figures_lr import heatmap_penalty
from reports.load import RunData
from reports.lr_lambda import (
    decoupling,
    has_lr_axis,
    lr_lambda_means,
    optima,
    slopes,
    steps_per_epoch,
)
from reports.stats import metric_of, row_at, t_quantile
from reports.tables import fmt, grid_best_value, pm
from reports.verdicts import NO_ORACLE, Budget, verdicts

__all__ = ["conclusions", "problem_name", "study_verdicts"]

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
    found = [
        *(study_verdicts(run, grid, oracle) or (_choice(run),)),
        NO_ORACLE if run.network else "",
        _lore(run),
        _regret(run, grid),
        _edge(run, grid),
        _budget(grid, oracle),
        _sparsity(run, grid),
        *_lr_lambda(run),
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
    """What the search selected (only without a replication: then nothing is compared)."""
    best = _row(run, "best")
    if best is None:
        return "No configuration was selected (selected.parquet is missing or has no 'best' row)."
    ratio = f", l1_ratio = {fmt(best['l1_ratio'], 3)}" if best["penalty"] == "elastic" else ""
    val = pm(best["val_mean"], best["val_ci95"])
    return (
        f"The search selected penalty {best['penalty']} ({best['loop']} loop) with λ = "
        f"{fmt(best['lam'])}{ratio} (validation loss {val}, 95 % CI over the search's draws). "
        "comparisons.parquet is missing, so no comparison is drawn: rerun the study to "
        "replicate the chosen configurations on fresh draws."
    )


def study_verdicts(
    run: RunData, grid: pd.DataFrame | None, oracle: pd.DataFrame | None
) -> tuple[str, ...]:
    """The replication's verdicts (``reports.verdicts``), as the console and run.json give them."""
    settings = run.run.get("settings")
    budget = (
        Budget.from_settings(settings, network=run.network) if isinstance(settings, dict) else None
    )
    return verdicts(run.selected, run.comparisons, grid, oracle, budget).lines


def _recorded_regret(run: RunData) -> tuple[float, float] | None:
    """(search best, grid best) as the study computed them (``run.json``'s ``summary``)."""
    summary = run.run.get("summary")
    if not isinstance(summary, dict) or not isinstance(summary.get("grid_best"), dict):
        return None
    try:
        return float(summary["best_value"]), float(summary["grid_best"]["val_mean"])
    except (KeyError, TypeError, ValueError):
        return None


def _lore(run: RunData) -> str:
    """The replication's L1-vs-L2 verdict at the budget beside the lore 'L1 pays off only for
    sparse true weights' — only when it is separated and neither model is empty (an all-zero
    L1 model is the null model: that verdict would be about predicting the mean)."""
    comparisons = run.comparisons
    dense = _dense_truth(run, problem_name(run))
    if comparisons is None or dense is None:
        return ""
    for _, c in comparisons[comparisons["regime"] == "budget"].iterrows():
        pair = {str(c["penalty_a"]), str(c["penalty_b"])}
        if pair != {"l1", "l2"} or bool(c["empty_a"]) or bool(c["empty_b"]):
            continue
        if not c["p_holm"] < 0.05:
            return ""
        a_wins = c["mean_diff"] < 0
        l2_wins = (str(c["penalty_a"]) == "l2") == a_wins
        verb = "agrees with" if l2_wins == dense else "contradicts"
        truth = "dense (every weight nonzero)" if dense else "sparse"
        return (
            f"At the training budget, {'L2' if l2_wins else 'L1'} beats "
            f"{'L1' if l2_wins else 'L2'} on the fresh draws; this {verb} the common lore that "
            f"L1 pays off only when the true weights are sparse (here they are {truth})."
        )
    return ""


def _dense_truth(run: RunData, problem: str) -> bool | None:
    """Whether the true weights are dense (None: unknown, e.g. a user's data): from run.json
    ``data`` (count of non-zero true weights) when recorded, else from the problem's name."""
    data = run.run.get("data")
    if isinstance(data, dict) and "true_nonzero" in data:
        nonzero, dim = data.get("true_nonzero"), data.get("dim")
        return None if nonzero is None or dim is None else nonzero == dim
    return True if problem in _DENSE else False if problem in _SPARSE else None


def _regret(run: RunData, grid: pd.DataFrame | None) -> str:
    """The search's regret: run.json's numbers (what the console printed) when recorded."""
    best = _row(run, "best")
    recorded = _recorded_regret(run)
    if best is None:
        return ""
    value, ref = recorded or (float(best["val_mean"]), grid_best_value(grid))
    if not math.isfinite(ref):
        return ""
    regret = value - ref
    rel = f" ({100 * regret / ref:+.3f} %)" if ref > 0 else ""
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


def _lr_lambda(run: RunData) -> list[str]:
    """Decoupling and lr–λ coupling, from the dense grid (``reports.lr_lambda``).

    Intervals are Bonferroni-adjusted over the claims made here (each comparison and slope), and
    rest on the search's data seeds; the grid optima were picked on those same validation draws.
    """
    grid = run.grid
    if grid is None or not has_lr_axis(grid):
        return []
    means = lr_lambda_means(grid)
    penalty = heatmap_penalty(means)
    opt = optima(means, steps_per_epoch(grid))
    opt = opt[opt["penalty"] == penalty] if not opt.empty else opt
    found = [s for s in slopes(opt) if s.n >= 3] if not opt.empty else []
    pairs = decoupling(grid, penalty)
    claims = len(pairs) + len(found)
    replicated = _replicated_decoupling(run)
    if claims == 0:
        return replicated
    out = list(replicated)
    for d in pairs:
        half = _adjust(d.ci95, d.n - 1, claims)
        low, high = d.diff - half, d.diff + half
        where = (
            f"decoupled best {fmt(d.decoupled['val_mean'], 3)} at η = {fmt(d.decoupled['lr'])}, "
            f"λ = {fmt(d.decoupled['lam'])}; coupled best {fmt(d.coupled['val_mean'], 3)} at "
            f"η = {fmt(d.coupled['lr'])}, λ = {fmt(d.coupled['lam'])}"
        )
        if not math.isfinite(half) or low <= 0 <= high:
            verdict = "does not change the best validation loss detectably"
        else:
            verdict = "lowers" if d.diff < 0 else "raises"
            verdict += " the best validation loss"
        out.append(
            f"Decoupling the decay under {d.optimizer} ({d.penalty}) {verdict}: {where}; "
            f"decoupled − coupled = {fmt(d.diff, 3)}, CI [{fmt(low, 3)}, {fmt(high, 3)}] "
            f"(paired over {d.n} data seeds, {_family(claims)})."
        )
    for s in found:
        half = _adjust(s.ci95, s.n - 2, claims)
        low, high = s.slope - half, s.slope + half
        if not math.isfinite(half) or low <= 0 <= high:
            strength = "no coupling of lr and λ detectable (the interval contains 0)"
        elif low <= -1 <= high:
            strength = "strongly coupled, consistent with λ* ∝ 1/η (a constant timescale 1/(ηλ))"
        else:
            strength = f"coupled: λ* ∝ η^{s.slope:.2f}"
        panel = opt[(opt["optimizer"] == s.optimizer) & (opt["decay"] == s.decay)
                    & (opt["penalty"] == s.penalty)]  # fmt: skip
        top = row_at(panel, "val_mean")
        tau = f"τ_iter = {fmt(top['tau_iter'])} steps"
        if math.isfinite(float(top["tau_epoch"])):
            tau += f", τ_epoch = {fmt(top['tau_epoch'])} epochs"
        out.append(
            f"lr × λ under {s.optimizer} · {s.decay} ({s.penalty}): slope of log λ* on log η "
            f"{fmt(s.slope, 3)}, CI [{fmt(low, 3)}, {fmt(high, 3)}] over {s.n} of {s.n_lr} "
            f"learning rates with an interior optimum ({_family(claims)}) — {strength}. At the "
            f"panel's best point (η = {fmt(top['lr'])}, λ = {fmt(top['lam_opt'])}) the decay "
            f"timescale is {tau}."
        )
    if len(out) > len(replicated):
        fresh = (
            "the replication above is the test on fresh draws"
            if replicated
            else "this run has no replication of the couplings on fresh draws"
        )
        out.append(
            "The lr × λ statements from the dense grid rest on the search's data seeds: each "
            f"optimum was picked on those same validation draws, so their intervals are "
            f"optimistic; {fresh} (fig. 6a–b)."
        )
    return out


def _replicated_decoupling(run: RunData) -> list[str]:
    """best-<optimizer>-decoupled vs best-<optimizer>-coupled from ``comparisons.parquet``:
    paired over the fresh draws of the replication, test split, Holm-adjusted. Each side is the
    best over every penalty with that coupling (for plain SGD, decoupled exists only as the
    proximal l1 / elastic step: l2 is one update), so the sentence names both penalties."""
    table = run.comparisons
    if table is None or table.empty:
        return []
    rows = table[
        (table["regime"] == "budget")
        & table["a"].str.endswith("-decoupled")
        & table["b"].str.endswith("-coupled")
    ]
    out = []
    for _, r in rows.iterrows():
        optimizer = str(r["a"])[len("best-") : -len("-decoupled")]
        low, high = float(r["ci_low"]), float(r["ci_high"])
        accuracy = metric_of(r) == "accuracy"
        what = "test accuracy" if accuracy else "test loss"
        if low <= 0 <= high:
            verdict = f"does not change the best {what} detectably"
        else:
            verdict = ("lowers" if float(r["mean_diff"]) < 0 else "raises") + f" the best {what}"
        if accuracy:  # percentages, and the difference in points
            means = (f"{100 * float(r['mean_a']):.4g} %", f"{100 * float(r['mean_b']):.4g} %")
            diff = (
                f"difference {100 * float(r['mean_diff']):+.3g} points, CI "
                f"[{100 * low:+.3g}, {100 * high:+.3g}] points"
            )
        else:
            means = (fmt(r["mean_a"], 3), fmt(r["mean_b"], 3))
            diff = f"difference {fmt(r['mean_diff'], 3)}, CI [{fmt(low, 3)}, {fmt(high, 3)}]"
        out.append(
            f"Decoupling under {optimizer}, replicated on {int(r['n'])} fresh draws: {verdict} — "
            f"best decoupled ({r['penalty_a']}) {means[0]} vs best coupled "
            f"({r['penalty_b']}) {means[1]}, {diff}, "
            f"Holm-adjusted p = {fmt(r['p_holm'], 2)} (test split, the report's whole family)."
        )
    return out


def _adjust(half: float, dof: int, claims: int) -> float:
    """A 95 % t half-width widened to the Bonferroni level 0.05 / ``claims``."""
    if dof < 1 or not math.isfinite(half):
        return math.nan
    return half * float(t_quantile(1 - 0.025 / claims, dof) / t_quantile(0.975, dof))


def _family(claims: int) -> str:
    return "95 % CI" if claims == 1 else f"simultaneous 95 % CI over {claims} claims, Bonferroni"
