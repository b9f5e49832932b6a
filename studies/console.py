"""The short table ``python -m studies.search`` prints at the end of a run."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from reports.verdicts import NO_ORACLE

__all__ = ["REACH_REGRET", "Regret", "reach_line", "rule_name", "summary_lines", "time_to_regret"]

#: The regret a search must reach for ``time_to_regret``: within 1 % of the dense grid's best.
REACH_REGRET = 0.01


def rule_name(penalty: str, loop: str) -> str:
    """The update rule as the study names it: proximal, decoupled, subgradient (L1 part) or
    gradient."""
    if penalty == "null":
        return "—"
    if loop in ("proximal", "decoupled"):
        return loop
    return "subgradient" if penalty in ("l1", "elastic") else "gradient"


@dataclass(frozen=True)
class Regret:
    """Relative regret of the search's best against the dense grid's best (mean val losses)."""

    best_value: float
    grid_best: dict[str, Any] | None
    grid_size: int

    @property
    def value(self) -> float:
        """(best trial − best grid point) / best grid point; NaN without a usable grid."""
        if self.grid_best is None:
            return math.nan
        reference = float(self.grid_best["val_mean"])
        return (self.best_value - reference) / reference


def _fmt_lam(lam: float) -> str:
    if math.isinf(lam):
        return "∞"
    return "0" if lam == 0 else f"{lam:.3g}"


def _fmt_ci(mean: float, half: float) -> str:
    if not math.isfinite(mean):
        return "diverged"
    if not math.isfinite(half):
        return f"{mean:.5g}"
    return f"{mean:.5g} ± {half:.2g}"


def _fmt_acc(row: dict[Any, Any], split: str) -> str:
    """An accuracy as a percentage ± its 95 % CI half-width in points."""
    mean, half = float(row[f"{split}_acc_mean"]), float(row[f"{split}_acc_ci95"])
    if not math.isfinite(mean):
        return "—"
    return f"{100 * mean:.2f} %" + (f" ± {100 * half:.2g}" if math.isfinite(half) else "")


def _optimizer_shown(selected: pd.DataFrame) -> bool:
    """Whether the selection names more than plain SGD at one lr (then its columns are shown)."""
    if not {"optimizer", "lr"} <= set(selected.columns):
        return False
    return bool(set(selected["optimizer"]) != {"sgd"} or selected["lr"].nunique() > 1)


def selection_lines(selected: pd.DataFrame) -> list[str]:
    """One line per selected configuration: rule, λ, val and test mean ± 95% CI (over the
    search's draws; and the optimizer and lr when the study searched them; for classification
    the validation and test accuracy too); an all-zero configuration is marked as the null
    model."""
    width = max(12, *(len(str(v)) for v in selected["label"]))
    extra = _optimizer_shown(selected)
    accuracy = "test_acc_mean" in selected.columns
    val_head, test_head = (
        ("val CE (mean ± 95% CI)", "test CE (mean ± 95% CI)")  # CE: the cross-entropy
        if accuracy
        else ("val (mean ± 95% CI)", "test (mean ± 95% CI)")
    )
    head = (
        f"{'':{width}} {'penalty':8} {'rule':12} "
        + (f"{'optimizer':9} {'lr':>9} " if extra else "")
        + f"{'λ':>9} {'l1_ratio':>8}  {val_head:24} {test_head:24}"
        + (f" {'val accuracy':17} {'test accuracy':17}" if accuracy else "")
    )
    lines = [head]
    for row in selected.to_dict(orient="records"):
        l1 = "" if math.isnan(row["l1_ratio"]) else f"{row['l1_ratio']:.2f}"
        empty = " (w = 0: the null model)" if row.get("empty") and row["label"] != "null" else ""
        opt = f"{row['optimizer']!s:9} {row['lr']:>9.3g} " if extra else ""
        lines.append(
            f"{row['label']!s:{width}} {row['penalty']!s:8} "
            f"{rule_name(row['penalty'], row['loop']):12} {opt}{_fmt_lam(row['lam']):>9} "
            f"{l1:>8}  {_fmt_ci(row['val_mean'], row['val_ci95']):24} "
            f"{_fmt_ci(row['test_mean'], row['test_ci95']):24}"
            + (f" {_fmt_acc(row, 'val'):17} {_fmt_acc(row, 'test'):17}" if accuracy else "")
            + empty
        )
    return lines


def regret_line(r: Regret) -> str:
    if r.grid_best is None:
        return "regret vs dense grid: n/a (every grid point diverged)"
    g = r.grid_best
    where = f"{g['penalty']} {rule_name(str(g['penalty']), str(g['loop']))} λ={_fmt_lam(g['lam'])}"
    if not math.isnan(float(g["l1_ratio"])):
        where += f" l1_ratio={float(g['l1_ratio']):.2f}"
    if "optimizer" in g:
        where += f" {g['optimizer']}"
    if "lr" in g:
        where += f" lr={float(g['lr']):.3g}"
    return (
        f"regret vs dense grid ({r.grid_size} points): {r.value:+.3%} "
        f"(grid best {float(g['val_mean']):.5g}: {where})"
    )


def oracle_line(best_value: float, oracle_best: pd.DataFrame | None) -> str:
    """The converged oracles beside the search's best; ``None``: the model has none."""
    if oracle_best is None:
        return NO_ORACLE
    if oracle_best.empty:
        return "oracle (converged closed form): n/a for the chosen penalties"
    names = {"l2": "ridge", "l1": "lasso", "elastic": "elastic net"}
    parts = [
        f"{names.get(r['penalty'], r['penalty'])} {r['val_mean']:.5g} at λ={_fmt_lam(r['lam'])}"
        for r in oracle_best.to_dict(orient="records")
    ]
    return (
        f"oracle (converged closed form, val mean): {'; '.join(parts)} "
        f"— search best {best_value:.5g}"
    )


def summary_lines(
    header: str, selected: pd.DataFrame, r: Regret, oracle_best: pd.DataFrame | None
) -> list[str]:
    """The whole summary: a header, the selection table, regret and oracle comparison
    (``oracle_best`` None: the model has no closed-form oracle, said in one line)."""
    return [
        header,
        *selection_lines(selected),
        regret_line(r),
        oracle_line(r.best_value, oracle_best),
    ]


def time_to_regret(
    trials: pd.DataFrame, grid_best: dict[str, Any] | None, regret: float = REACH_REGRET
) -> dict[str, float | int] | None:
    """How long the search took until its best-so-far was within ``regret`` of the grid's best:
    ``{"trials": COMPLETE trials by then, "seconds": from the first trial's start}``, in the
    order trials completed; ``None`` if it never got there (or there is no usable grid)."""
    if grid_best is None:
        return None
    done = trials[trials["state"] == "COMPLETE"].sort_values(["datetime_complete", "number"])
    if done.empty:
        return None
    target = float(grid_best["val_mean"]) * (1 + regret)
    reached = done["value"].cummin().to_numpy() <= target
    if not reached.any():
        return None
    first = int(reached.argmax())
    start = trials["datetime_start"].min()
    seconds = (done["datetime_complete"].iloc[first] - start).total_seconds()
    return {"trials": first + 1, "seconds": round(float(seconds), 3)}


def reach_line(reach: dict[str, float | int] | None, regret: float = REACH_REGRET) -> str:
    """One line: the trials and seconds the search took to come within ``regret`` of the grid."""
    if reach is None:
        return f"time to ≤{regret:.0%} regret: not reached"
    return f"time to ≤{regret:.0%} regret: {reach['trials']} trials, {reach['seconds']:.1f} s"
