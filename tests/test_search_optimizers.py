"""Optimizers, coupling and the learning rate in a study: the space, the 2-D dense grid, the
lr × λ report, and old run directories that predate them."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest

from reports.build import build_report
from reports.lr_lambda import decoupling, lr_lambda_means, optima, slopes
from studies.cli import DEFAULTS, UsageError, parse_args
from studies.grid import grid_points
from studies.names import DECAYS, OPTIMIZERS
from studies.search import main
from studies.space import params_of, point_from_params, rules_for, suggest
from wdbench.optimizers import OPTIMIZERS as WDBENCH_OPTIMIZERS

FLAGS = ["--optimizers", "sgd,momentum,adam", "--decay", "coupled,decoupled"]


def test_names_are_the_registrys() -> None:
    assert OPTIMIZERS == tuple(WDBENCH_OPTIMIZERS)
    assert DECAYS == ("coupled", "decoupled")


def test_flags_parse_and_default_to_the_lessons_plain_sgd() -> None:
    assert (DEFAULTS.optimizers, DEFAULTS.decay, DEFAULTS.lr_range) == (("sgd",), DECAYS, None)
    s = parse_args([*FLAGS, "--lr-range", "1e-4", "1e-1"])
    assert s.optimizers == ("sgd", "momentum", "adam") and s.lr_range == (1e-4, 1e-1)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--optimizers", "rmsprop"], "'rmsprop' is not one of sgd, momentum, adam"),
        (["--decay", "weight"], "'weight' is not one of coupled, decoupled"),
        (["--lr-range", "0.1", "0.01"], "--lr-range must have LOW < HIGH"),
        (["--lr-range", "0", "0.1"], "must be > 0"),
        (["--lr", "0.01", "--lr-range", "1e-3", "1e-1"], "exclude each other"),
    ],
)
def test_bad_flags_are_one_line_usage_errors(argv: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=re.escape(message)):
        parse_args(argv)


def test_default_space_asks_what_it_always_asked() -> None:
    """Plain SGD at a fixed lr: no optimizer, lr or decay parameter is ever suggested."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(60):
        point = suggest(study.ask(), DEFAULTS)
        assert point.optimizer == "sgd" and point.lr is None
    names = {name for t in study.trials for name in t.params}
    assert names == {"penalty", "lam", "rule", "l1_ratio"}
    assert set(study.trials[0].distributions["penalty"].choices) == set(DEFAULTS.penalties)  # type: ignore[attr-defined]


def test_space_with_optimizers_and_lr_round_trips() -> None:
    settings = parse_args([*FLAGS, "--lr-range", "1e-4", "1e-1"])
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=2))
    seen = set()
    for _ in range(150):
        trial = study.ask()
        point = suggest(trial, settings)
        assert params_of(point, settings) == trial.params
        assert 1e-4 <= (point.lr or 0) <= 1e-1
        config = point.config(settings, 0)
        assert (config.optimizer, config.lr) == (point.optimizer, point.lr)
        seen.add((point.optimizer, point.penalty, point.rule))
    # l2 under adam is searched coupled (Adam) and decoupled (AdamW); under SGD once
    assert {("adam", "l2", "coupled"), ("adam", "l2", "decoupled")} <= seen
    assert ("sgd", "l2", "decoupled") not in seen
    assert rules_for("l2", "sgd") == ("subgradient",)
    assert rules_for("l1", "adam", ("decoupled",)) == ("proximal",)


def test_dense_grid_is_a_lattice_of_lr_and_lambda_per_branch() -> None:
    settings = parse_args(["--optimizers", "sgd,adam", "--penalties", "none,l2",
                           "--lr-range", "1e-3", "1e-1", "--grid-points", "9"])  # fmt: skip
    points = grid_points(settings)
    # none: 3 lrs per optimizer; l2: sgd one rule, adam two; each a 3 × 3 lattice
    assert len(points) == 2 * 3 + (1 + 2) * 9
    adam = [p for p in points if (p.optimizer, p.penalty, p.rule) == ("adam", "l2", "decoupled")]
    assert len({p.lr for p in adam}) == 3 and len({p.lam for p in adam}) == 3
    for point in points:
        assert point_from_params(params_of(point, settings)) == point


def _study(tmp_path: Path) -> Path:
    argv = [*FLAGS, "--lr-range", "1e-3", "1e-1", "--penalties", "none,l2", "--n-trials", "8",
            "--grid-points", "9", "--seeds", "3", "--epochs", "5", "--batch", "8",
            "--replications", "4", "--out", str(tmp_path)]  # fmt: skip
    assert main(argv) == 0
    return tmp_path / "weight-decay"


