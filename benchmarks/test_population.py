"""Population: ``train_population`` on K configurations at once.

Group ``population``: K ∈ {1, 16, 256, 4096} on the CPU, plus 65,536 on CUDA (K ∈ {1, 16} in the
smoke setting), for six populations (``penalty`` in ``extra_info``): ``search-space`` (draws
from the study's space: every penalty, both rules), ``l2`` and ``l1`` (plain SGD rule, λ
log-spaced over the study's range), ``adam-l2``, ``adamw-l2`` and ``momentum-l2`` (Adam coupled,
AdamW, heavy-ball momentum at l2: on the CPU the compiled kernel, in the weight space); one
problem (the lesson's:
d = 200, n_train = 50, 100 epochs, batch 5), no curves, no kept weights, one shared train seed.
``variant`` is the kernel backend: ``auto`` (the fastest exact kernel per group: the compiled kernel
on the CPU, also for momentum and Adam; the fused Triton kernel for float32 CUDA groups, the
stateful torch kernel for momentum and Adam on CUDA) everywhere, and on CUDA also ``reference`` (the
plain batched torch form) for comparison. On CUDA, K = 262,144 and 1,048,576 (the GPU targets) also
run the torch kernels with CUDA-graph replay (``torch``) and eagerly (``torch-eager``), for the
plain-SGD populations. On the CPU, ``torch`` for ``l1`` is plain SGD through the torch full-space
kernel (the space of the stateful torch kernel); ``auto`` for ``l1`` is plain SGD through the
compiled kernel in the weight space, the same space as its momentum and Adam.
``trajectories_per_s`` = K·S / median seconds (S = 1 problem), and ``speedup_vs_scratch`` = that
rate × the seconds of one seed-faithful scratch run on the CPU, timed in the same session
(``scratch_baseline``).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import pytest
import torch
from pytest_benchmark.fixture import BenchmarkFixture

import wdbench
from benchmarks._machine import device_info
from benchmarks._measure import Rounds, cuda_marks, is_smoke, measure, record
from benchmarks.conftest import ScratchBaseline
from studies.cli import DEFAULTS
from studies.space import sample_configs
from wdbench.population._graph import cuda_graphs

CPU_K = (1, 16, 256, 4096)
CUDA_K = (*CPU_K, 65_536)
SMOKE_K = (1, 16)
CUDA_BACKENDS = ("auto", "reference")
#: The GPU targets' sizes (``benchmarks/run_cuda.sh``): the fused Triton kernel (``auto``), the
#: torch kernels replayed as CUDA graphs (``torch``) and run eagerly (``torch-eager``), and the
#: plain batched form (``reference``, at the smaller size only).
CUDA_LARGE_K = (262_144, 1_048_576)
CUDA_LARGE = {262_144: ("auto", "torch", "torch-eager", "reference"),
              1_048_576: ("auto", "torch", "torch-eager")}  # fmt: skip
S = 1
PLAN = {"cpu": Rounds(rounds=3, warmup_rounds=1), "cuda": Rounds(rounds=5, warmup_rounds=2)}
LARGE_PLAN = Rounds(rounds=3, warmup_rounds=1)


SGD_MIXES = ("search-space", "l2", "l1")
MIXES = (*SGD_MIXES, "adam-l2", "adamw-l2", "momentum-l2")
#: Optimizer mixes → (optimizer, rule), at l2.
OPTIMIZER_MIXES: dict[str, tuple[str, str]] = {
    "adam-l2": ("adam", "coupled"),
    "adamw-l2": ("adam", "decoupled"),
    "momentum-l2": ("momentum", "coupled"),
}
#: Extra CPU (backend, mix) cases: plain SGD in the torch full-space kernel.
CPU_EXTRA = (("torch", "l1"),)


def population_cases(smoke: bool) -> list[Any]:
    """(device, K, backend, mix): the CPU sizes, then the CUDA sizes (skipped without CUDA)."""
    cpu, cuda = (SMOKE_K, SMOKE_K) if smoke else (CPU_K, CUDA_K)
    params = [
        pytest.param("cpu", k, "auto", mix, id=f"cpu-{mix}-K{k}") for mix in MIXES for k in cpu
    ]
    params += [
        pytest.param("cpu", k, backend, mix, id=f"cpu-{backend}-{mix}-K{k}")
        for backend, mix in CPU_EXTRA
        for k in cpu
    ]
    params += [
        pytest.param("cuda", k, backend, mix, id=f"cuda-{backend}-{mix}-K{k}", marks=cuda_marks())
        for backend in CUDA_BACKENDS
        for mix in MIXES
        for k in cuda
    ]
    if not smoke:
        params += [
            pytest.param(
                "cuda", k, backend, mix, id=f"cuda-{backend}-{mix}-K{k}", marks=cuda_marks()
            )
            for k in CUDA_LARGE_K
            for backend in CUDA_LARGE[k]
            for mix in SGD_MIXES
        ]
    return params


@functools.cache
def _space_configs(k: int) -> list[wdbench.TrainConfig]:
    """``k`` draws from the study's search space (``studies.space``), drawn once per session."""
    return sample_configs(k)


