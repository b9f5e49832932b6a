"""The replication's statistics and the verdicts drawn from them (no study, no plots)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from reports.stats import compare, holm
from reports.verdicts import Budget, lam_range, verdicts

BUDGET = Budget(epochs=100, lr=0.003, init_scale=1.0)
#: Ten fixed values of mean 0 and sd 1: differences built from them have a known t statistic.
Z = np.array([1.2, -0.7, 0.3, -1.5, 0.9, 0.1, -0.4, 1.6, -1.1, -0.4])
Z = (Z - Z.mean()) / Z.std(ddof=1)


def test_holm_by_hand() -> None:
    # sorted: 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 → max(0.06, 0.04) = 0.06
    got = holm([0.01, 0.04, 0.03, 0.005, math.nan])
    assert got[:4] == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert math.isnan(got[4])


def _rows(losses: dict[str, np.ndarray], empty: tuple[str, ...] = ()) -> pd.DataFrame:
    penalty = {"best": "l1", "best-l1": "l1", "best-l2": "l2", "best-elastic": "elastic"}
    penalty |= {"no-decay": "none", "null": "null"}
    return pd.DataFrame(
        [
            dict(
                regime="budget",
                label=label,
                penalty=penalty[label],
                data_seed=100 + r,
                test_loss=float(v),
                val_loss=float(v),
                zero_fraction=1.0 if label in empty or label == "null" else 0.1,
            )
            for label, values in losses.items()
            for r, v in enumerate(values)
        ]
    )


PAIRS = [
    ("budget", "best-l1", "no-decay"),
    ("budget", "best-l2", "best"),
    ("budget", "best-elastic", "best"),
    ("budget", "best", "null"),
]


def _family(t_l2: float, t_elastic: float) -> pd.DataFrame:
    """best = l1; l2 and elastic worse by differences with t statistics ``t_l2``, ``t_elastic``."""
    base = 0.01 + 0.001 * np.sin(np.arange(10))
    sd = 1e-4
    n = len(Z)
    losses = {
        "best": base,
        "best-l1": base,
        "best-l2": base + sd * (t_l2 / math.sqrt(n) + Z),
        "best-elastic": base + sd * (t_elastic / math.sqrt(n) + Z[::-1]),
        "no-decay": base + 1.0,
        "null": base + 0.002 + 1e-4 * Z,
    }
    return compare(_rows(losses), PAIRS)


def _selected(empty_best: bool = False) -> pd.DataFrame:
    rows = [
        ("best", "l1", 0.05, 0.0100, empty_best),
        ("best-l1", "l1", 0.05, 0.0100, empty_best),
        ("best-l2", "l2", 0.3, 0.0102, False),
        ("best-elastic", "elastic", 0.1, 0.0101, False),
        ("no-decay", "none", 0.0, 1.0, False),
        ("null", "null", math.inf, 0.012, True),
    ]
    return pd.DataFrame(
        [
            dict(
                label=label,
                penalty=p,
                loop="proximal",
                lam=lam,
                l1_ratio=math.nan,
                val_mean=v,
                val_ci95=v * 0.05,
                test_mean=v,
                test_ci95=v * 0.05,
                is_best=label == "best",
                empty=e,
            )
            for label, p, lam, v, e in rows
        ]
    )


def test_compare_is_a_paired_t_test_with_holm_step_intervals() -> None:
    comparisons = _family(t_l2=2.6, t_elastic=8.0)
    row = comparisons.set_index("a").loc["best-l2"]
    diff = 1e-4 * (2.6 / math.sqrt(10) + Z)
    assert row["mean_diff"] == pytest.approx(diff.mean(), rel=1e-9)
    base = 0.01 + 0.001 * np.sin(np.arange(10))
    assert row["p_value"] == pytest.approx(sps.ttest_rel(base + diff, base).pvalue, rel=1e-6)
    p = comparisons["p_value"].to_numpy()
    rank = int((p < row["p_value"]).sum())  # the l2 comparison's rank among the 4
    assert rank == 3 and row["p_holm"] < 0.05  # every step rejects: level 1 − α/(m − rank)
    assert row["ci_level"] == pytest.approx(1 - 0.05 / (4 - rank))
    half = sps.t.ppf(1 - (1 - row["ci_level"]) / 2, 9) * diff.std(ddof=1) / math.sqrt(10)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(
        (diff.mean() - half, diff.mean() + half), rel=1e-9
    )


def test_no_conclusion_when_the_adjusted_interval_contains_zero() -> None:
    # t = 2.6 at n = 10: p ≈ 0.03 alone; two such comparisons in a family of 4 → p_holm ≈ 0.06
    comparisons = _family(t_l2=2.6, t_elastic=2.6)
    for label in ("best-l2", "best-elastic"):
        row = comparisons.set_index("a").loc[label]
        assert row["p_value"] < 0.05 < row["p_holm"]
        assert row["ci_low"] < 0 < row["ci_high"]
        assert row["ci_level"] == pytest.approx(1 - 0.05 / 2)  # held at the failing step
    found = verdicts(_selected(), comparisons, budget=BUDGET)
    text = "\n".join(found.lines)
    assert "l2 (best-l2) and l1 (best) cannot be separated" in text
    assert "beats l2" not in text and "beats elastic" not in text
    assert found.recommended == "l2"  # the simpler of the tied penalties
    assert (
        "l2, l1, elastic cannot be separated after adjustment; the simplest, l2" in (found.lines[0])
    )
    assert "100 epochs of SGD, lr 0.003, init scale 1" in found.lines[0]


def test_a_conclusion_is_drawn_when_the_adjusted_interval_excludes_zero() -> None:
    comparisons = _family(t_l2=9.0, t_elastic=9.0)
    row = comparisons.set_index("a").loc["best-l2"]
    assert row["p_holm"] < 0.05 and row["ci_low"] > 0
    found = verdicts(_selected(), comparisons, budget=BUDGET)
    assert any("l1 (best) beats l2 (best-l2)" in line for line in found.lines)
    assert found.recommended == "l1"
    pct = 100 * (1 - comparisons.iloc[3]["mean_a"] / comparisons.iloc[3]["mean_b"])
    assert f"{pct:.3g} % better than predicting the mean" in found.lines[0]


def test_an_empty_best_is_the_null_model_never_a_choice_of_lambda() -> None:
    base = 0.01 + 0.001 * np.sin(np.arange(10))
    losses = {
        "best": base + 1e-5 * Z,
        "best-l1": base + 1e-5 * Z,
        "best-l2": base + 0.001,
        "best-elastic": base + 0.001,
        "no-decay": base + 1.0,
        "null": base + 1e-5 * Z[::-1],
    }
    comparisons = compare(_rows(losses, empty=("best", "best-l1")), PAIRS)
    found = verdicts(_selected(empty_best=True), comparisons, budget=BUDGET)
    assert found.recommended == "null"
    assert found.lines[0].startswith("No feature helps at this budget")
    assert "λ" not in found.lines[0] and "Recommendation" not in found.lines[0]
    assert any("l1 (best: every weight 0, i.e. the null model)" in x for x in found.lines)


def test_lam_range_reads_the_grid_branch_of_the_choice() -> None:
    lams = np.geomspace(0.1, 100, 13)
    val = 0.01 * (1 + 0.05 * np.log10(lams / 10) ** 2)
    grid = pd.DataFrame(
        dict(penalty="l2", loop="scratch", lam=lams, l1_ratio=math.nan, val_mean=val)
    )
    oracle = pd.DataFrame(dict(penalty="l2", lam=[0.01, 0.1, 1.0], val_loss=[0.009, 0.008, 0.0085]))
    chosen = pd.Series(dict(penalty="l2", loop="scratch", lam=10.0, val_mean=0.01, val_ci95=2e-4))
    r = lam_range(grid, oracle, chosen)
    assert r is not None
    near = lams[val <= val.min() * 1.01]
    assert r.near == (near.min(), near.max(), False)
    inside = lams[val <= 0.01 + 2e-4]
    assert r.within_ci is not None and r.within_ci[:2] == (inside.min(), inside.max())
    assert r.converged == 0.1
