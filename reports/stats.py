"""Summaries over data seeds: means with Student-t 95 % intervals, grid optima, paired differences.

Comparisons of the replication (``compare``): a paired t-test of loss(a) − loss(b) over draws
(of acc(a) − acc(b), the test accuracy, in a classification study), p-values adjusted by Holm's
step-down method across the whole family, and each interval at the level Holm's step gives that
comparison (1 − α/(m − i + 1) for the i-th smallest p-value, held at the first step that does not
reject), so an interval excludes 0 exactly when p_holm < α.

Every interval of the suite (the study's trial statistics, its printed summary and the report) is
the two-sided 95 % Student-t interval of a mean over the S data seeds of a study:
mean ± t₀.₉₇₅,S−1 · sd / √S (sd with ddof = 1), the quantile of ``scipy.stats.t`` (computed by
``scipy.special.stdtrit``, as ``scipy.stats`` does, or read from a table of it for whole degrees
of freedom up to 64; the t-test's p-value by ``scipy.special.stdtr``: importing ``scipy.stats``
alone takes ≈ 0.7 s). With one seed it is
undefined (NaN), never silently zero. This module is its one home; it needs no torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "ALPHA",
    "COMPARISON_COLUMNS",
    "CONFIG_KEYS",
    "METRICS",
    "METRIC_COLUMN",
    "PairedDifference",
    "SeedSummary",
    "best_so_far",
    "chosen_penalty",
    "ci_half_width",
    "compare",
    "final_losses",
    "gain",
    "grid_summary",
    "holm",
    "metric_of",
    "oracle_summary",
    "paired_difference",
    "paired_t",
    "row_at",
    "summarize",
    "t_quantile",
]

#: Columns that identify one configuration in every table (``optimizer`` and ``lr`` where the
#: table has them).
CONFIG_KEYS = ["penalty", "loop", "optimizer", "lr", "lam", "l1_ratio"]


#: t₀.₉₇₅ at 1, 2, …, 64 degrees of freedom: ``scipy.special.stdtrit(df, 0.975)`` tabulated
#: (a test checks each entry against it to the bit), so the interval of every trial a search
#: tells needs no import of scipy (≈ 0.2 s of the search's main thread).
# fmt: off
_T975 = (
    12.706204736174694, 4.302652729749462, 3.1824463052837078, 2.7764451051977934,
    2.5705818356363146, 2.4469118511449786, 2.364624251592784, 2.306004135204166,
    2.262157162798205, 2.228138851986274, 2.200985160091639, 2.1788128296672284,
    2.1603686564627913, 2.144786687917804, 2.131449545559776, 2.1199052992212546,
    2.1098155778333156, 2.1009220402410382, 2.0930240544083087, 2.085963447265864,
    2.0796138447276795, 2.0738730679040254, 2.0686576104190486, 2.0638985616280245,
    2.0595385527532972, 2.0555294386428735, 2.0518305164802846, 2.0484071417952454,
    2.045229642132703, 2.0422724563012378, 2.039513446396408, 2.0369333434601016,
    2.0345152974493383, 2.0322445093177186, 2.030107928250343, 2.0280940009804502,
    2.0261924630291093, 2.0243941639119694, 2.022690920036761, 2.021075390306273,
    2.019540970441376, 2.0180817028184443, 2.016692199227824, 2.0153675744437636,
    2.014103388880846, 2.012895598919429, 2.0117405137297655, 2.010634757624232,
    2.0095752371292392, 2.008559112100761, 2.007583770315836, 2.006646805061688,
    2.0057459953178687, 2.0048792881880564, 2.0040447832891455, 2.003240718847872,
    2.002465459291007, 2.0017174841452356, 2.000995378088267, 2.0002978220142604,
    1.999623584994939, 1.9989715170333788, 1.998340542520741, 1.997729654317693,
)
# fmt: on


def t_quantile(q: float, df: float | np.ndarray) -> np.ndarray:
    """Student's t quantile ``q`` at ``df`` degrees of freedom: ``scipy.stats.t.ppf(q, df)``,
    which is ``scipy.special.stdtrit(df, q)`` to the bit, without importing ``scipy.stats``
    (nor scipy at all for q = 0.975 and whole df up to 64: ``_T975``)."""
    if q == 0.975:
        whole = np.asarray(df, dtype=np.float64)
        if whole.size and np.all((whole >= 1) & (whole <= len(_T975)) & (whole % 1 == 0)):
            tabulated: np.ndarray = np.asarray(_T975)[whole.astype(np.int64) - 1]
            return tabulated
    from scipy import special

    quantile: np.ndarray = special.stdtrit(df, q)
    return quantile


def ci_half_width(std: float, n: int) -> float:
    """Half-width of the 95 % Student-t interval of a mean of ``n`` values of sample sd ``std``."""
    if n < 2 or not math.isfinite(std):
        return math.nan
    return float(t_quantile(0.975, n - 1)) * std / math.sqrt(n)


def _ci_half_widths(std: np.ndarray, n: np.ndarray) -> np.ndarray:
    """``ci_half_width`` of each (std, n) pair at once, to the same bits: ``t.ppf(q, df)`` is
    ``scipy.special.stdtrit(df, q)``, and the products and quotient are the same IEEE operations."""
    n = n.astype(np.float64)
    ok = (n >= 2) & np.isfinite(std)
    df = np.where(ok, n - 1, 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        half = t_quantile(0.975, df) * std / np.sqrt(n)
    return np.where(ok, half, math.nan)


@dataclass(frozen=True)
class SeedSummary:
    """mean, std (ddof = 1) and the 95 % half-width (``ci_half_width``) of one value per seed.

    With one seed, std and the half-width are NaN (no spread can be estimated).
    """

    mean: float
    std: float
    ci95: float


def summarize(values: Sequence[float] | np.ndarray) -> SeedSummary:
    """Mean ± 95 % CI of ``values`` (one per data seed)."""
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    if x.size == 0:
        raise ValueError("summarize needs at least one value")
    std = float(x.std(ddof=1)) if x.size > 1 else math.nan
    return SeedSummary(float(x.mean()), std, ci_half_width(std, int(x.size)))


def _mean_ci(frame: pd.DataFrame, keys: list[str], column: str) -> pd.DataFrame:
    """Per group of ``keys``: mean, 95 % half-width and count of ``column``."""
    grouped = frame.groupby(keys, dropna=False, sort=True)[column]
    out = grouped.agg(["mean", "std", "count"]).reset_index()
    out["ci95"] = _ci_half_widths(out["std"].to_numpy(dtype=float), out["count"].to_numpy())
    return out.rename(columns={"count": "n"}).drop(columns="std")


def grid_summary(grid: pd.DataFrame) -> pd.DataFrame:
    """Mean over data seeds of each dense-grid configuration, diverged points excluded.

    Columns: ``CONFIG_KEYS``, ``val_mean``, ``val_ci95``, ``n`` (seeds that finished) and the means
    of ``train_loss``, ``w_norm``, ``zero_fraction`` (and ``val_acc_mean``, ``val_acc_ci95`` for
    classification). Sorted by penalty, loop, λ.
    """
    keys = [k for k in CONFIG_KEYS if k in grid.columns]
    ok = grid[(grid["status"] == "ok") & np.isfinite(grid["val_loss"].astype(float))]
    if ok.empty:
        return pd.DataFrame(columns=[*keys, "val_mean", "val_ci95", "n"])
    val = _mean_ci(ok, keys, "val_loss").rename(columns={"mean": "val_mean", "ci95": "val_ci95"})
    others = (
        ok.groupby(keys, dropna=False, sort=True)[["train_loss", "w_norm", "zero_fraction"]]
        .mean()
        .reset_index()
    )
    merged = val.merge(others, on=keys, how="left")
    if "val_acc" in ok.columns:  # classification: the validation accuracy beside the loss
        acc = _mean_ci(ok, keys, "val_acc").rename(
            columns={"mean": "val_acc_mean", "ci95": "val_acc_ci95"}
        )
        merged = merged.merge(acc.drop(columns="n"), on=keys, how="left")
    return merged.sort_values(keys).reset_index(drop=True)


def row_at(frame: pd.DataFrame, column: str, largest: bool = False) -> pd.Series:
    """The row where ``column`` is smallest (or largest), NaN ignored; ``frame`` must have one."""
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
    index = np.nanargmax(values) if largest else np.nanargmin(values)
    return frame.iloc[int(index)]


def best_so_far(complete: pd.DataFrame) -> pd.DataFrame:
    """Trials in number order with the running minimum of the validation loss (``best``)."""
    ordered = complete.sort_values("number")[["number", "penalty", "value"]].copy()
    ordered["best"] = ordered["value"].cummin()
    return ordered.reset_index(drop=True)


def final_losses(curves: pd.DataFrame, split: str) -> pd.DataFrame:
    """The last epoch's loss per label and data seed for one split (label, data_seed, loss)."""
    part = curves[curves["split"] == split]
    last = part.loc[part.groupby(["label", "data_seed"])["epoch"].idxmax()]
    return last[["label", "data_seed", "loss"]].reset_index(drop=True)


