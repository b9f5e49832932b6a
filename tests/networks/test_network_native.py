"""The compiled networks kernel (``wdbench.networks._native``): every block it trains ≡
``train`` of each configuration (float64 1e-10) on the paths it covers — sgd, momentum (heavy
ball and Nesterov), Adam × no penalty, L2 coupled / decoupled / proximal — with full and partial
batches, batches past its unrolled sizes, several lane groups and problems; and ``auto`` picks
it exactly where it applies."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
import torch
from native_build import HAS_COMPILER, IN_CI, TURNED_OFF
from network_problems import PROBLEMS, classification, mlp, regression
from test_network_population import TOL, relative

from wdbench import Problem, TrainConfig, train
from wdbench.losses import get_loss
from wdbench.networks import Architecture
from wdbench.networks._batched import Block
from wdbench.networks._native import (
    native_block_applies,
    network_kernel_available,
    network_kernel_unavailable_reason,
    train_block_native,
)
from wdbench.networks._population import plan_blocks
from wdbench.penalties import PENALTIES
from wdbench.population import config_columns
from wdbench.rules import RULES

needs_kernel = pytest.mark.skipif(
    not network_kernel_available() and not IN_CI, reason="the networks kernel is not built here"
)
OPTIMIZERS: dict[str, dict[str, Any]] = {
    "sgd": {"optimizer": "sgd"},
    "momentum": {"optimizer": "momentum"},
    "nesterov": {"optimizer": "momentum", "nesterov": True},
    "adam": {"optimizer": "adam"},
}
COVERED = [("none", "coupled"), *(("l2", r) for r in ("coupled", "decoupled", "proximal"))]
#: Every (rule, penalty) pair a rule applies.
PAIRS = [(r, p) for r in RULES for p in PENALTIES if p in RULES[r].penalties]


@pytest.mark.skipif((not HAS_COMPILER and not IN_CI) or TURNED_OFF, reason="no C++ compiler")
def test_builds_where_a_compiler_is() -> None:
    assert network_kernel_available(), network_kernel_unavailable_reason()


def blocks(
    problems: list[Problem], cfgs: list[TrainConfig], chunk_size: int | None = None
) -> list[tuple[np.ndarray, Block]]:
    """Every block ``train_population`` would train for ``cfgs`` on ``problems``."""
    loss = get_loss(problems[0].task)
    arch = Architecture.of(cfgs[0], problems[0].dim, loss.outputs(problems[0].n_classes))
    planned = plan_blocks(
        tuple(problems), config_columns(tuple(cfgs)), arch, loss, torch.device("cpu"), chunk_size
    )
    return [pair for _, group in planned for pair in group]


def check_native(problems: list[Problem], cfgs: list[TrainConfig], chunk_size: int | None = None,
                 tol: float = TOL) -> None:  # fmt: skip
    """Each block through the kernel ≡ ``train`` of each of its configurations on each problem."""
    for index, block in blocks(problems, cfgs, chunk_size):
        assert native_block_applies(block)
        out = train_block_native(block)
        for s, problem in enumerate(problems):
            for j, k in enumerate(index.tolist()):
                single = train(problem, cfgs[k], curves=False)
                assert single.biases is not None
                assert relative(out.weights[s, j].double(), single.w) <= tol
                assert relative(out.biases[s, j].double(), single.biases) <= tol
                for split in ("train", "val", "test"):
                    want = getattr(single, f"{split}_loss")
                    assert abs(float(out.losses[split][s, j]) - want) <= tol * want
                    if out.accuracies is not None:
                        assert float(out.accuracies[split][s, j]) == getattr(single, f"{split}_acc")
                assert int(out.bad_epoch[s, j]) == 0


def family(optimizer: str, penalty: str, rule: str, **fields: Any) -> list[TrainConfig]:
    base = mlp(**OPTIMIZERS[optimizer], penalty=penalty, rule=rule, **fields)
    lr = 0.01 if optimizer == "adam" else 0.05
    return [
        dataclasses.replace(base, lam=lam, lr=lr * scale)
        for lam, scale in ((0.0, 1.0), (0.3, 0.5), (0.05, 2.0))
    ]


@needs_kernel
@pytest.mark.parametrize(("penalty", "rule"), COVERED)
@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
@pytest.mark.parametrize("task", ["classification", "regression"])
def test_kernel_equals_train(optimizer: str, penalty: str, rule: str, task: str) -> None:
    """n_train = 23, B = 5: four full batches and a partial one of 3 each epoch."""
    check_native([PROBLEMS[task]()], family(optimizer, penalty, rule))


@needs_kernel
@pytest.mark.parametrize("batch_size", [1, 10, 23])
def test_batches_of_every_size(batch_size: int) -> None:
    """The unrolled size 1, the generic path (10: two full batches and one of 3) and one batch
    of the whole train split."""
    check_native([classification()], family("adam", "l2", "decoupled", batch_size=batch_size))


@needs_kernel
def test_lane_groups_and_problems() -> None:
    """Eleven networks (two lane groups and a partial one in float64, lanes past K repeated), a
    block of 6 and one of 5, on two problems with other rows."""
    cfgs = [
        dataclasses.replace(
            mlp(penalty="l2", optimizer="momentum"), lam=0.02 * i, lr=0.01 * (i + 1)
        )
        for i in range(11)
    ]
    flipped = dataclasses.replace(
        regression(), X_train=regression().X_train.flip(0), y_train=regression().y_train.flip(0)
    )
    check_native([regression(), flipped], cfgs, chunk_size=6)


@needs_kernel
@pytest.mark.parametrize("model", ["linear", "one-layer"])
def test_softmax_regression_and_one_hidden_layer(model: str) -> None:
    """No hidden layer (``model="linear"`` on classification: the output layer alone) and the
    benchmark's shape, one hidden layer."""
    fields: dict[str, Any] = {"model": "linear"} if model == "linear" else {"layers": 1}
    check_native([classification()], family("momentum", "l2", "decoupled", **fields))


@needs_kernel
def test_float32_kernel_equals_float32_train() -> None:
    problem = classification().to(dtype=torch.float32)
    cfgs = [dataclasses.replace(c, dtype="float32") for c in family("sgd", "l2", "coupled")]
    for index, block in blocks([problem], cfgs):
        out = train_block_native(block)
        assert out.weights.dtype == torch.float32
        for j, k in enumerate(index.tolist()):
            single = train(problem, cfgs[k], curves=False)
            assert relative(out.weights[0, j].double(), single.w.double()) <= 1e-5


@needs_kernel
def test_divergence_is_logged_in_its_lane() -> None:
    problem = regression()
    cfgs = [mlp(lr=lr) for lr in (0.05, 1e150, 0.01)]
    ((_, block),) = blocks([problem], cfgs)
    out = train_block_native(block)
    single = train(problem, cfgs[1], curves=False)
    assert single.status == "diverged"
    assert out.bad_epoch[0].tolist() == [0, single.epochs_run, 0]
    assert float(out.losses["val"][0, 1]) == float("inf")


@pytest.mark.parametrize(("rule", "penalty"), PAIRS)
@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_applies_to_the_common_paths(optimizer: str, penalty: str, rule: str) -> None:
    cfgs = family(optimizer, penalty, rule)
    ((_, block),) = blocks([classification()], cfgs)
    assert native_block_applies(block) == (penalty in ("none", "l2"))
    pooled = [dataclasses.replace(c, seed=i) for i, c in enumerate(cfgs * 3)]
    several = [b for index, b in blocks([classification()], pooled) if len(index) > 1]
    assert several and not any(native_block_applies(b) for b in several)  # an order each
