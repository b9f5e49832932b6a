"""The verdicts of a study: one function, read by the console, ``run.json`` and the report alike.

Every verdict rests on ``comparisons.parquet`` (the replication's paired comparisons on fresh
draws, test split, Holm-adjusted across the whole family: on the test loss, or on the test accuracy
in a classification study) and names its regime: ``budget`` (SGD at the study's epochs, lr and
init scale, and the network when there is one) or ``converged`` (the exact oracles). Two options are
called different only when the adjusted p-value is below α (then the interval, at Holm's step
level, excludes 0); otherwise the verdict says they cannot be separated and prefers the simpler
(null < none < l2 < l1 < elastic). A configuration whose every weight is exactly zero is the null
model and is named so. λ is given as a range of the dense grid (``lam_ranges``).

Standard library, numpy and pandas only (no torch, no plotting).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from reports.stats import ALPHA, gain, metric_of

__all__ = [
    "NO_ORACLE",
    "SIMPLICITY",
    "Budget",
    "LamRange",
    "Verdicts",
    "lam_range",
    "verdicts",
]

#: The one line the console, summary.md and the report give a study without closed-form oracles.
NO_ORACLE = (
    "oracle: none — a network (an MLP, or softmax regression on a classification problem) has "
    "no closed-form solution, so the dense grid is the reference"
)
#: Simpler first: what a tie is resolved to.
SIMPLICITY = ("null", "none", "l2", "l1", "elastic")
NULL = "null"
_ORACLE = {"l2": "ridge", "l1": "lasso", "elastic": "elastic net", "none": "least squares"}
#: Relative distance to the grid's best that counts as "as good" for the λ range.
WITHIN = 0.01


@dataclass(frozen=True)
class Budget:
    """The training setting every budget-regime verdict is about. For a ``network`` (an MLP, or
    softmax regression on a classification problem) also its model (``hidden`` and ``layers`` of
    an MLP), ``batch_size``, the ``optimizers`` searched and the ``lr_range``."""

    epochs: int
    lr: float
    init_scale: float
    model: str = "linear"
    hidden: int | None = None
    layers: int | None = None
    batch_size: int | None = None
    network: bool = False
    optimizers: tuple[str, ...] = ("sgd",)
    lr_range: tuple[float, float] | None = None

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], network: bool = False) -> Budget | None:
        """From ``run.json``'s ``settings`` (None when a value is missing)."""
        try:
            sizes = {
                k: None if settings.get(k) is None else int(settings[k])
                for k in ("hidden", "layers", "batch_size")
            }
            lr_range = settings.get("lr_range")
            return cls(
                int(settings["epochs"]),
                float(settings["lr"]),
                float(settings["init_scale"]),
                str(settings.get("model") or "linear"),
                **sizes,
                network=network,
                optimizers=tuple(str(o) for o in settings.get("optimizers") or ("sgd",)),
                lr_range=None if not lr_range else (float(lr_range[0]), float(lr_range[1])),
            )
        except (KeyError, TypeError, ValueError, IndexError):
            return None

    def describe(self) -> str:
        if not self.network:  # the lesson's linear regression: as it always read
            return (
                f"{self.epochs} epochs of SGD, lr {_g(self.lr)}, init scale {_g(self.init_scale)}"
            )
        names = " or ".join(_OPTIMIZER_NAMES.get(o, o) for o in self.optimizers)
        lr = (
            f"lr {_g(self.lr)}"
            if self.lr_range is None
            else f"the searched lr ({_g(self.lr_range[0])} to {_g(self.lr_range[1])})"
        )
        batch = LESSON_BATCH if self.batch_size is None else self.batch_size
        model = (
            f"an MLP of {_layers(self.layers or 1)} of {self.hidden} ReLU units"
            if self.model == "mlp"
            else "softmax regression"
        )
        return (
            f"{self.epochs} epochs of {names} at {lr}, minibatch {batch}, init scale "
            f"{_g(self.init_scale)}, {model}"
        )


_OPTIMIZER_NAMES = {"sgd": "SGD", "momentum": "SGD with momentum", "adam": "Adam"}
#: The lesson's minibatch size (``wdbench.TrainConfig``'s default; not named in the verdicts).
LESSON_BATCH = 5


def _layers(n: int) -> str:
    return "1 hidden layer" if n == 1 else f"{n} hidden layers"


