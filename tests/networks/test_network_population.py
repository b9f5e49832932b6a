"""``train_population`` for networks: entry [s, k] ≡ ``train(problems[s], configs[k])`` for every
optimizer × rule × penalty, on regression and classification, through the compiled kernel where
it applies (``backend="auto"``; ``test_network_native`` tests it on its own), the stacked torch
kernel (``"torch"``) and the ``torch.func.vmap`` form (``"reference"``), float64 1e-10."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from network_problems import PROBLEMS, classification, mlp, regression

from wdbench import RULES, Problem, TrainConfig, TrainResult, train, train_population
from wdbench.optimizers import OPTIMIZERS

TOL = 1e-10
CASES = [(o, r, p) for o in OPTIMIZERS for r in RULES for p in RULES[r].penalties]


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def configs(optimizer: str, rule: str, penalty: str, **fields: object) -> list[TrainConfig]:
    base = mlp(optimizer=optimizer, rule=rule, penalty=penalty, l1_ratio=0.4, **fields)
    lr = 0.01 if optimizer == "adam" else 0.05
    return [
        dataclasses.replace(base, lam=lam, lr=lr * scale)
        for lam, scale in ((0.0, 1.0), (0.3, 0.5), (0.05, 2.0))
    ]


def assert_matches(problem: Problem, pop_result: TrainResult, single: TrainResult) -> None:
    assert pop_result.status == single.status == "ok"
    assert relative(pop_result.w, single.w) <= TOL
    assert pop_result.biases is not None and single.biases is not None
    assert relative(pop_result.biases, single.biases) <= TOL
    for split in ("train", "val", "test"):
        got, want = getattr(pop_result, f"{split}_loss"), getattr(single, f"{split}_loss")
        assert abs(got - want) <= TOL * want
        assert getattr(pop_result, f"{split}_acc") == getattr(single, f"{split}_acc")
    assert abs(pop_result.zero_fraction - single.zero_fraction) <= 1e-12
    assert math.isnan(single.b) == math.isnan(pop_result.b)


@pytest.mark.parametrize(("optimizer", "rule", "penalty"), CASES)
@pytest.mark.parametrize("task", ["classification", "regression"])
@pytest.mark.parametrize("backend", ["auto", "torch", "reference"])
def test_population_equals_train(
    optimizer: str, rule: str, penalty: str, task: str, backend: str
) -> None:
    problem, cfgs = PROBLEMS[task](), configs(optimizer, rule, penalty)
    pop = train_population(problem, cfgs, backend=backend)
    for k, cfg in enumerate(cfgs):
        assert_matches(problem, pop.result(k), train(problem, cfg, curves=False))


def test_one_order_per_network_and_several_problems() -> None:
    """Six train seeds (one batch order each: the pooled group) on two problems."""
    problems = [classification(), _redrawn(classification())]
    cfgs = [mlp(penalty="l2", lam=0.1 * i, seed=i, optimizer="adam", lr=0.01) for i in range(6)]
    pop = train_population(problems, cfgs, chunk_size=4)
    assert pop.shape == (2, 6)
    for s, problem in enumerate(problems):
        for k, cfg in enumerate(cfgs):
            assert_matches(problem, pop.result(k, s), train(problem, cfg, curves=False))


def _redrawn(problem: Problem) -> Problem:
    """The same shapes, other rows: the training rows reversed, validation and test swapped
    within themselves."""
    return dataclasses.replace(
        problem,
        X_train=problem.X_train.flip(0),
        y_train=problem.y_train.flip(0),
        X_val=problem.X_val.flip(0),
        y_val=problem.y_val.flip(0),
    )


def test_float32_population_equals_float32_train() -> None:
    problem = classification().to(dtype=torch.float32)
    cfgs = [dataclasses.replace(c, dtype="float32") for c in configs("adam", "decoupled", "l2")]
    pop = train_population(problem, cfgs)
    for k, cfg in enumerate(cfgs):
        single = train(problem, cfg, curves=False)
        assert relative(pop.result(k).w, single.w) <= 1e-5


def test_divergence_stays_in_its_row() -> None:
    problem = regression()
    cfgs = [mlp(lr=lr) for lr in (0.05, 1e150, 0.01)]  # overflows within the first epoch
    pop = train_population(problem, cfgs)
    single = train(problem, cfgs[1], curves=False)
    assert single.status == "diverged"
    assert pop.status.tolist() == [["ok", "diverged", "ok"]]
    assert int(pop.epochs_run[0, 1]) == single.epochs_run
    assert float(pop.val_loss[0, 1]) == math.inf
    for k in (0, 2):
        assert_matches(problem, pop.result(k), train(problem, cfgs[k], curves=False))


def test_curves_equal_train_curves() -> None:
    problem = classification()
    cfgs = configs("momentum", "coupled", "l2")
    pop = train_population(problem, cfgs, curves=True)
    for k, cfg in enumerate(cfgs):
        single = train(problem, cfg).curves
        got = pop.result(k).curves
        assert single is not None and got is not None
        for split in ("train", "val", "test"):
            assert torch.allclose(torch.tensor(got[split]), torch.tensor(single[split]), rtol=TOL)


def test_curves_of_the_named_splits_are_those_of_all_three() -> None:
    problem = classification()
    cfgs = configs("sgd", "coupled", "l2")
    every = train_population(problem, cfgs, curves=True).curves
    some = train_population(problem, cfgs, curves=("val",)).curves
    assert every is not None and some is not None and list(some) == ["val"]
    assert torch.equal(some["val"], every["val"])


def test_frame_rows_carry_the_accuracies() -> None:
    problem = classification()
    cfgs = configs("sgd", "coupled", "l2")
    pop = train_population(problem, cfgs, keep_weights=False)
    frame = pop.to_frame()
    row = train(problem, cfgs[1], curves=False).to_row()
    assert set(frame.columns) == {"data_index", "config_index", *row}
    assert frame["val_acc"][1] == row["val_acc"]
    assert pop.w is None and pop.biases is None and pop.train_acc is not None
    assert train_population(regression(), configs("sgd", "coupled", "l2")).val_acc is None


@pytest.mark.parametrize(
    ("cfgs", "message"),
    [
        ([mlp(), TrainConfig(dtype="float64")], "linear models and networks in separate calls"),
        ([mlp(), mlp(hidden=8)], "one architecture per call"),
    ],
)
def test_user_mistakes_are_value_errors(cfgs: list[TrainConfig], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        train_population(regression(), cfgs)


def test_triton_backend_is_for_linear_models() -> None:
    with pytest.raises(ValueError, match="linear models only"):
        train_population(classification(), [mlp()], backend="triton")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("backend", ["auto", "reference"])
def test_cuda_equals_cpu_train(backend: str) -> None:
    """Both gradient forms on CUDA in float64 against the single run on the CPU."""
    problem = classification()
    for cfgs in (configs("adam", "decoupled", "l2"), configs("momentum", "proximal", "elastic")):
        pop = train_population(problem, cfgs, device="cuda", backend=backend)
        for k, cfg in enumerate(cfgs):
            assert_matches(problem, pop.result(k), train(problem, cfg, curves=False))
        single = train(problem, cfgs[1], device="cuda", curves=False)
        assert relative(single.w, pop.result(1).w) <= TOL
