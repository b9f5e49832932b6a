"""Tables of the report: chosen configurations with regret, trial states, failures, benchmarks.

Regret of a chosen configuration = its mean validation loss − the lowest mean validation loss of
the dense same-budget grid for the same penalty (positive: the grid found better; negative: the
search found a λ between grid points that beats every grid point).
"""

from __future__ import annotations

import math

import pandas as pd

from reports.bench_results import BenchData
from reports.document import Table
from reports.plotting import order_penalties
from reports.stats import chosen_penalty, metric_of

__all__ = [
    "STATES",
    "bench_table",
    "best_table",
    "comparison_table",
    "failure_table",
    "fmt",
    "grid_best_value",
    "pm",
    "selected_rows",
    "state_table",
]

STATES = ("COMPLETE", "FAIL", "PRUNED", "RUNNING", "WAITING")
_REASON_CHARS = 240


def fmt(x: object, digits: int = 4) -> str:
    """A number in ``digits`` significant figures; missing or NaN as an em dash."""
    try:
        value = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(x)
    return "—" if math.isnan(value) else f"{value:.{digits}g}"


def pm(mean: object, ci: object) -> str:
    """``mean ± ci`` (or just the mean when the interval is undefined)."""
    half = fmt(ci, 2)
    return fmt(mean) if half == "—" else f"{fmt(mean)} ± {half}"


def selected_rows(selected: pd.DataFrame) -> pd.DataFrame:
    """Selection in report order: best, each penalty's best (canonical order), no decay, others."""
    labels = list(selected["label"])
    per_penalty = [
        f"best-{p}" for p in order_penalties([x[5:] for x in labels if x.startswith("best-")])
    ]
    head = [x for x in ("best", *per_penalty, "no-decay") if x in labels]
    order = head + sorted(set(labels) - set(head))
    rank = {label: i for i, label in enumerate(order)}
    return selected.sort_values("label", key=lambda s: s.map(rank)).reset_index(drop=True)


def grid_best_value(grid: pd.DataFrame | None, penalty: str | None = None) -> float:
    """Lowest mean validation loss of the dense grid (for one penalty, or over all)."""
    if grid is None:
        return math.nan
    part = grid if penalty is None else grid[grid["penalty"] == penalty]
    return float(part["val_mean"].min()) if not part.empty else math.nan


def best_table(selected: pd.DataFrame, grid: pd.DataFrame | None) -> Table:
    """One row per chosen configuration: λ, validation and test mean ± 95 % CI, regret."""
    rows = []
    star = {"best", f"best-{chosen_penalty(selected)}"}
    accuracy = "test_acc_mean" in selected.columns
    for _, r in selected_rows(selected).iterrows():
        penalty = None if r["label"] == "best" else str(r["penalty"])
        ref = grid_best_value(grid, penalty)
        regret = float(r["val_mean"]) - ref
        rel = f" ({100 * regret / ref:+.1f} %)" if math.isfinite(regret) and ref > 0 else ""
        empty = "empty" in r.index and bool(r["empty"]) and r["label"] != "null"
        mark = " = null (w = 0)" if empty else ""
        rows.append(
            (
                str(r["label"]) + (" ★" if r["label"] in star else "") + mark,
                str(r["penalty"]),
                str(r["loop"]),
                fmt(r["lam"]),
                fmt(r["l1_ratio"], 3),
                pm(r["val_mean"], r["val_ci95"]),
                pm(r["test_mean"], r["test_ci95"]),
                fmt(ref),
                fmt(regret, 3) + rel,
                *(
                    (
                        pm(r["val_acc_mean"], r["val_acc_ci95"]),
                        pm(r["test_acc_mean"], r["test_acc_ci95"]),
                    )
                    if accuracy
                    else ()
                ),
            )
        )
    loss = " cross-entropy" if accuracy else ""
    null = (
        "predict the majority class of y_train: the training class frequencies"
        if accuracy
        else "w = 0, b = mean of y_train"
    )
    return Table(
        (
            "label",
            "penalty",
            "loop",
            "λ",
            "l1_ratio",
            f"validation{loss} (mean ± 95 % CI)",
            f"test{loss} (mean ± 95 % CI)",
            "grid best (same penalty)",
            "regret vs grid",
            *(("validation accuracy", "test accuracy") if accuracy else ()),
        ),
        tuple(rows),
        "Chosen configurations (★ = overall best), over the search's data draws. 'null' is the "
        f"null model ({null}); a row marked '= null (w = 0)' sets every "
        "weight exactly to 0, so it is the null model whatever its λ. Test losses are computed "
        "for every trained configuration but read only after selection; no decision reads them. "
        "The 'best' row's grid reference is the overall grid best. Every comparison is drawn "
        "from the replication on fresh draws (next table), not from these numbers.",
    )