@dataclass(frozen=True)
class LamRange:
    """Grid λ of one branch within 1 % of its best (``near``) and within the chosen
    configuration's 95 % CI (``within_ci``), each as (low, high, reaches the grid's top)."""

    penalty: str
    chosen: float
    near: tuple[float, float, bool]
    within_ci: tuple[float, float, bool] | None
    converged: float | None


@dataclass(frozen=True)
class Verdicts:
    """The sentences (headline first) and the recommended penalty ("null": predict the mean)."""

    lines: tuple[str, ...]
    recommended: str


def _g(x: float, digits: int = 3) -> str:
    if not math.isfinite(x):
        return "∞" if x > 0 else "—"
    return f"{x:.{digits}g}"


def _regime_name(regime: str, budget: Budget | None) -> str:
    if regime == "budget":
        return f"the budget ({budget.describe()})" if budget is not None else "the budget"
    return "convergence (exact oracles)"


def _row(selected: pd.DataFrame, label: str) -> pd.Series | None:
    part = selected[selected["label"] == label]
    return None if part.empty else part.iloc[0]


def _is_empty(selected: pd.DataFrame, label: str) -> bool:
    row = _row(selected, label)
    return row is not None and "empty" in row.index and bool(row["empty"])


def _separated(c: pd.Series) -> bool:
    return bool(np.isfinite(c["p_holm"]) and c["p_holm"] < ALPHA)


def _interval(c: pd.Series) -> str:
    if metric_of(c) == "accuracy":
        return (
            f"d = {_points(c['mean_diff'])} points, Holm-adjusted {100 * c['ci_level']:.3g} % CI "
            f"[{_points(c['ci_low'])}, {_points(c['ci_high'])}] points, "
            f"p_holm = {_g(c['p_holm'], 2)}"
        )
    return (
        f"d = {_g(c['mean_diff'])}, Holm-adjusted {100 * c['ci_level']:.3g} % CI "
        f"[{_g(c['ci_low'])}, {_g(c['ci_high'])}], p_holm = {_g(c['p_holm'], 2)}"
    )


def _points(x: float) -> str:
    """An accuracy difference in percentage points, signed."""
    return f"{100 * float(x):+.3g}" if math.isfinite(float(x)) else "—"


def _pct(x: float) -> str:
    """An accuracy as a percentage."""
    return f"{100 * float(x):.4g} %" if math.isfinite(float(x)) else "—"


def _name(label: str, penalty: str, empty: bool, classify: bool = False) -> str:
    if label == NULL:
        what = "the majority class" if classify else "the training mean"
        return f"the null model (predict {what})"
    if empty:
        return f"{penalty} ({label}: every weight 0, i.e. the null model)"
    if label == "no-decay":
        return "no decay"
    return f"{penalty} ({label})"


def _describe(c: pd.Series) -> str:
    """One comparison as a sentence: which is better on the test split, or that none is."""
    classify = metric_of(c) == "accuracy"
    a = _name(str(c["a"]), str(c["penalty_a"]), bool(c["empty_a"]), classify)
    b = _name(str(c["b"]), str(c["penalty_b"]), bool(c["empty_b"]), classify)
    if classify:
        return _describe_accuracy(c, a, b)
    d = f"d = test({c['a']}) − test({c['b']})"
    tail = _interval(c).replace("d = ", f"{d} = ", 1)
    if not _separated(c):
        return (
            f"{a} and {b} cannot be separated: test loss {_g(c['mean_a'], 4)} vs "
            f"{_g(c['mean_b'], 4)} ({tail})"
        )
    a_wins = c["mean_diff"] < 0
    winner, loser = (a, b) if a_wins else (b, a)
    low, high = (c["mean_a"], c["mean_b"]) if a_wins else (c["mean_b"], c["mean_a"])
    ratio = float(high) / float(low) if float(low) > 0 else math.inf
    gain = f"{_g(ratio)}× lower" if ratio >= 2 else f"{100 * (1 - 1 / ratio):.3g} % lower"
    return f"{winner} beats {loser}: test loss {_g(low, 4)} vs {_g(high, 4)}, {gain} ({tail})"


