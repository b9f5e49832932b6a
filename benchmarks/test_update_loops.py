"""Update loops: one full training run and one SGD step of every single-configuration path.

Groups ``update-loops-run`` (``wdbench.train`` on the lesson's problem: d = 200, n_train = 50,
batch 5, 100 epochs = 1000 steps, no per-epoch curves) and ``update-loops-step`` (one
``run_epoch`` of a loop built on a one-batch problem, n_train = batch size: exactly one step).

Variants: the seed-faithful ``scratch`` loop (DataLoader + autograd + in-place SGD) and ``concise``
loop, ``optim`` with torch's for-loop, foreach and fused SGD (skipped where torch lacks one on the
device), ``decoupled`` and ``proximal``; each over the penalties none, l2, l1 it can apply. Adam
at the lesson's l2 (λ = 3): ``torch.optim.Adam`` (coupled) and ``AdamW`` (decoupled) in their
for-loop, foreach and fused forms against our Adam loops (``adam-scratch``: autograd + the
``wdbench.optimizers`` step; ``adam-functional`` / ``adamw-functional``: the analytic gradient and
``Rule.update_``); ``optimizer`` in ``extra_info``.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from pytest_benchmark.fixture import BenchmarkFixture

import wdbench
from benchmarks._machine import device_info
from benchmarks._measure import Rounds, device_params, measure, optim_impl_missing, record
from benchmarks.conftest import ScratchBaseline
from wdbench.config import loop_name
from wdbench.loops import make_loop
from wdbench.order import batch_order, init_params

#: (variant, loop, optim_impl): the variant names used in results and figures.
VARIANTS = (
    ("scratch", "scratch", "default"),
    ("concise", "concise", "default"),
    ("optim-for-loop", "optim", "for-loop"),
    ("optim-foreach", "optim", "foreach"),
    ("optim-fused", "optim", "fused"),
    ("decoupled", "decoupled", "default"),
    ("proximal", "proximal", "default"),
)
#: (variant, TrainConfig fields, optim_impl): Adam and AdamW, ours and torch's, at the lesson's l2.
ADAM_VARIANTS: tuple[tuple[str, dict[str, str], str], ...] = (
    ("adam-scratch", {"rule": "coupled", "impl": "scratch"}, "default"),
    ("adam-functional", {"rule": "coupled", "impl": "functional"}, "default"),
    ("adamw-functional", {"rule": "decoupled", "impl": "functional"}, "default"),
    *(
        (f"{name}-optim-{impl}", {"rule": rule, "impl": "optim"}, impl)
        for name, rule in (("adam", "coupled"), ("adamw", "decoupled"))
        for impl in ("for-loop", "foreach", "fused")
    ),
)
PENALTIES = ("none", "l2", "l1")
LAM = {"none": 0.0, "l2": 3.0, "l1": 3.0}  # the lesson's λ = 3
RUN_PLAN = {"cpu": Rounds(rounds=5, warmup_rounds=1), "cuda": Rounds(rounds=5, warmup_rounds=2)}
STEP_PLAN = {
    "cpu": Rounds(rounds=30, warmup_rounds=1, iterations=20),
    "cuda": Rounds(rounds=30, warmup_rounds=2, iterations=20),
}


def _cases() -> list[Any]:
    """Every (variant, penalty) pair the loop accepts, from the ``wdbench.LOOPS`` registry, and
    the Adam variants at l2; ``loop`` is a legacy loop name or a dict of TrainConfig fields."""
    sgd = [
        pytest.param(variant, loop, impl, penalty, id=f"{variant}-{penalty}")
        for variant, loop, impl in VARIANTS
        for penalty in PENALTIES
        if penalty in wdbench.LOOPS[loop]
    ]
    adam = [
        pytest.param(variant, {**fields, "optimizer": "adam"}, impl, "l2", id=f"{variant}-l2")
        for variant, fields, impl in ADAM_VARIANTS
    ]
    return sgd + adam


def _config(
    loop: str | dict[str, str], impl: str, penalty: str, epochs: int
) -> wdbench.TrainConfig:
    fields: dict[str, Any] = {"loop": loop} if isinstance(loop, str) else dict(loop)
    return wdbench.TrainConfig(
        optim_impl=impl, penalty=penalty, lam=LAM[penalty], epochs=epochs, seed=0, **fields
    )


def _device(name: str, impl: str, config: wdbench.TrainConfig) -> torch.device:
    device = torch.device(name)
    optimizer = (
        "SGD" if config.optimizer != "adam" else "AdamW" if config.rule == "decoupled" else "Adam"
    )
    reason = optim_impl_missing(impl, device, optimizer)
    if reason is not None:
        pytest.skip(reason)
    return device


def _info(
    config: wdbench.TrainConfig, variant: str, device: torch.device, n: int
) -> dict[str, Any]:
    return {
        **device_info(device, config.dtype),
        "loop": loop_name(config.rule, config.impl),
        "optimizer": config.optimizer,
        "penalty": config.penalty,
        "variant": variant,
        "optim_impl": config.optim_impl,
        "lam": config.lam,
        "d": 200,
        "n_train": n,
        "batch_size": config.batch_size,
        "epochs": config.epochs,
    }


@pytest.mark.parametrize("device_name", device_params())
@pytest.mark.parametrize(("variant", "loop", "impl", "penalty"), _cases())
def test_run(
    benchmark: BenchmarkFixture,
    scratch_baseline: ScratchBaseline,
    variant: str,
    loop: str | dict[str, str],
    impl: str,
    penalty: str,
    device_name: str,
) -> None:
    """One 100-epoch training run (1000 steps), final losses included."""
    config = _config(loop, impl, penalty, epochs=100)
    device = _device(device_name, impl, config)
    problem = wdbench.Problem.synthetic(seed=0).to(device, config.torch_dtype)
    benchmark.group = "update-loops-run"
    results: list[wdbench.TrainResult] = []

    def run() -> None:
        results.append(wdbench.train(problem, config, device=device, curves=False))

    seconds = measure(benchmark, run, device, RUN_PLAN[device.type])
    assert all(r.status == "ok" and r.epochs_run == config.epochs for r in results)
    record(
        benchmark,
        {
            **_info(config, variant, device, problem.n_train),
            **scratch_baseline.info(),
            "steps": config.epochs * -(-problem.n_train // config.batch_size),
            "seconds": seconds,
            "speedup_vs_scratch": scratch_baseline.seconds / seconds,
        },
    )


@pytest.mark.parametrize("device_name", device_params())
@pytest.mark.parametrize(("variant", "loop", "impl", "penalty"), _cases())
def test_step(
    benchmark: BenchmarkFixture,
    variant: str,
    loop: str | dict[str, str],
    impl: str,
    penalty: str,
    device_name: str,
) -> None:
    """One step: ``run_epoch`` over a one-batch order (n_train = batch size = 5)."""
    config = _config(loop, impl, penalty, epochs=1)
    device = _device(device_name, impl, config)
    problem = wdbench.Problem.synthetic(n_train=config.batch_size, seed=0)
    problem = problem.to(device, config.torch_dtype)
    w0, b_random = init_params(problem.dim, config.init_scale, config.seed)
    b0 = b_random if loop == "concise" else torch.zeros(1, dtype=torch.float64)
    order = batch_order(problem.n_train, 1, config.seed)
    w0, b0 = (t.to(device, problem.dtype) for t in (w0, b0))
    state = make_loop(problem, config, w0, b0, order)
    benchmark.group = "update-loops-step"
    seconds = measure(benchmark, lambda: state.run_epoch(0), device, STEP_PLAN[device.type])
    w, b = state.params()
    assert bool(torch.isfinite(w).all() and torch.isfinite(b).all())
    record(
        benchmark,
        {
            **_info(config, variant, device, problem.n_train),
            "steps": 1,
            "seconds": seconds,
        },
    )
