"""Networks: one MLP training step and one run on scikit-learn's digits (the ``digits`` problem:
64 features, 10 classes, n_train = 200), one hidden layer of 64 ReLU units, batch 5, plain SGD
(η = 0.05) with L2 on the weights (λ = 10⁻³), float32, CPU.

Groups ``networks-run`` (``RUN_EPOCHS`` epochs = 400 steps, then the three splits' losses and
accuracies; set-up included) and ``networks-step`` (one step on five rows, everything built
beforehand; for ``wdbench-train``, a whole call on a one-batch problem: set-up, one step and
the evaluation of 15 rows).
Variants (``variant`` in ``extra_info``):

* ``seed-faithful`` — the lesson's style: autograd on Σ_batch[CE] + λ/2‖W‖², then
  p ← p − η·p.grad/B by hand;
* ``torch-nn-<impl>`` — ``nn.Sequential(Linear, ReLU, Linear)`` + ``F.cross_entropy`` +
  ``torch.optim.SGD([{weights, weight_decay=λ}, {biases}])`` in its for-loop, foreach and
  fused forms;
* ``wdbench-train`` — ``wdbench.train`` (autograd + ``Rule.update_``);
* ``population-native`` / ``population-stacked`` / ``population-vmap`` —
  ``wdbench.train_population`` of K = 1024 networks (λ log-spaced, one train seed) through the
  compiled kernel (``backend="auto"``), the stacked torch kernel (``"torch"``) and its
  ``torch.func.vmap`` form (``"reference"``), on the thread pool of ``wdbench.threads``; a step
  is ``NativeTrainer.step`` / ``BlockTrainer.step`` of every block of the call on that pool.

``seconds_per_network`` is the median seconds of a call divided by K (1 for single runs), and
``ratio_vs_torch_nn`` = the seconds per network of the single ``torch-nn-for-loop`` run (torch's
default SGD on the CPU; timed once per session, ``torch_nn_baseline``) divided by the variant's.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import torch
from pytest_benchmark.fixture import BenchmarkFixture
from torch import nn
from torch.nn import functional as F

import wdbench
from benchmarks._machine import device_info
from benchmarks._measure import Rounds, is_smoke, measure, optim_impl_missing, record
from wdbench.losses import get_loss
from wdbench.networks import Architecture, init_network
from wdbench.networks._batched import BlockTrainer
from wdbench.networks._native import (
    NativeTrainer,
    network_kernel_available,
    network_kernel_unavailable_reason,
)
from wdbench.networks._population import plan_blocks
from wdbench.order import batch_order, batches
from wdbench.population import config_columns
from wdbench.threads import one_op_thread, run_parallel

RUN_EPOCHS = 10
K = 1024
SMOKE_K = 4
CONFIG = wdbench.TrainConfig(
    model="mlp", hidden=64, layers=1, penalty="l2", lam=1e-3, lr=0.05, impl="functional", seed=0
)
SINGLE = (
    "seed-faithful",
    "torch-nn-for-loop",
    "torch-nn-foreach",
    "torch-nn-fused",
    "wdbench-train",
)
POPULATION = {
    "population-native": "auto",
    "population-stacked": "torch",
    "population-vmap": "reference",
}
OPTIM_IMPLS = {
    "for-loop": {"foreach": False},
    "foreach": {"foreach": True},
    "fused": {"fused": True},
}
PLAN = {
    "networks-run": Rounds(rounds=3, warmup_rounds=1),
    "networks-step": Rounds(rounds=20, warmup_rounds=2),
}
POPULATION_PLAN = {
    "networks-run": Rounds(rounds=2, warmup_rounds=1),
    "networks-step": Rounds(rounds=5, warmup_rounds=1),
}


def digits(one_batch: bool) -> wdbench.Problem:
    """The digits problem in float32; ``one_batch``: every split cut to one batch of rows."""
    problem = wdbench.get_problem("digits").build(0).to(dtype=torch.float32)
    if not one_batch:
        return problem
    cut = {
        f"{kind}_{split}": getattr(problem, f"{kind}_{split}")[: CONFIG.batch_size]
        for kind in ("X", "y")
        for split in ("train", "val", "test")
    }
    return dataclasses.replace(problem, **cut)


class TorchNet:
    """``nn.Sequential`` started from ``init_network`` of the train seed, and its step."""

    def __init__(self, problem: wdbench.Problem, config: wdbench.TrainConfig, style: str) -> None:
        arch = Architecture.of(config, problem.dim, problem.n_classes)
        linears = []
        for w, b in init_network(arch, config.seed, config.init_scale):
            linear = nn.Linear(w.shape[1], w.shape[0], device="meta").to_empty(device="cpu")
            with torch.no_grad():
                linear.weight.copy_(w)
                linear.bias.copy_(b)
            linears.append(linear)
        self.net = nn.Sequential(linears[0], nn.ReLU(), *linears[1:])
        self.weights = [m.weight for m in linears]
        self.params = [p for m in linears for p in (m.weight, m.bias)]
        self.style, self.config, self.problem = style, config, problem
        self.opt: torch.optim.Optimizer | None = None
        if style != "seed-faithful":
            groups = [
                {"params": self.weights, "weight_decay": config.lam},
                {"params": [m.bias for m in linears], "weight_decay": 0.0},
            ]
            self.opt = torch.optim.SGD(
                groups, lr=config.lr, **OPTIM_IMPLS[style[len("torch-nn-") :]]
            )

    def step(self, idx: torch.Tensor) -> None:
        X, y = self.problem.X_train[idx], self.problem.y_train[idx]
        if self.opt is not None:
            loss = F.cross_entropy(self.net(X), y)
            self.opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            self.opt.step()
            return
        total = F.cross_entropy(self.net(X), y, reduction="sum")
        total = total + self.config.lam / 2 * sum((w * w).sum() for w in self.weights)
        total.backward()  # type: ignore[no-untyped-call]
        with torch.no_grad():
            for p in self.params:
                assert p.grad is not None
                p -= self.config.lr * p.grad / len(y)
                p.grad.zero_()

    def run(self) -> dict[str, tuple[float, float]]:
        """Every epoch of the shared batch order, then each split's loss and accuracy."""
        order = batch_order(self.problem.n_train, self.config.epochs, self.config.seed)
        for row in order:
            for idx in batches(row, self.config.batch_size):
                self.step(idx)
        with torch.no_grad():
            out = {}
            for split in ("train", "val", "test"):
                X, y = self.problem.split(split)
                z = self.net(X)
                out[split] = (
                    float(F.cross_entropy(z, y)),
                    float((z.argmax(-1) == y).float().mean()),
                )
        return out