def _describe_accuracy(c: pd.Series, a: str, b: str) -> str:
    """A comparison of test accuracies: which is higher, by how many points, or that none is."""
    d = f"d = acc({c['a']}) − acc({c['b']})"
    tail = _interval(c).replace("d = ", f"{d} = ", 1)
    if not _separated(c):
        return (
            f"{a} and {b} cannot be separated: test accuracy {_pct(c['mean_a'])} vs "
            f"{_pct(c['mean_b'])} ({tail})"
        )
    a_wins = gain(c) > 0
    winner, loser = (a, b) if a_wins else (b, a)
    high, low = (c["mean_a"], c["mean_b"]) if a_wins else (c["mean_b"], c["mean_a"])
    return (
        f"{winner} beats {loser}: test accuracy {_pct(high)} vs {_pct(low)}, "
        f"{100 * abs(float(c['mean_diff'])):.3g} points higher ({tail})"
    )


def lam_range(
    grid: pd.DataFrame | None, oracle: pd.DataFrame | None, chosen: pd.Series
) -> LamRange | None:
    """λ of the chosen configuration's grid branch (penalty, loop; elastic at the grid's best
    l1_ratio) within 1 % of that branch's best and within the chosen configuration's 95 % CI."""
    if grid is None or str(chosen["penalty"]) in ("none", NULL):
        return None
    part = grid[(grid["penalty"] == chosen["penalty"]) & (grid["loop"] == chosen["loop"])]
    part = part[np.isfinite(part["val_mean"].astype(float)) & (part["lam"] > 0)]
    if part.empty:
        return None
    if part["l1_ratio"].notna().any():
        ratio = part.loc[part["val_mean"].idxmin(), "l1_ratio"]
        part = part[part["l1_ratio"] == ratio]
    part = part.sort_values("lam")
    top = float(part["lam"].max())

    def span(mask: pd.Series) -> tuple[float, float, bool] | None:
        lams = part.loc[mask, "lam"].astype(float)
        return None if lams.empty else (float(lams.min()), float(lams.max()), lams.max() == top)

    best = float(part["val_mean"].min())
    near = span(part["val_mean"] <= best * (1 + WITHIN))
    assert near is not None
    ci = float(chosen["val_ci95"])
    within = span(part["val_mean"] <= float(chosen["val_mean"]) + ci) if math.isfinite(ci) else None
    converged = None
    if oracle is not None:
        conv = oracle[oracle["penalty"] == chosen["penalty"]]
        if not conv.empty:
            converged = float(conv.loc[conv["val_loss"].idxmin(), "lam"])
    return LamRange(str(chosen["penalty"]), float(chosen["lam"]), near, within, converged)


def _span(s: tuple[float, float, bool]) -> str:
    low, high, open_top = s
    return f"λ ≥ {_g(low)} (up to the grid's end)" if open_top else f"λ ∈ [{_g(low)}, {_g(high)}]"


def _lam_sentence(r: LamRange, budget: Budget | None) -> str:
    setting = f" at {budget.describe()}" if budget is not None else " at the training budget"
    text = (
        f"How strong ({r.penalty}){setting}: not one number — the grid is within 1 % of its "
        f"best for {_span(r.near)}"
    )
    if r.within_ci is not None:
        text += f" and within the chosen configuration's 95 % CI for {_span(r.within_ci)}"
    text += f" (the search picked λ = {_g(r.chosen)})."
    if r.converged is not None and r.converged > 0:
        ratio = r.chosen / r.converged
        text += (
            f" The converged {_ORACLE.get(r.penalty, r.penalty)} chooses λ = {_g(r.converged)} "
            f"({_g(ratio, 2)}× {'smaller' if ratio > 1 else 'larger'})"
        )
        if r.penalty in ("l2", "elastic") and ratio > 1:
            text += (
                ": within the budget, decay must first erase the random start w₀ in the null "
                "space of X_train, where no gradient acts, so the budget wants a larger λ than "
                "the converged solution, which has no such part."
            )
        else:
            text += "."
    return text


def _simplicity(penalty: str) -> int:
    return SIMPLICITY.index(penalty) if penalty in SIMPLICITY else len(SIMPLICITY)


