"""The replication stage and the numbers a study prints, recomputed from its exported files."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import math
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
import torch
from scipy import stats as sps

import studies.ask_tell
from studies.cli import DEFAULTS
from studies.search import main
from studies.space import SearchPoint, with_train_defaults
from studies.train_batch import evaluate
from wdbench import Problem, TrainConfig, train

SMALL = ["--seeds", "2", "--epochs", "4", "--grid-points", "3", "--batch", "3", "--no-report"]
R = 4


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A small study with every penalty; its run directory and what it printed."""
    out = tmp_path_factory.mktemp("runs")
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(["--out", str(out), "--n-trials", "6", "--replications", str(R), *SMALL])
    assert code == 0
    return out / "weight-decay", buffer.getvalue()


def _read(run_dir: Path, name: str) -> pd.DataFrame:
    return pd.read_parquet(run_dir / f"{name}.parquet")


def test_replication_rows_use_fresh_draws_and_fresh_train_seeds(study: tuple[Path, str]) -> None:
    run_dir, _ = study
    rows = _read(run_dir, "replication")
    info = json.loads((run_dir / "run.json").read_text())
    assert {"label", "penalty", "rule", "impl", "loop", "lam", "l1_ratio", "data_seed"} <= set(
        rows.columns
    )
    assert {"train_seed", "val_loss", "test_loss", "w_norm", "zero_fraction"} <= set(rows.columns)
    budget = rows[rows["regime"] == "budget"]
    labels = set(_read(run_dir, "selected")["label"])
    assert set(budget["label"]) == labels  # every chosen configuration and the null model
    assert len(budget) == len(labels) * R
    data = set(rows["data_seed"])
    assert len(data) == R and not data & set(info["seeds"]["data_seeds"])
    trained = budget[budget["label"] != "null"]
    assert trained.groupby("data_seed")["train_seed"].nunique().eq(1).all()
    train_seeds = set(trained["train_seed"])
    assert len(train_seeds) == R and info["seeds"]["train_seed"] not in train_seeds
    assert info["replication"]["data_seeds"] == sorted(
        data, key=info["replication"]["data_seeds"].index
    )
    assert set(rows["regime"]) == {"budget", "converged"}


def test_a_replication_row_is_one_training_run(study: tuple[Path, str]) -> None:
    run_dir, _ = study
    rows = _read(run_dir, "replication")
    row = rows[(rows["regime"] == "budget") & (rows["label"] == "best")].iloc[1]
    ratio = 0.5 if math.isnan(row["l1_ratio"]) else float(row["l1_ratio"])
    subgradient = row["rule"] == "coupled" and row["penalty"] in ("l1", "elastic")
    config = TrainConfig(
        penalty=row["penalty"],
        lam=float(row["lam"]),
        l1_ratio=ratio,
        rule=row["rule"],
        impl=row["impl"],
        epochs=4,
        seed=int(row["train_seed"]),
        dtype="float64" if subgradient else "float32",
    )
    result = train(Problem.synthetic(seed=int(row["data_seed"])), config, curves=False)
    assert result.test_loss == pytest.approx(row["test_loss"], rel=1e-5)
    assert result.val_loss == pytest.approx(row["val_loss"], rel=1e-5)


def test_null_rows_predict_the_training_mean(study: tuple[Path, str]) -> None:
    run_dir, _ = study
    rows = _read(run_dir, "replication")
    row = rows[rows["label"] == "null"].iloc[0]
    problem = Problem.synthetic(seed=int(row["data_seed"])).to(dtype=torch.float64)
    mean = float(problem.y_train.mean())
    expected = float(((problem.y_test - mean) ** 2).mean() / 2)
    assert row["test_loss"] == pytest.approx(expected, rel=1e-12)
    assert row["zero_fraction"] == 1.0 and row["w_norm"] == 0.0


def _holm(p: np.ndarray) -> np.ndarray:
    order = np.argsort(p)
    out = np.empty_like(p)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p) - rank) * p[i]))
        out[i] = running
    return out


def test_comparisons_recomputed_from_replication(study: tuple[Path, str]) -> None:
    run_dir, printed = study
    rows = _read(run_dir, "replication")
    comparisons = _read(run_dir, "comparisons")
    assert len(comparisons) >= 4 and set(comparisons["split"]) == {"test"}
    p_values = []
    for _, c in comparisons.iterrows():
        part = rows[rows["regime"] == c["regime"]]
        a = part[part["label"] == c["a"]].set_index("data_seed")["test_loss"]
        b = part[part["label"] == c["b"]].set_index("data_seed")["test_loss"]
        a, b = a.sort_index(), b.loc[a.sort_index().index]
        assert c["n"] == R
        assert c["mean_diff"] == pytest.approx((a - b).mean(), rel=1e-12)
        p = sps.ttest_rel(a, b).pvalue
        assert c["p_value"] == pytest.approx(p, rel=1e-9)
        p_values.append(p)
        # the printed sentence carries the recomputed difference of this comparison
        d = f"d = test({c['a']}) − test({c['b']}) = {(a - b).mean():.3g}"
        assert d in printed, d
    assert comparisons["p_holm"].to_numpy() == pytest.approx(_holm(np.array(p_values)))
    separated = comparisons["p_holm"] < 0.05
    excludes_zero = (comparisons["ci_low"] > 0) | (comparisons["ci_high"] < 0)
    assert (separated == excludes_zero).all()
    assert f"Comparisons: {len(comparisons)} in one family" in printed


