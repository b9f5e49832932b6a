"""A single network run (``wdbench.train`` with ``model="mlp"``, and the linear model on a
classification problem) against a reference written with ``nn.Sequential`` + ``torch.optim``:
every optimizer and rule, coupled and decoupled, float64, 1e-10 after the full run.

The references share with ``wdbench`` only the seed-derived start (``init_network``, itself
checked against ``nn.init``) and the batch order: the definition of "the same run".
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
import torch
from network_problems import PROBLEMS, classification, mlp, regression
from torch import nn
from torch.nn import functional as F

from wdbench import Problem, TrainConfig, TrainResult, get_penalty, train
from wdbench.networks import Architecture, init_network
from wdbench.order import batch_order, batches

TOL = 1e-10
Hook = Callable[[list[torch.Tensor]], None]


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def sequential(problem: Problem, cfg: TrainConfig) -> nn.Sequential:
    """``nn.Sequential(Linear, ReLU, …, Linear)`` holding the run's start."""
    outputs = problem.n_classes or 1
    arch = Architecture.of(cfg, problem.dim, outputs)
    modules: list[nn.Module] = []
    for i, (w, b) in enumerate(init_network(arch, cfg.seed, cfg.init_scale)):
        linear = nn.Linear(w.shape[1], w.shape[0], dtype=torch.float64)
        with torch.no_grad():
            linear.weight.copy_(w)
            linear.bias.copy_(b)
        modules += [linear] if i == len(arch.shapes) - 1 else [linear, nn.ReLU()]
    return nn.Sequential(*modules)


def reference(
    problem: Problem,
    cfg: TrainConfig,
    make: Callable[[list[dict[str, Any]]], torch.optim.Optimizer],
    l1: float = 0.0,
    after: Hook | None = None,
    before: Hook | None = None,
) -> tuple[torch.Tensor, torch.Tensor, nn.Sequential]:
    """Train with ``make(groups)``, groups ``[{weights}, {biases, weight_decay=0}]``, on torch's
    own loss (``F.cross_entropy`` or the mean half squared error) plus ``l1``·Σ|W|."""
    net = sequential(problem, cfg)
    linears = [m for m in net if isinstance(m, nn.Linear)]
    weights = [m.weight for m in linears]
    opt = make([{"params": weights}, {"params": [m.bias for m in linears], "weight_decay": 0.0}])
    for row in batch_order(problem.n_train, cfg.epochs, cfg.seed):
        for idx in batches(row, cfg.batch_size):
            out, y = net(problem.X_train[idx]), problem.y_train[idx]
            if problem.n_classes:
                loss = F.cross_entropy(out, y)
            else:
                loss = ((out[:, 0] - y) ** 2 / 2).mean()
            loss = loss + l1 * sum(w.abs().sum() for w in weights)
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            with torch.no_grad():
                if before is not None:
                    before(weights)
                opt.step()
                if after is not None:
                    after(weights)
    flat_w = torch.cat([w.detach().flatten() for w in weights])
    flat_b = torch.cat([m.bias.detach() for m in linears])
    return flat_w, flat_b, net


def assert_same(problem: Problem, result: TrainResult, ref: tuple[Any, ...]) -> None:
    w, b, net = ref
    assert result.status == "ok"
    assert result.biases is not None
    assert relative(result.w, w) <= TOL
    assert relative(result.biases, b) <= TOL
    with torch.no_grad():
        out = net(problem.X_val)
    if problem.n_classes:
        val = float(F.cross_entropy(out, problem.y_val))
        acc = float((out.argmax(-1) == problem.y_val).double().mean())
        assert result.val_acc == acc
    else:
        val = float(((out[:, 0] - problem.y_val) ** 2 / 2).mean())
        assert result.val_acc is None and abs(result.b - float(b[-1])) <= TOL
    assert abs(result.val_loss - val) <= TOL * val