@dataclass(frozen=True)
class TorchNNBaseline:
    """Seconds of one ``torch-nn-for-loop`` run (``RUN_EPOCHS`` epochs) and of one step."""

    run_s: float
    step_s: float


@pytest.fixture(scope="session")
def torch_nn_baseline(smoke: bool) -> TorchNNBaseline:
    """Median of 3 runs and of 200 steps (one warm-up each; a single run in the smoke setting)."""
    config = dataclasses.replace(CONFIG, epochs=1 if smoke else RUN_EPOCHS)
    problem = digits(one_batch=False)
    runs = 1 if smoke else 3
    times = []
    for _ in range(runs + (0 if smoke else 1)):
        net = TorchNet(problem, config, "torch-nn-for-loop")
        start = time.perf_counter()
        net.run()
        times.append(time.perf_counter() - start)
    net = TorchNet(problem, config, "torch-nn-for-loop")
    idx = torch.arange(config.batch_size)
    steps = []
    for _ in range(10 if smoke else 200):
        start = time.perf_counter()
        net.step(idx)
        steps.append(time.perf_counter() - start)
    return TorchNNBaseline(statistics.median(times[-runs:]), statistics.median(steps))


def _info(variant: str, k: int, epochs: int, seconds: float, baseline: float) -> dict[str, Any]:
    per_network = seconds / k
    return {
        **device_info(torch.device("cpu"), CONFIG.dtype),
        "variant": variant,
        "K": k,
        "epochs": epochs,
        "n_train": 200,
        "d": 64,
        "hidden": CONFIG.hidden,
        "batch_size": CONFIG.batch_size,
        "optimizer": CONFIG.optimizer,
        "penalty": CONFIG.penalty,
        "seconds": seconds,
        "seconds_per_network": per_network,
        "torch_nn_s": baseline,
        "ratio_vs_torch_nn": baseline / per_network,
    }


