"""Scaling: how training cost grows with the work, for the scratch loop and the population kernel.

Group ``scaling``: the lesson's problem with d ∈ {200, 500, 1000, 2000} at n_train = 50, and
n_train ∈ {20, 200, 2000} at d = 200 (batch 5, 100 epochs, so 20·n_train steps). One run is a
trajectory of ``steps = epochs·⌈n_train/5⌉`` SGD steps, each touching 5 rows of d features;
``work = steps·5·d`` is recorded beside the time so cost per unit of work can be compared.

Kinds: ``scratch`` (the seed-faithful loop, one configuration, CPU) and ``population``
(``train_population`` on K configurations of one homogeneous group: l2, λ log-spaced; K = 256 on
the CPU, 4096 on CUDA). The smoke setting runs the single point d = 200, n_train = 20.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from pytest_benchmark.fixture import BenchmarkFixture

import wdbench
from benchmarks._machine import device_info
from benchmarks._measure import Rounds, cuda_marks, is_smoke, measure, record

POINTS = ((200, 50), (500, 50), (1000, 50), (2000, 50), (200, 20), (200, 200), (200, 2000))
SMOKE_POINTS = ((200, 20),)
POPULATION_K = {"cpu": 256, "cuda": 4096}
PLAN = {"cpu": Rounds(rounds=3, warmup_rounds=0), "cuda": Rounds(rounds=3, warmup_rounds=1)}
EPOCHS = 100


def scaling_cases(smoke: bool) -> list[Any]:
    """(kind, device, d, n_train): scratch on the CPU; population on the CPU and CUDA."""
    points = SMOKE_POINTS if smoke else POINTS
    params = []
    for d, n in points:
        params.append(pytest.param("scratch", "cpu", d, n, id=f"scratch-cpu-d{d}-n{n}"))
        params.append(pytest.param("population", "cpu", d, n, id=f"population-cpu-d{d}-n{n}"))
        params.append(
            pytest.param(
                "population", "cuda", d, n, id=f"population-cuda-d{d}-n{n}", marks=cuda_marks()
            )
        )
    return params


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "scaling_kind" in metafunc.fixturenames:
        cases = scaling_cases(is_smoke(metafunc.config))
        metafunc.parametrize(("scaling_kind", "device_name", "d", "n_train"), cases)


def l2_configs(k: int) -> list[wdbench.TrainConfig]:
    """``k`` l2 configurations of the lesson's loop, λ log-spaced over [1e-3, 10]."""
    lams = torch.logspace(-3, 1, k, dtype=torch.float64).tolist() if k > 1 else [3.0]
    return [wdbench.TrainConfig(penalty="l2", lam=lam, epochs=EPOCHS, seed=0) for lam in lams]


def test_scaling(
    benchmark: BenchmarkFixture, scaling_kind: str, device_name: str, d: int, n_train: int
) -> None:
    """One scratch trajectory, or K population trajectories, at size (d, n_train)."""
    device = torch.device(device_name)
    k = POPULATION_K[device.type] if scaling_kind == "population" else 1
    configs = l2_configs(k)
    problem = wdbench.get_problem("synthetic").build(0, n_train=n_train, dim=d)
    problem = problem.to(device, torch.float32)
    benchmark.group = "scaling"
    ok: list[bool] = []
    if scaling_kind == "population":
        kernel = wdbench.train_population

        def run() -> None:
            result = kernel([problem], configs, device=device, curves=False, keep_weights=False)
            ok.append(not bool(result.diverged.any()))
    else:

        def run() -> None:
            result = wdbench.train(problem, configs[0], device=device, curves=False)
            ok.append(result.status == "ok")

    seconds = measure(benchmark, run, device, PLAN[device.type])
    assert ok and all(ok)
    steps = EPOCHS * -(-n_train // configs[0].batch_size)
    record(
        benchmark,
        {
            **device_info(device, configs[0].dtype),
            "kind": scaling_kind,
            "loop": "scratch",
            "penalty": "l2",
            "d": d,
            "n_train": n_train,
            "K": k,
            "steps": steps,
            "work": steps * configs[0].batch_size * d,
            "seconds": seconds,
            "seconds_per_trajectory": seconds / k,
            "trajectories_per_s": k / seconds,
        },
    )