# (TrainConfig fields, torch.optim class, its keywords, weight_decay of the weights' group)
TORCH_CASES: list[tuple[dict[str, Any], str, dict[str, Any]]] = [
    ({"optimizer": "sgd", "penalty": "l2", "lam": 0.5}, "SGD", {}),
    ({"optimizer": "sgd", "penalty": "none", "lam": 0.0}, "SGD", {}),
    ({"optimizer": "momentum", "penalty": "l2", "lam": 0.5}, "SGD", {"momentum": 0.9}),
    (
        {"optimizer": "momentum", "nesterov": True, "penalty": "l2", "lam": 0.5},
        "SGD",
        {"momentum": 0.9, "nesterov": True},
    ),
    (
        {"optimizer": "momentum", "momentum": 0.5, "penalty": "elastic", "lam": 0.2},
        "SGD",
        {"momentum": 0.5},
    ),
    ({"optimizer": "sgd", "penalty": "l1", "lam": 0.05}, "SGD", {}),
    ({"optimizer": "adam", "penalty": "l2", "lam": 0.5, "lr": 0.01}, "Adam", {}),
    ({"optimizer": "adam", "penalty": "l1", "lam": 0.01, "lr": 0.01}, "Adam", {}),
    (
        {"optimizer": "adam", "rule": "decoupled", "penalty": "l2", "lam": 2.0, "lr": 0.01},
        "AdamW",
        {},
    ),
    (
        {"optimizer": "adam", "rule": "decoupled", "penalty": "none", "lr": 0.01},
        "AdamW",
        {"weight_decay": 0.0},
    ),
    ({"optimizer": "sgd", "rule": "decoupled", "penalty": "l2", "lam": 0.5}, "SGD", {}),
]


@pytest.mark.parametrize("task", ["classification", "regression"])
@pytest.mark.parametrize(("fields", "cls", "kwargs"), TORCH_CASES)
def test_network_is_the_torch_optim_class_it_names(
    task: str, fields: dict[str, Any], cls: str, kwargs: dict[str, Any]
) -> None:
    """Coupled: ``weight_decay=c`` on the weights' group only, a‖W‖₁ in the loss; decoupled:
    AdamW / SGD. Float64, 1e-10 on every weight, every bias and the validation loss."""
    problem, cfg = PROBLEMS[task](), mlp(**fields)
    a, c = get_penalty(cfg.penalty).coefficients(cfg.lam, cfg.l1_ratio)
    kwargs = {"weight_decay": c, **kwargs}
    optim_cls = getattr(torch.optim, cls)
    ref = reference(problem, cfg, lambda groups: optim_cls(groups, lr=cfg.lr, **kwargs), l1=a)
    assert_same(problem, train(problem, cfg, curves=False), ref)


@pytest.mark.parametrize("nesterov", [False, True])
def test_decoupled_momentum_is_sgdw(nesterov: bool) -> None:
    """W ← W − ηλW at the old W, then SGD(momentum) on the data gradient; biases untouched."""
    problem = classification()
    cfg = mlp(penalty="l2", lam=0.5, rule="decoupled", optimizer="momentum", nesterov=nesterov)

    def decay(weights: list[torch.Tensor]) -> None:
        for w in weights:
            w.sub_(cfg.lr * cfg.lam * w)

    ref = reference(
        problem,
        cfg,
        lambda groups: torch.optim.SGD(groups, lr=cfg.lr, momentum=0.9, nesterov=nesterov),
        before=decay,
    )
    assert_same(problem, train(problem, cfg, curves=False), ref)


@pytest.mark.parametrize("penalty", ["l1", "elastic", "l2"])
@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_proximal_is_the_prox_after_the_optimizers_step(penalty: str, optimizer: str) -> None:
    """The functional definition: torch's step on the data gradient, then every weight matrix
    W ← S(W, ηa) / (1 + ηc); biases take the step alone."""
    problem = classification()
    cfg = mlp(penalty=penalty, lam=0.3, rule="proximal", optimizer=optimizer, lr=0.02)
    a, c = get_penalty(penalty).coefficients(cfg.lam, cfg.l1_ratio)

    def prox(weights: list[torch.Tensor]) -> None:
        for w in weights:
            w.copy_(torch.sign(w) * torch.clamp(w.abs() - cfg.lr * a, min=0) / (1 + cfg.lr * c))

    def make(groups: list[dict[str, Any]]) -> torch.optim.Optimizer:
        if optimizer == "adam":
            return torch.optim.Adam(groups, lr=cfg.lr)
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=0.9 if optimizer == "momentum" else 0)

    result = train(problem, cfg, curves=False)
    assert_same(problem, result, reference(problem, cfg, make, after=prox))
    if penalty != "l2":
        assert result.zero_fraction > 0  # the proximal path's exact zeros