def _population(k: int, epochs: int) -> list[wdbench.TrainConfig]:
    lams = torch.logspace(-5, -1, k, dtype=torch.float64).tolist()
    return [dataclasses.replace(CONFIG, lam=lam, epochs=epochs) for lam in lams]


def _target(variant: str, group: str, smoke: bool) -> tuple[Callable[[], object], int, Rounds]:
    """The timed call of ``variant`` in ``group``, its K and its round plan."""
    step = group == "networks-step"
    epochs = 1 if step or smoke else RUN_EPOCHS
    problem = digits(one_batch=step)
    config = dataclasses.replace(CONFIG, epochs=epochs)
    if variant in POPULATION:
        k = SMOKE_K if smoke else K
        configs, backend = _population(k, epochs), POPULATION[variant]
        if step:
            return _population_step(problem, configs, backend), k, POPULATION_PLAN[group]
        return (
            lambda: wdbench.train_population(problem, configs, keep_weights=False, backend=backend),
            k,
            POPULATION_PLAN[group],
        )
    if variant == "wdbench-train":
        return lambda: wdbench.train(problem, config, curves=False), 1, PLAN[group]
    if step:
        net = TorchNet(problem, config, variant)
        idx = torch.arange(CONFIG.batch_size)
        return lambda: net.step(idx), 1, PLAN[group]
    return lambda: TorchNet(problem, config, variant).run(), 1, PLAN[group]


def _population_step(
    problem: wdbench.Problem, configs: list[wdbench.TrainConfig], backend: str
) -> Callable[[], object]:
    """One step of every block ``train_population`` would train, on its thread pool."""
    loss = get_loss(problem.task)
    arch = Architecture.of(configs[0], problem.dim, loss.outputs(problem.n_classes))
    columns = config_columns(tuple(configs))
    planned = plan_blocks((problem,), columns, arch, loss, torch.device("cpu"))
    blocks = [block for _, group in planned for _, block in group]
    trainers: list[BlockTrainer | NativeTrainer]
    if backend == "auto":
        trainers = [NativeTrainer(block) for block in blocks]
    else:
        gradients = "vmap" if backend == "reference" else "stacked"
        trainers = [BlockTrainer(block, gradients) for block in blocks]
    idx = torch.arange(CONFIG.batch_size)

    def step() -> None:
        with one_op_thread():
            run_parallel([functools.partial(t.step, idx) for t in trainers])

    return step


VARIANTS = (*SINGLE, *POPULATION)


@pytest.mark.parametrize("group", ["networks-step", "networks-run"])
@pytest.mark.parametrize("variant", VARIANTS)
def test_networks(
    benchmark: BenchmarkFixture,
    torch_nn_baseline: TorchNNBaseline,
    request: pytest.FixtureRequest,
    variant: str,
    group: str,
) -> None:
    if variant == "population-native" and not network_kernel_available():
        pytest.skip(f"the networks kernel is unavailable: {network_kernel_unavailable_reason()}")
    if variant.startswith("torch-nn-"):
        reason = optim_impl_missing(variant[len("torch-nn-") :], torch.device("cpu"))
        if reason is not None:
            pytest.skip(reason)
    smoke = is_smoke(request.config)
    benchmark.group = group
    target, k, plan = _target(variant, group, smoke)
    seconds = measure(benchmark, target, torch.device("cpu"), plan)
    step = group == "networks-step"
    baseline = torch_nn_baseline.step_s if step else torch_nn_baseline.run_s
    epochs = 1 if step or smoke else RUN_EPOCHS
    info = _info(variant, k, epochs, seconds, baseline)
    assert math.isfinite(info["ratio_vs_torch_nn"])
    record(benchmark, info)