def comparison_table(comparisons: pd.DataFrame) -> Table:
    """The replication's family of comparisons: d = test(a) − test(b), Holm-adjusted."""
    rows = []
    accuracy = bool(len(comparisons)) and metric_of(comparisons.iloc[0]) == "accuracy"
    for _, c in comparisons.iterrows():
        separated = bool(c["p_holm"] < 0.05)
        a = str(c["a"]) + (" (w = 0)" if bool(c["empty_a"]) and c["a"] != "null" else "")
        b = str(c["b"]) + (" (w = 0)" if bool(c["empty_b"]) and c["b"] != "null" else "")
        rows.append(
            (
                str(c["regime"]),
                a,
                b,
                fmt(c["n"]),
                fmt(c["mean_a"]),
                fmt(c["mean_b"]),
                fmt(c["mean_diff"], 3),
                f"[{fmt(c['ci_low'], 3)}, {fmt(c['ci_high'], 3)}] at {100 * c['ci_level']:.3g} %",
                fmt(c["p_value"], 2),
                fmt(c["p_holm"], 2),
                "separated" if separated else "cannot be separated",
            )
        )
    return Table(
        (
            "regime",
            "a",
            "b",
            "draws",
            "test accuracy a" if accuracy else "test a",
            "test accuracy b" if accuracy else "test b",
            "d = a − b",
            "Holm-adjusted CI",
            "p",
            "p (Holm)",
            "verdict",
        ),
        tuple(rows),
        f"The {len(rows)} comparisons of the family, each paired over fresh data draws (a fresh "
        "train seed each) never seen by the search, on the test split"
        + (" (its accuracy: higher is better)" if accuracy else "")
        + "; p-values Holm-adjusted "
        "across all of them; each interval at its Holm step level (it excludes 0 exactly when "
        "p (Holm) < 0.05). budget = SGD at the study's epochs, lr and init scale; converged = "
        "the exact oracles at the λ each chose on the search's validation split.",
    )


def state_table(trials: pd.DataFrame) -> Table:
    """Trial counts by state, overall and per penalty."""
    penalties = order_penalties(list(trials["penalty"].replace("", "(unset)")))
    states = [s for s in STATES if (trials["state"] == s).any()]
    states += sorted(set(trials["state"]) - set(STATES))
    rows = []
    for state in states:
        part = trials[trials["state"] == state]
        counts = part["penalty"].replace("", "(unset)").value_counts()
        rows.append((state, str(len(part)), *(str(int(counts.get(p, 0))) for p in penalties)))
    rows.append(
        (
            "total",
            str(len(trials)),
            *(str(int((trials["penalty"].replace("", "(unset)") == p).sum())) for p in penalties),
        )
    )
    return Table(
        ("state", "trials", *penalties),
        tuple(rows),
        "Trials by state and penalty. Only COMPLETE trials enter a fit, figure or choice.",
    )


def failure_table(trials: pd.DataFrame) -> Table | None:
    """Failed trials grouped by reason (first line, truncated), with counts and trial numbers."""
    failed = trials[trials["state"] == "FAIL"]
    if failed.empty:
        return None
    reasons = [_short(r) for r in failed["fail_reason"]]
    groups = failed.assign(reason=reasons).groupby("reason", sort=True)["number"]
    rows = sorted(
        ((str(reason), str(len(nums)), _numbers(list(nums))) for reason, nums in groups),
        key=lambda row: (-int(row[1]), row[0]),
    )
    return Table(
        ("failure reason", "trials", "trial numbers"),
        tuple(rows),
        "Failed trials, grouped by reason; they are excluded from every fit.",
    )


def _short(reason: str) -> str:
    lines = [line for line in str(reason).splitlines() if line.strip()]
    text = lines[-1].strip() if lines else "(no reason recorded)"
    return text if len(text) <= _REASON_CHARS else text[: _REASON_CHARS - 1] + "…"


def _numbers(numbers: list[int]) -> str:
    shown = ", ".join(str(int(n)) for n in sorted(numbers)[:12])
    return shown + (f", … (+{len(numbers) - 12})" if len(numbers) > 12 else "")


_BENCH_COLUMNS: dict[str, tuple[str, ...]] = {
    "update-loops-run": ("variant", "loop", "penalty"),
    "update-loops-step": ("variant", "loop", "penalty"),
    "population": ("K", "trajectories_per_s", "speedup_vs_scratch"),
    "scaling": ("kind", "d", "n_train"),
    "study": ("variant", "trials", "ratio"),
}


_TEXT_EXTRA = frozenset({"loop", "penalty", "kind", "variant"})


def _text(value: object) -> str:
    missing = value is None or (isinstance(value, float) and math.isnan(value))
    return "—" if missing else str(value)


def _cell(value: object, column: str) -> str:
    return _text(value) if column in _TEXT_EXTRA else fmt(value)


def bench_table(bench: BenchData, group: str) -> Table | None:
    """All benchmarks of one group with their ``extra_info`` keys and timing statistics."""
    rows_frame = bench.group(group)
    if rows_frame.empty:
        return None
    extra = _BENCH_COLUMNS.get(group, ())
    rows = tuple(
        (
            str(r["name"]),
            str(r["device_label"]),
            _text(r["dtype"]),
            *(_cell(r[c], c) for c in extra),
            fmt(r["median"]),
            fmt(r["min"]),
            fmt(r["max"]),
            fmt(r["rounds"]),
        )
        for _, r in rows_frame.iterrows()
    )
    return Table(
        ("benchmark", "device", "dtype", *extra, "median (s)", "min (s)", "max (s)", "rounds"),
        rows,
        f"pytest-benchmark group '{group}'.",
    )