@dataclass(frozen=True)
class PairedDifference:
    """Mean over common data seeds of loss(a) − loss(b), with its 95 % half-width."""

    mean: float
    ci95: float
    n: int
    mean_a: float
    mean_b: float


def paired_difference(final: pd.DataFrame, label_a: str, label_b: str) -> PairedDifference | None:
    """Paired comparison of two labels on the data seeds they share; ``None`` if none shared.

    Pairing by data seed removes the draw-to-draw variation that both configurations see (common
    random numbers), so the interval is about the configurations, not about the draws.
    """
    a = final[final["label"] == label_a].set_index("data_seed")["loss"]
    b = final[final["label"] == label_b].set_index("data_seed")["loss"]
    seeds = a.index.intersection(b.index)
    if len(seeds) == 0:
        return None
    diff = (a.loc[seeds] - b.loc[seeds]).to_numpy(dtype=float)
    std = float(np.std(diff, ddof=1)) if len(diff) > 1 else math.nan
    return PairedDifference(
        mean=float(diff.mean()),
        ci95=ci_half_width(std, len(diff)),
        n=len(diff),
        mean_a=float(a.loc[seeds].mean()),
        mean_b=float(b.loc[seeds].mean()),
    )


def oracle_summary(oracle: pd.DataFrame) -> pd.DataFrame:
    """Mean over data seeds of each converged-oracle point (ridge / lasso / elastic-net path)."""
    keys = ["penalty", "lam", "l1_ratio"]
    columns = ["train_loss", "val_loss", "test_loss", "w_norm", "zero_fraction"]
    out = oracle.groupby(keys, dropna=False, sort=True)[columns].mean().reset_index()
    return out.sort_values(keys).reset_index(drop=True)