def test_study_end_to_end_report_comes_from_the_files(tmp_path: Path) -> None:
    run_dir = _study(tmp_path)
    trials = pd.read_parquet(run_dir / "trials.parquet")
    assert set(trials["optimizer"]) <= {"sgd", "momentum", "adam"}
    assert trials["lr"].between(1e-3, 1e-1).all()
    grid = pd.read_parquet(run_dir / "grid.parquet")
    assert grid["lr"].nunique() == 3 and (grid["steps_per_epoch"] == 10).all()
    report = run_dir / "report"
    assert (report / "fig6a_lr_lambda_heatmap.png").is_file()
    assert (report / "fig6b_lambda_vs_lr.png").is_file()
    summary = (report / "summary.md").read_text(encoding="utf-8")
    # each decoupling claim is recomputed here from grid.parquet, by hand
    ok = grid[(grid["penalty"] == "l2")].groupby(["optimizer", "decay", "lr", "lam"])
    means = ok["val_loss"].mean()[ok["status"].agg(lambda s: (s == "ok").all())]
    for optimizer in ("momentum", "adam"):
        best = {d: means.loc[optimizer, d].idxmin() for d in DECAYS}
        per_seed = {
            d: grid[(grid["optimizer"] == optimizer) & (grid["decay"] == d)
                    & np.isclose(grid["lr"], best[d][0]) & np.isclose(grid["lam"], best[d][1])
                    & (grid["penalty"] == "l2")].set_index("data_seed")["val_loss"]
            for d in DECAYS
        }  # fmt: skip
        diff = float((per_seed["decoupled"] - per_seed["coupled"]).mean())
        line = next(x for x in summary.splitlines() if f"decay under {optimizer} (l2)" in x)
        assert f"decoupled − coupled = {diff:.3g}" in line.replace("−", "−")
    found = {(d.optimizer, d.penalty) for d in decoupling(grid, "l2")}
    assert found == {("momentum", "l2"), ("adam", "l2")}
    # the replication's coupling comparisons, and their sentences, from comparisons.parquet
    comparisons = pd.read_parquet(run_dir / "comparisons.parquet")
    replication = pd.read_parquet(run_dir / "replication.parquet")
    assert {"optimizer", "decay", "lr"} <= set(replication.columns)
    pairs = comparisons[comparisons["a"].str.endswith("-decoupled")]
    labels = set(pd.read_parquet(run_dir / "selected.parquet")["label"])
    both = {o for o in OPTIMIZERS if {f"best-{o}-coupled", f"best-{o}-decoupled"} <= labels}
    assert {a[len("best-") : -len("-decoupled")] for a in pairs["a"]} == both
    for _, row in pairs.iterrows():
        optimizer = row["a"][len("best-") : -len("-decoupled")]
        rep = replication[replication["regime"] == "budget"].set_index(["label", "data_seed"])
        diff = (rep.loc[row["a"], "test_loss"] - rep.loc[row["b"], "test_loss"]).mean()
        assert math.isclose(diff, row["mean_diff"], rel_tol=1e-9, abs_tol=1e-12)
        line = next(x for x in summary.splitlines() if f"Decoupling under {optimizer}, rep" in x)
        assert f"difference {diff:.3g}" in line


def test_old_run_directories_still_build_reports(tmp_path: Path) -> None:
    """A run written before optimizers existed: no optimizer, decay, lr or steps columns."""
    run_dir = _study(tmp_path)
    for name in ("trials", "grid", "selected", "curves"):
        path = run_dir / f"{name}.parquet"
        table = pd.read_parquet(path)
        table = table[table["optimizer"] == "sgd"] if name in ("trials", "grid") else table
        drop = [c for c in ("optimizer", "decay", "lr", "steps_per_epoch") if c in table]
        table.drop(columns=drop).reset_index(drop=True).to_parquet(path)
    index = build_report(run_dir)
    assert index.is_file()
    assert not (index.parent / "fig6a_lr_lambda_heatmap.png").exists()


def test_slope_and_timescale_of_a_known_grid() -> None:
    """λ* ∝ 1/η gives slope −1 and a constant τ; a separable optimum gives slope 0."""
    lrs, lams = np.geomspace(1e-3, 1e-1, 5), np.geomspace(1e-3, 1e3, 25)
    rows = []
    for decay, target in (("decoupled", lambda lr: 0.5 / lr), ("coupled", lambda lr: 3.0)):
        for lr in lrs:
            for lam in lams:
                loss = 1 + (math.log(lam) - math.log(target(lr))) ** 2
                rows += [{"optimizer": "adam", "decay": decay, "penalty": "l2", "lr": lr,
                          "lam": lam, "l1_ratio": math.nan, "data_seed": s, "status": "ok",
                          "val_loss": loss + 1e-3 * s} for s in range(3)]  # fmt: skip
    grid = pd.DataFrame(rows)
    opt = optima(lr_lambda_means(grid), steps_per_epoch=10.0)
    by = {s.decay: s for s in slopes(opt)}
    assert by["decoupled"].slope == pytest.approx(-1.0, abs=0.15)
    assert abs(by["coupled"].slope) < 0.15
    tau = opt[opt["decay"] == "decoupled"]["tau_epoch"].to_numpy()
    assert np.allclose(tau, tau[0], rtol=0.6)  # one grid cell of λ either way
