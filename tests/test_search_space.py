"""The study's pieces: search space, grid, statistics, regret and the kernel adapter."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
import optuna
import pandas as pd
import pytest
import torch
from optuna.trial import FixedTrial

from reports.stats import summarize
from studies.cli import DEFAULTS, Settings
from studies.console import Regret
from studies.crn import StudySeeds, build_problems
from studies.grid import best_grid_point, grid_points
from studies.space import POINT_COLUMNS, SearchPoint, enqueue_grid, make_sampler, suggest
from studies.train_batch import Evaluation, evaluate
from wdbench import Problem, TrainConfig, train
from wdbench.training import SPLITS

SMALL = dataclasses.replace(DEFAULTS, seeds=2, epochs=3, n_trials=8)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"penalty": "none"}, SearchPoint("none", "coupled", "scratch", 0.0)),
        ({"penalty": "l2", "lam": 0.5}, SearchPoint("l2", "coupled", "scratch", 0.5)),
        (
            {"penalty": "l1", "lam": 0.5, "rule": "subgradient"},
            SearchPoint("l1", "coupled", "scratch", 0.5),
        ),
        (
            {"penalty": "l1", "lam": 0.5, "rule": "proximal"},
            SearchPoint("l1", "proximal", "functional", 0.5),
        ),
        (
            {"penalty": "elastic", "lam": 2.0, "rule": "proximal", "l1_ratio": 0.3},
            SearchPoint("elastic", "proximal", "functional", 2.0, 0.3),
        ),
    ],
)
def test_suggest_maps_the_conditional_space(
    params: dict[str, object], expected: SearchPoint
) -> None:
    point = suggest(FixedTrial(params), DEFAULTS)
    assert point == expected
    config = point.config(DEFAULTS, train_seed=11)
    assert (config.penalty, config.loop, config.lam, config.seed) == (
        expected.penalty,
        expected.loop,
        expected.lam,
        11,
    )
    assert (config.lr, config.epochs, config.init_scale) == (0.003, 100, 1.0)


def test_tpe_samples_every_branch_with_its_own_parameters() -> None:
    settings = dataclasses.replace(SMALL, penalties=("none", "l1", "elastic"))
    study = optuna.create_study(sampler=make_sampler(settings))
    for _ in range(30):
        asked = study.ask()
        point = suggest(asked, settings)
        study.tell(asked, point.lam + (point.l1_ratio or 0))
    for frozen in study.trials:
        keys = set(frozen.params)
        expected = {
            "none": {"penalty"},
            "l1": {"penalty", "lam", "rule"},
            "elastic": {"penalty", "lam", "rule", "l1_ratio"},
        }[frozen.params["penalty"]]
        assert keys == expected
        if "lam" in keys:
            assert 1e-5 <= frozen.params["lam"] <= 1e2


def test_grid_enqueue_covers_each_branch_without_duplicates() -> None:
    settings = dataclasses.replace(SMALL, sampler="grid", n_trials=11)
    study = optuna.create_study(sampler=make_sampler(settings))
    assert enqueue_grid(study, settings) == 11  # none + 5 branches × 2 λ
    enqueue_grid(study, settings)  # again: nothing new
    waiting = [t.system_attrs["fixed_params"] for t in study.trials]
    assert len(waiting) == 11
    assert len({tuple(sorted(p.items())) for p in waiting}) == 11


def test_dense_grid_has_at_least_256_lambdas_per_penalty_and_rule() -> None:
    points = grid_points(DEFAULTS)
    branches: dict[tuple[str, str, float | None], int] = {}
    for p in points:
        branches[(p.penalty, p.loop, p.l1_ratio)] = (
            branches.get((p.penalty, p.loop, p.l1_ratio), 0) + 1
        )
    assert branches.pop(("none", "scratch", None)) == 1
    assert min(branches.values()) >= 256
    assert {(p, loop) for p, loop, _ in branches} == {
        ("l2", "scratch"),
        ("l1", "scratch"),
        ("l1", "proximal"),
        ("elastic", "scratch"),
        ("elastic", "proximal"),
    }
    assert len({r for p, _, r in branches if p == "elastic"}) >= 3


def test_best_grid_point_skips_points_that_diverged_on_any_seed() -> None:
    grid = pd.DataFrame(
        {
            "penalty": ["l2"] * 4,
            "loop": ["scratch"] * 4,
            "lam": [1.0, 1.0, 2.0, 2.0],
            "l1_ratio": [math.nan] * 4,
            "data_seed": [0, 1, 0, 1],
            "val_loss": [0.1, math.inf, 0.5, 0.7],
            "status": ["ok", "diverged", "ok", "ok"],
        }
    )
    best = best_grid_point(grid)
    assert best is not None and best["lam"] == 2.0 and best["val_mean"] == pytest.approx(0.6)
    assert best_grid_point(grid.assign(status="diverged")) is None


def test_regret_is_relative_to_the_grid_best() -> None:
    assert Regret(1.01, {"val_mean": 1.0}, 10).value == pytest.approx(0.01)
    assert Regret(0.99, {"val_mean": 1.0}, 10).value == pytest.approx(-0.01)
    assert math.isnan(Regret(1.0, None, 10).value)


def test_summarize_uses_the_student_t_interval() -> None:
    s = summarize([1.0, 2.0, 3.0])
    assert (s.mean, s.std) == (2.0, 1.0)
    assert s.ci95 == pytest.approx(4.302652729911275 / math.sqrt(3))
    one = summarize([5.0])
    assert one.mean == 5.0 and math.isnan(one.std) and math.isnan(one.ci95)


def test_seeds_are_derived_from_the_study_seed() -> None:
    a, b = StudySeeds.from_settings(SMALL), StudySeeds.from_settings(SMALL)
    c = StudySeeds.from_settings(dataclasses.replace(SMALL, seed=1))
    assert a == b and a != c
    assert a.data_seeds == (a.data_seeds[0], a.data_seeds[0] + 1)


def test_train_batch_matches_one_train_call_per_entry() -> None:
    settings = dataclasses.replace(SMALL, epochs=2)
    seeds = StudySeeds.from_settings(settings)
    problems = build_problems(settings, seeds)
    points = [
        SearchPoint("l2", "coupled", "scratch", 0.3),
        SearchPoint("l1", "proximal", "functional", 0.05),
        SearchPoint("elastic", "coupled", "scratch", 0.2, 0.4),
    ]
    configs = [
        dataclasses.replace(p.config(settings, seeds.train_seed), dtype="float64") for p in points
    ]
    device = torch.device("cpu")
    fast, slow = (f(problems, configs, device, curves=True) for f in (evaluate, _one_by_one))
    for name in ("train_loss", "val_loss", "test_loss", "w_norm", "zero_fraction"):
        np.testing.assert_allclose(getattr(fast, name), getattr(slow, name), rtol=1e-9)
    assert fast.curves is not None and slow.curves is not None
    for split in ("train", "val", "test"):
        np.testing.assert_allclose(fast.curves[split], slow.curves[split], rtol=1e-9)
    assert not fast.diverged.any()


def _one_by_one(
    problems: Sequence[Problem], configs: Sequence[TrainConfig], device: torch.device, curves: bool
) -> Evaluation:
    """The reference for ``evaluate``: ``wdbench.train`` on each problem × config in turn."""
    shape = (len(problems), len(configs))
    names = ("train_loss", "val_loss", "test_loss", "w_norm", "zero_fraction")
    tables = {name: np.full(shape, np.nan) for name in names}
    diverged = np.zeros(shape, dtype=bool)
    epochs = max(c.epochs for c in configs)
    history = {split: np.full((*shape, epochs), np.nan) for split in SPLITS}
    for s, problem in enumerate(problems):
        for k, config in enumerate(configs):
            run = train(problem, config, device=device, curves=curves)
            for name, table in tables.items():
                table[s, k] = getattr(run, name)
            diverged[s, k] = run.status != "ok"
            assert run.curves is not None
            for split in SPLITS:
                history[split][s, k, : len(run.curves[split])] = run.curves[split]
    return Evaluation(**tables, diverged=diverged, curves=history)


def test_settings_survive_pickling_for_worker_processes() -> None:
    import pickle

    assert pickle.loads(pickle.dumps(SMALL)) == SMALL
    assert isinstance(SMALL, Settings)


def test_a_points_row_has_the_point_columns_in_their_order() -> None:
    """Every exported table takes a configuration's columns from ``POINT_COLUMNS``; a row written
    by ``SearchPoint.row`` must be exactly those, in that order."""
    point = SearchPoint("elastic", "proximal", "functional", 0.5, l1_ratio=0.2)
    row = point.row()
    assert tuple(row) == POINT_COLUMNS
    assert (row["penalty"], row["lam"], row["l1_ratio"]) == ("elastic", 0.5, 0.2)
    assert math.isnan(row["lr"])