def chosen_penalty(selected: pd.DataFrame | None) -> str:
    """Penalty of the overall best configuration (the ``best`` row, else the ``is_best`` row).

    Its ``best-<penalty>`` row is the same configuration, so figures and tables mark both.
    """
    if selected is None:
        return ""
    rows = selected[selected["label"] == "best"]
    if rows.empty:
        rows = selected[selected["is_best"].astype(bool)]
    return str(rows["penalty"].iloc[0]) if not rows.empty else ""


#: Family-wise error rate of the replication's comparisons.
ALPHA = 0.05
#: What a comparison compares → the suffix of its column (``test_loss``, ``test_acc``).
METRICS = {"loss": "loss", "accuracy": "acc"}
#: Column of ``comparisons.parquet`` naming the metric of a classification study (absent for a
#: regression study and older files: the loss).
METRIC_COLUMN = "metric"
#: Columns of ``comparisons.parquet``.
COMPARISON_COLUMNS = [
    "a",
    "b",
    "regime",
    "split",
    "n",
    "mean_a",
    "mean_b",
    "mean_diff",
    "ci_low",
    "ci_high",
    "ci_level",
    "p_value",
    "p_holm",
    "penalty_a",
    "penalty_b",
    "empty_a",
    "empty_b",
]


def paired_t(diff: Sequence[float] | np.ndarray) -> tuple[float, float, float]:
    """``(mean, sd, p)`` of paired differences: two-sided one-sample t-test of mean 0.

    Zero spread gives p = 1 for a zero mean and p = 0 otherwise (scipy would return NaN).
    """
    x = np.asarray(diff, dtype=np.float64).reshape(-1)
    mean = float(x.mean())
    if x.size < 2:
        return mean, math.nan, math.nan
    sd = float(x.std(ddof=1))
    if sd == 0:
        return mean, sd, 1.0 if mean == 0 else 0.0
    return mean, sd, _t_test_p(x)


def _t_test_p(x: np.ndarray) -> float:
    """The two-sided p-value of ``scipy.stats.ttest_1samp(x, 0)``, to the bit: the same
    statistic (mean over √(biased variance · n/(n − 1) / n)) and ``2 · stdtr(n − 1, −|t|)``,
    which is ``2 · t.sf(|t|, n − 1)``, without importing ``scipy.stats`` (≈ 0.7 s)."""
    from scipy import special

    n = x.size
    mean = np.mean(x)
    var = np.mean((x - mean) ** 2) * (n / (n - 1))
    t = mean / np.sqrt(var / n)
    return float(2 * special.stdtr(n - 1, -np.abs(t)))