def test_initialization_is_nn_linears_default() -> None:
    """W by ``nn.init.kaiming_uniform_(a=√5)`` and b ~ U(±1/√fan_in), drawn in that order from
    the same generator: the same numbers (a wrong bound or order would differ)."""
    arch = Architecture((30, 50, 3))
    params = init_network(arch, seed=9)
    gen = torch.Generator()
    from wdbench.seeding import derive_seed

    gen.manual_seed(derive_seed(9, "init", "network"))
    for (w, b), (out, fan_in) in zip(params, arch.shapes, strict=True):
        expected_w = torch.empty(out, fan_in, dtype=torch.float64)
        nn.init.kaiming_uniform_(expected_w, a=math.sqrt(5), generator=gen)
        bound = 1 / math.sqrt(fan_in)
        expected_b = torch.empty(out, dtype=torch.float64).uniform_(-bound, bound, generator=gen)
        assert torch.allclose(w, expected_w, rtol=1e-14, atol=0)
        assert torch.equal(b, expected_b)
        assert float(w.abs().max()) <= bound and float(w.abs().max()) > 0.9 * bound


def test_start_is_the_same_in_float32_and_float64() -> None:
    problem = classification()
    cfgs = [mlp(epochs=1, lr=1e-12, dtype=dtype) for dtype in ("float32", "float64")]
    w32, w64 = (train(problem.to(dtype=c.torch_dtype), c, curves=False).w for c in cfgs)
    assert relative(w32.double(), w64) < 1e-6


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
@pytest.mark.parametrize("rule", ["coupled", "decoupled", "proximal"])
def test_biases_are_never_decayed(rule: str, optimizer: str) -> None:
    """With a strong L2 on y shifted by 3, the weights shrink towards 0 and the output bias
    carries the mean of y; a decayed bias would be pulled towards 0 instead."""
    problem = regression(shift=3.0)
    lr = 0.05 if optimizer == "adam" else 0.01  # Adam moves a parameter by about η per step
    cfg = mlp(penalty="l2", lam=30.0, rule=rule, optimizer=optimizer, lr=lr, epochs=100)
    result = train(problem, cfg, curves=False)
    mean = float(problem.y_train.mean())
    assert result.status == "ok"
    assert abs(result.b - mean) < 0.1 * abs(mean)
    assert result.w_norm < 0.5


def test_linear_model_on_classification_is_multinomial_logistic_regression() -> None:
    """0 hidden layers: W ``[C, d]`` and C biases, trained against ``nn.Linear`` + SGD."""
    problem = classification()
    cfg = mlp(model="linear", penalty="l2", lam=0.1)
    result = train(problem, cfg, curves=False)
    assert result.w.shape == (problem.n_classes * problem.dim,)
    assert result.biases is not None and result.biases.shape == (problem.n_classes,)
    assert math.isnan(result.b)
    ref = reference(problem, cfg, lambda g: torch.optim.SGD(g, lr=cfg.lr, weight_decay=0.1))
    assert_same(problem, result, ref)


def test_curves_and_row() -> None:
    problem = classification()
    result = train(problem, mlp(penalty="l2", lam=0.1))
    assert result.curves is not None and len(result.curves["val"]) == 6
    assert result.curves["val"][-1] == result.val_loss
    row = result.to_row()
    assert (row["model"], row["hidden"], row["layers"]) == ("mlp", 7, 2)
    assert 0 <= row["test_acc"] <= 1 and row["train_acc"] == result.train_acc
    assert result.w.numel() == 12 * 7 + 7 * 7 + 7 * 4
    assert result.w_norm == pytest.approx(float(result.w.norm()), rel=1e-12)


def test_regression_linear_rows_carry_no_accuracy() -> None:
    row = train(regression(), TrainConfig(epochs=2), curves=False).to_row()
    assert row["train_acc"] is None and row["model"] == "linear"


def test_divergence_stops_the_run() -> None:
    """η = 10⁴: the output bias alone oscillates with a growth of 1 − η per step."""
    result = train(regression(), mlp(lr=1e4, optimizer="sgd", epochs=50), curves=False)
    assert result.status == "diverged" and result.epochs_run < 50
    assert result.val_loss == math.inf


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"model": "cnn"}, "model must be one of"),
        ({"hidden": 0}, "hidden must be an integer >= 1"),
        ({"layers": 1.5}, "layers must be an integer >= 1"),
        ({"layers": True}, "layers must be an integer >= 1"),
        ({"model": "mlp", "impl": "concise"}, "impl 'concise' trains the lesson's linear"),
    ],
)
def test_invalid_model_fields_name_the_field(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TrainConfig(**fields)