def _recommend(
    budget_part: pd.DataFrame, selected: pd.DataFrame
) -> tuple[str, list[str], pd.Series | None]:
    """(recommended penalty, the tied penalties, the best-vs-null comparison)."""
    best = _row(selected, "best")
    if best is None:
        return "", [], None
    top = NULL if _is_empty(selected, "best") else str(best["penalty"])
    tied = {top}
    vs_null = None
    better: list[pd.Series] = []
    for _, c in budget_part.iterrows():
        a, b = str(c["a"]), str(c["b"])
        if b == "best" and a.startswith("best-") and not _separated(c):
            tied.add(NULL if bool(c["empty_a"]) else str(c["penalty_a"]))
        if b == "no-decay" and not _separated(c):
            tied.add("none")
        if b == "best" and a.startswith("best-") and _separated(c) and gain(c) > 0:
            better.append(c)  # the fresh draws prefer another penalty's best to the search's
        if a == "best" and b == NULL:
            vs_null = c
            if not _separated(c) or gain(c) <= 0:
                tied.add(NULL)
    if better:  # the largest gain on the fresh draws; the simpler among equal gains
        winner = max(better, key=lambda c: (gain(c), -_simplicity(str(c["penalty_a"]))))
        return str(winner["penalty_a"]), [str(winner["penalty_a"])], vs_null
    order = sorted(tied, key=_simplicity)
    return order[0], order, vs_null


def _headline(
    recommended: str,
    tied: list[str],
    vs_null: pd.Series | None,
    selected: pd.DataFrame,
    ranges: LamRange | None,
    budget: Budget | None,
    n_draws: int,
) -> str:
    setting = budget.describe() if budget is not None else "the training budget"
    classify = vs_null is not None and metric_of(vs_null) == "accuracy"
    mean = "the majority class" if classify else "the training mean"
    if recommended == NULL:
        worse = vs_null is not None and _separated(vs_null) and gain(vs_null) < 0
        verdict = "is worse than" if worse else "cannot be told apart from"
        text = (
            f"No feature helps at this budget ({setting}): the best configuration the search "
            f"found {verdict} predicting {mean}"
        )
        if vs_null is not None:
            text += f" on {n_draws} fresh draws ({_interval(vs_null)})"
        return text + f"; predict {'it' if classify else 'the mean'} (the null model)."
    text = f"Recommendation at this budget ({setting}): {recommended}"
    chosen = str(_row(selected, "best")["penalty"])  # type: ignore[index]
    if recommended == chosen and ranges is not None:
        text += f" with {_span(ranges.near)} (within 1 % of the grid's best)"
    elif len(tied) == 1 and recommended != chosen:  # another penalty's best won the replication
        text += (
            f" (best-{recommended} beats the search's choice, {chosen}, on the {n_draws} fresh "
            "draws; below)"
        )
        return (
            text
            + _vs_null(vs_null, mean, n_draws, classify).replace(
                ", ", "; the search's choice is ", 1
            )
            + "."
        )
    text += _vs_null(vs_null, mean, n_draws, classify)
    if len(tied) > 1:
        text += (
            f". {', '.join(tied)} cannot be separated after adjustment; the simplest, "
            f"{recommended}, is recommended"
        )
    return text + "."


def _vs_null(vs_null: pd.Series | None, mean: str, n_draws: int, classify: bool) -> str:
    """``, <how much better> than predicting <mean> (...)`` when the best beats the null model."""
    text = ""
    if vs_null is not None and _separated(vs_null) and gain(vs_null) > 0 and classify:
        text += (
            f", {100 * float(vs_null['mean_diff']):.3g} points of test accuracy above predicting "
            f"{mean} on {n_draws} fresh draws ({_pct(vs_null['mean_a'])} vs "
            f"{_pct(vs_null['mean_b'])}; {_interval(vs_null)})"
        )
    elif vs_null is not None and _separated(vs_null) and gain(vs_null) > 0:
        pct = 100 * (1 - float(vs_null["mean_a"]) / float(vs_null["mean_b"]))
        text += (
            f", {pct:.3g} % better than predicting the mean on {n_draws} fresh draws "
            f"(test loss {_g(vs_null['mean_a'], 4)} vs {_g(vs_null['mean_b'], 4)}; "
            f"{_interval(vs_null)})"
        )
    return text