def mix_configs(mix: str, k: int) -> list[wdbench.TrainConfig]:
    """``search-space`` draws, or one penalty (and optimizer) with λ log-spaced over the study's
    range."""
    if mix == "search-space":
        return _space_configs(k)
    low, high = (math.log10(v) for v in DEFAULTS.lam_range)
    lams = torch.logspace(low, high, k, dtype=torch.float64).tolist()
    if mix in OPTIMIZER_MIXES:
        optimizer, rule = OPTIMIZER_MIXES[mix]
        return [
            wdbench.TrainConfig(
                penalty="l2", lam=lam, impl="functional", optimizer=optimizer, rule=rule
            )
            for lam in lams
        ]
    return [wdbench.TrainConfig(penalty=mix, lam=lam, loop="scratch") for lam in lams]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "population_k" in metafunc.fixturenames:
        cases = population_cases(is_smoke(metafunc.config))
        metafunc.parametrize(("device_name", "population_k", "backend", "mix"), cases)


def test_population(
    benchmark: BenchmarkFixture,
    scratch_baseline: ScratchBaseline,
    device_name: str,
    population_k: int,
    backend: str,
    mix: str,
) -> None:
    """K trajectories of 1000 SGD steps each, in one ``train_population`` call."""
    kernel = wdbench.train_population
    device = torch.device(device_name)
    configs = mix_configs(mix, population_k)
    lesson = wdbench.get_problem("synthetic")
    problems = [lesson.build(s).to(device, torch.float32) for s in range(S)]
    benchmark.group = "population"
    results: list[Any] = []

    eager = backend == "torch-eager"

    def run() -> None:
        with cuda_graphs(not eager):
            results.append(
                kernel(
                    problems,
                    configs,
                    device=device,
                    curves=False,
                    keep_weights=False,
                    backend="torch" if eager else backend,
                )
            )

    plan = LARGE_PLAN if population_k in CUDA_LARGE else PLAN[device.type]
    seconds = measure(benchmark, run, device, plan)
    assert all(tuple(r.shape) == (S, population_k) for r in results)
    if mix not in OPTIMIZER_MIXES:  # Adam at λ = 100 may diverge: it is still timed
        assert not any(bool(r.diverged.any()) for r in results)
    rate = population_k * S / seconds
    record(
        benchmark,
        {
            **device_info(device, configs[0].dtype),
            **scratch_baseline.info(),
            "K": population_k,
            "S": S,
            "d": problems[0].dim,
            "n_train": problems[0].n_train,
            "epochs": configs[0].epochs,
            "variant": backend,
            "configs": mix,
            "penalty": mix,
            "optimizer": configs[0].optimizer,
            "seconds": seconds,
            "trajectories_per_s": rate,
            "speedup_vs_scratch": rate * scratch_baseline.seconds,
        },
    )