def holm(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (NaN stays NaN and is not counted in the family)."""
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(p.shape, math.nan)
    finite = np.flatnonzero(np.isfinite(p))
    m = finite.size
    running = 0.0
    for rank, i in enumerate(finite[np.argsort(p[finite], kind="stable")]):
        running = max(running, min(1.0, (m - rank) * float(p[i])))
        out[i] = running
    return out


def _holm_levels(p_values: np.ndarray, alpha: float) -> np.ndarray:
    """Per comparison, the confidence level of Holm's step: 1 − α/(m − rank), frozen at the
    first step that does not reject, so an interval excludes 0 exactly when p_holm < α."""
    levels = np.full(p_values.shape, math.nan)
    finite = np.flatnonzero(np.isfinite(p_values))
    m = finite.size
    stop: int | None = None
    for rank, i in enumerate(finite[np.argsort(p_values[finite], kind="stable")]):
        if stop is None and not p_values[i] < alpha / (m - rank):
            stop = rank
        levels[i] = 1 - alpha / (m - (rank if stop is None else stop))
    return levels


def _about(part: pd.DataFrame, label: str, side: str) -> dict[str, object]:
    rows = part[part["label"] == label]
    penalty = str(rows["penalty"].iloc[0]) if len(rows) else ""
    empty = bool(len(rows)) and bool((rows["zero_fraction"] == 1).all())
    return {f"penalty_{side}": penalty, f"empty_{side}": empty}


def compare(
    losses: pd.DataFrame,
    pairs: Sequence[tuple[str, str, str]],
    split: str = "test",
    alpha: float = ALPHA,
    metric: str = "loss",
) -> pd.DataFrame:
    """One row per ``(regime, a, b)`` of ``pairs`` (columns ``COMPARISON_COLUMNS``).

    ``losses`` has ``regime``, ``label``, ``penalty``, ``zero_fraction``, ``data_seed`` and
    ``<split>_loss``; a and b are paired by data seed within the regime. mean_diff = mean of
    loss(a) − loss(b); p_holm adjusts across every row; [ci_low, ci_high] is the t-interval at
    level ``ci_level`` (Holm's step level). ``empty_a`` / ``empty_b``: every weight of that
    configuration is exactly 0 on every draw (it is the null model's predictor).
    ``metric="accuracy"`` compares ``<split>_acc`` instead (mean_diff = acc(a) − acc(b): higher
    is better) and adds the column ``metric`` (``METRIC_COLUMN``; absent: the loss).
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    rows = []
    column = f"{split}_{METRICS[metric]}"
    for regime, a, b in pairs:
        part = losses[losses["regime"] == regime]
        la = part[part["label"] == a].set_index("data_seed")[column]
        lb = part[part["label"] == b].set_index("data_seed")[column]
        seeds = la.index.intersection(lb.index)
        diff = (la.loc[seeds] - lb.loc[seeds]).to_numpy(dtype=float)
        mean, sd, p = paired_t(diff) if diff.size else (math.nan, math.nan, math.nan)
        rows.append(
            {
                "a": a,
                "b": b,
                **_about(part, a, "a"),
                **_about(part, b, "b"),
                "regime": regime,
                "split": split,
                "n": int(diff.size),
                "mean_a": float(la.loc[seeds].mean()),
                "mean_b": float(lb.loc[seeds].mean()),
                "mean_diff": mean,
                "sd": sd,
                "p_value": p,
            }
        )
    frame = pd.DataFrame(rows, columns=[*COMPARISON_COLUMNS, "sd"])
    p_values = frame["p_value"].to_numpy(dtype=float)
    frame["p_holm"] = holm(p_values)
    frame["ci_level"] = _holm_levels(p_values, alpha)
    half = [
        float(t_quantile(1 - (1 - lvl) / 2, n - 1)) * sd / math.sqrt(n) if n >= 2 else math.nan
        for lvl, sd, n in zip(frame["ci_level"], frame["sd"], frame["n"], strict=True)
    ]
    frame["ci_low"] = frame["mean_diff"] - half
    frame["ci_high"] = frame["mean_diff"] + half
    out = frame[COMPARISON_COLUMNS].reset_index(drop=True)
    return out if metric == "loss" else out.assign(**{METRIC_COLUMN: metric})


def metric_of(comparison: pd.Series) -> str:
    """``"loss"`` (lower is better) or ``"accuracy"`` (higher is better) of one comparison."""
    value = comparison.get(METRIC_COLUMN, "loss")
    return "accuracy" if value == "accuracy" else "loss"


def gain(comparison: pd.Series) -> float:
    """How much better a is than b: loss(b) − loss(a), or acc(a) − acc(b)."""
    diff = float(comparison["mean_diff"])
    return diff if metric_of(comparison) == "accuracy" else -diff