def test_best_trial_and_regret_recomputed(study: tuple[Path, str]) -> None:
    run_dir, printed = study
    info = json.loads((run_dir / "run.json").read_text())
    trials = _read(run_dir, "trials")
    best = trials.loc[trials["value"].idxmin()]
    settings = with_train_defaults(dataclasses.replace(DEFAULTS, epochs=4))
    point = SearchPoint(
        best["penalty"],
        best["rule"],
        best["impl"],
        float(best["lam"]),
        None if math.isnan(best["l1_ratio"]) else float(best["l1_ratio"]),
    )
    config = point.config(settings, info["seeds"]["train_seed"])
    values = [
        train(Problem.synthetic(seed=s), config, curves=False).val_loss
        for s in info["seeds"]["data_seeds"]
    ]
    assert float(np.mean(values)) == pytest.approx(best["value"], rel=1e-5)
    grid = _read(run_dir, "grid")
    keys = ["penalty", "loop", "lam", "l1_ratio"]
    means = grid[grid["status"] == "ok"].groupby(keys, dropna=False)["val_loss"].mean()
    regret = (best["value"] - means.min()) / means.min()
    assert info["summary"]["regret"] == pytest.approx(regret, rel=1e-9)
    assert f"{regret:+.3%}" in printed


def test_console_and_run_json_give_the_same_verdicts(study: tuple[Path, str]) -> None:
    run_dir, printed = study
    info = json.loads((run_dir / "run.json").read_text())
    lines = info["verdicts"]["lines"]
    assert lines and all(line in printed.splitlines() for line in lines)
    assert any(line.startswith("Null baseline") for line in lines)
    assert all("budget" in x or "convergence" in x for x in lines if x.startswith("At "))


def test_repeated_points_are_trained_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trained: list[int] = []
    real = studies.ask_tell.evaluate

    def counting(problems, configs, **kwargs):  # type: ignore[no-untyped-def]
        trained.append(len(configs))
        return real(problems, configs, **kwargs)

    monkeypatch.setattr(studies.ask_tell, "evaluate", counting)
    args = ["--out", str(tmp_path), "--n-trials", "5", "--penalties", "none", *SMALL]
    assert main([*args, "--replications", "2"]) == 0
    assert sum(trained) == 1  # no decay: one deterministic point under common random numbers
    study = optuna.load_study(
        study_name="weight-decay",
        storage=optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(tmp_path / "weight-decay" / "study.log"))
        ),
    )
    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(complete) == 5 and len({t.value for t in complete}) == 1
    assert sorted(t.user_attrs.get("cached_from", -1) for t in complete) == [-1, 0, 0, 0, 0]


@pytest.mark.parametrize("lam", [1.0, 5.0, 20.0])
def test_subgradient_l1_trials_reproduce_at_the_study_setting(lam: float) -> None:
    """At the default budget (100 epochs, lr 0.003, init scale 1) subgradient L1 is chaotic in
    float32; the study trains it in float64, where the batched kernel equals ``train``."""
    settings = with_train_defaults(DEFAULTS)
    point = SearchPoint.of("l1", "subgradient", lam)
    config = point.config(settings, train_seed=11)
    assert config.dtype == "float64" and config.epochs == 100
    problems = [Problem.synthetic(seed=s) for s in (3, 4)]
    others = [SearchPoint.of("l1", "subgradient", x).config(settings, 11) for x in (0.3, 2.0)]
    batch = evaluate(problems, [*others, config], device=torch.device("cpu"))
    for s, problem in enumerate(problems):
        single = train(problem, config, curves=False).val_loss
        assert batch.val_loss[s, -1] == pytest.approx(single, rel=1e-9)


def test_workers_reuse_each_others_trials(tmp_path: Path) -> None:
    """Every worker reads the shared storage: no decay trains at most once per worker."""
    args = ["--out", str(tmp_path), "--n-trials", "8", "--penalties", "none", *SMALL]
    assert main([*args, "--workers", "2", "--batch", "2", "--replications", "2"]) == 0
    study = optuna.load_study(
        study_name="weight-decay",
        storage=optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(tmp_path / "weight-decay" / "study.log"))
        ),
    )
    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(complete) >= 8 and len({t.value for t in complete}) == 1
    trained = [t for t in complete if "cached_from" not in t.user_attrs]
    assert 1 <= len(trained) <= 2
    numbers = {t.number for t in complete}
    assert all(t.user_attrs["cached_from"] in numbers for t in complete if t not in trained)