def verdicts(
    selected: pd.DataFrame | None,
    comparisons: pd.DataFrame | None,
    grid: pd.DataFrame | None = None,
    oracle: pd.DataFrame | None = None,
    budget: Budget | None = None,
) -> Verdicts:
    """Every verdict the replication supports, headline first (see the module docstring).

    ``grid`` and ``oracle`` are the summaries of ``reports.stats.grid_summary`` and
    ``oracle_summary`` (for the λ range); ``selected`` is ``selected.parquet``.
    """
    if selected is None or comparisons is None or comparisons.empty:
        return Verdicts((), "")
    lines: list[str] = []
    budget_part = comparisons[comparisons["regime"] == "budget"]
    n_draws = int(comparisons["n"].max())
    best = _row(selected, "best")
    ranges = lam_range(grid, oracle, best) if best is not None else None
    recommended, tied, vs_null = _recommend(budget_part, selected)
    lines.append(_headline(recommended, tied, vs_null, selected, ranges, budget, n_draws))
    null = _row(selected, NULL)
    classify = metric_of(comparisons.iloc[0]) == "accuracy"
    if null is not None and classify:
        lines.append(
            "Null baseline (predict the majority class of y_train; its loss is the cross-entropy "
            f"of the training class frequencies): validation accuracy "
            f"{_pct(null.get('val_acc_mean', math.nan))} and cross-entropy "
            f"{_g(null['val_mean'], 4)} on the search's draws, test accuracy "
            f"{_pct(_null_test(comparisons))} on the {n_draws} fresh draws."
        )
    elif null is not None:
        lines.append(
            f"Null baseline (w = 0, b = mean of y_train): validation {_g(null['val_mean'], 4)} "
            f"on the search's draws, test {_g(_null_test(comparisons), 4)} on the "
            f"{n_draws} fresh draws."
        )
    empties = [
        str(r["penalty"])
        for _, r in selected.iterrows()
        if "empty" in selected.columns and bool(r["empty"]) and r["label"] != NULL
    ]
    if empties:
        names = " and ".join(sorted(set(empties), key=_simplicity))
        setting = f" ({budget.describe()})" if budget is not None else ""
        trained = "the biases are" if classify or _is_network(budget) else "the intercept is"
        lines.append(
            f"No feature helps at this budget{setting} for {names}: the best configuration "
            f"sets every weight exactly to 0, so it is the null model (only {trained} "
            "trained), and its λ means only 'large enough to erase every weight'."
        )
    overruled = len(tied) == 1 and ranges is not None and recommended != ranges.penalty
    if ranges is not None and recommended not in (NULL, "none") and not overruled:
        lines.append(_lam_sentence(ranges, budget))
    lines += _family(comparisons, selected, budget)
    lines += _agreement(comparisons)
    return Verdicts(tuple(lines), recommended)


def _null_test(comparisons: pd.DataFrame) -> float:
    part = comparisons[comparisons["b"] == NULL]
    return float(part["mean_b"].iloc[0]) if not part.empty else math.nan


def _is_network(budget: Budget | None) -> bool:
    return budget is not None and budget.model == "mlp"


def _family(comparisons: pd.DataFrame, selected: pd.DataFrame, budget: Budget | None) -> list[str]:
    m = int(np.isfinite(comparisons["p_value"].astype(float)).sum())
    n = int(comparisons["n"].max())
    split = (
        "the test split's accuracy"
        if metric_of(comparisons.iloc[0]) == "accuracy"
        else "the test split"
    )
    lines = [
        f"Comparisons: {m} in one family ({', '.join(_counts(comparisons))}), each paired over "
        f"{n} fresh data draws with a fresh train seed each, never seen by the search, on "
        f"{split}; p-values Holm-adjusted across all of them, each interval at its Holm step "
        "level."
    ]
    for _, c in comparisons.iterrows():
        lines.append(f"At {_regime_name(str(c['regime']), budget)}: {_describe(c)}.")
    return lines


def _counts(comparisons: pd.DataFrame) -> list[str]:
    counts = comparisons.groupby("regime", sort=False).size()
    return [f"{int(n)} at {regime}" for regime, n in counts.items()]


def _agreement(comparisons: pd.DataFrame) -> list[str]:
    """Where the two regimes agree, and where the budget, not the penalty, decides."""
    keyed = {(str(c["a"]), str(c["b"]), str(c["regime"])): c for _, c in comparisons.iterrows()}
    agree: list[str] = []
    differ: list[str] = []
    for (a, b, regime), c in keyed.items():
        other = keyed.get((a, b, "converged"))
        if regime != "budget" or other is None:
            continue
        sign_b = int(np.sign(c["mean_diff"])) if _separated(c) else 0
        sign_c = int(np.sign(other["mean_diff"])) if _separated(other) else 0
        (agree if sign_b == sign_c else differ).append(f"{a} vs {b}")
    if not agree and not differ:
        return []
    text = "Regimes: "
    if agree:
        text += f"the budget and convergence agree on {', '.join(agree)}"
    if differ:
        text += ("; " if agree else "") + (
            f"they disagree on {', '.join(differ)}: there the training budget, not the "
            "penalty, decides the verdict"
        )
    return [text + "."]
