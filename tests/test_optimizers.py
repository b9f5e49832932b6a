"""Momentum and Adam with coupled and decoupled decay: every (optimizer, rule) against the
torch.optim class it names, in float64 on the lesson's problem after 100 epochs (1e-10).

The references are written here with torch.optim and autograd, sharing with ``wdbench`` only the
seed-derived start and batch order (the definition of "the same run").
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import pytest
import torch

from wdbench import RULES, Problem, TrainConfig, TrainResult, get_penalty, train
from wdbench.optimizers import OPTIMIZERS, Optimizer
from wdbench.order import batch_order, batches, init_params
from wdbench.rules import Factors

TOL = 1e-10
Hook = Callable[[torch.Tensor], None]


@functools.cache
def lesson() -> Problem:
    return Problem.synthetic(n_train=50, dtype=torch.float64)


def config(**fields: Any) -> TrainConfig:
    return TrainConfig(**{"dtype": "float64", "impl": "functional", **fields})


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def reference(
    cfg: TrainConfig,
    make: Callable[[list[dict[str, Any]]], torch.optim.Optimizer],
    before: Hook | None = None,
    after: Hook | None = None,
) -> tuple[torch.Tensor, float]:
    """Train with the torch.optim optimizer ``make(groups)``: groups ``[{w, weight_decay=c},
    {b, weight_decay=0}]``, loss the batch mean half squared error plus a‖w‖₁; ``before`` /
    ``after`` act on w (no grad) around ``step()``."""
    problem = lesson()
    a, c = get_penalty(cfg.penalty).coefficients(cfg.lam, cfg.l1_ratio)
    w = init_params(problem.dim, cfg.init_scale, cfg.seed)[0].requires_grad_(True)
    b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = make([{"params": [w], "weight_decay": c}, {"params": [b], "weight_decay": 0.0}])
    for row in batch_order(problem.n_train, cfg.epochs, cfg.seed):
        for idx in batches(row, cfg.batch_size):
            X, y = problem.X_train[idx], problem.y_train[idx]
            loss = ((X @ w + b - y) ** 2 / 2).mean() + a * w.abs().sum()
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            with torch.no_grad():
                if before is not None:
                    before(w)
                opt.step()
                if after is not None:
                    after(w)
    return w.detach(), float(b.detach())


def assert_same(result: TrainResult, ref: tuple[torch.Tensor, float]) -> None:
    assert result.status == "ok"
    assert relative(result.w, ref[0]) <= TOL
    assert abs(result.b - ref[1]) <= TOL


TORCH_CASES = [
    # (optimizer fields, rule, penalty, lam, torch.optim class and keywords)
    ({"optimizer": "momentum"}, "coupled", "l2", 3.0, "SGD", {"momentum": 0.9}),
    (
        {"optimizer": "momentum", "nesterov": True},
        "coupled",
        "l2",
        3.0,
        "SGD",
        {"momentum": 0.9, "nesterov": True},
    ),
    (
        {"optimizer": "momentum", "momentum": 0.5},
        "coupled",
        "elastic",
        0.5,
        "SGD",
        {"momentum": 0.5},
    ),
    ({"optimizer": "adam"}, "coupled", "l2", 3.0, "Adam", {}),
    (
        {"optimizer": "adam", "beta1": 0.8, "beta2": 0.99, "eps": 1e-6},
        "coupled",
        "l2",
        0.1,
        "Adam",
        {"betas": (0.8, 0.99), "eps": 1e-6},
    ),
    ({"optimizer": "adam"}, "coupled", "l1", 0.1, "Adam", {}),
    ({"optimizer": "adam"}, "decoupled", "l2", 3.0, "AdamW", {}),
    (
        {"optimizer": "adam", "beta1": 0.5},
        "decoupled",
        "l2",
        30.0,
        "AdamW",
        {"betas": (0.5, 0.999)},
    ),
    ({"optimizer": "adam"}, "decoupled", "none", 0.0, "AdamW", {}),
    ({"optimizer": "sgd"}, "decoupled", "l2", 3.0, "SGD", {}),
]


IMPL_CASES = [
    (impl, *case)
    for case in TORCH_CASES
    for impl in ("functional", "optim", "scratch")
    if impl != "scratch" or case[1] == "coupled"  # scratch computes the coupled rule only
]


@pytest.mark.parametrize(("impl", "fields", "rule", "penalty", "lam", "cls", "kwargs"), IMPL_CASES)
def test_each_optimizer_and_rule_is_the_torch_class_it_names(
    impl: str,
    fields: dict[str, Any],
    rule: str,
    penalty: str,
    lam: float,
    cls: str,
    kwargs: dict[str, Any],
) -> None:
    """functional ≡ optim ≡ scratch (coupled) ≡ torch.optim.<cls>, 100 epochs, float64, 1e-10."""
    cfg = config(penalty=penalty, lam=lam, rule=rule, impl=impl, **fields)
    optim_cls = getattr(torch.optim, cls)
    ref = reference(cfg, lambda groups: optim_cls(groups, lr=cfg.lr, **kwargs))
    assert_same(train(lesson(), cfg, curves=False), ref)


@pytest.mark.parametrize("nesterov", [False, True])
def test_decoupled_momentum_is_sgdw(nesterov: bool) -> None:
    """SGDW: w ← w − ηλw at the old w, then torch.optim.SGD(momentum) on the data gradient."""
    cfg = config(penalty="l2", lam=3.0, rule="decoupled", optimizer="momentum", nesterov=nesterov)

    def decay(w: torch.Tensor) -> None:
        w.sub_(cfg.lr * cfg.lam * w)

    ref = reference(
        cfg,
        lambda groups: torch.optim.SGD(
            [{**g, "weight_decay": 0.0} for g in groups],
            lr=cfg.lr,
            momentum=0.9,
            nesterov=nesterov,
        ),
        before=decay,
    )
    assert_same(train(lesson(), cfg, curves=False), ref)


@pytest.mark.parametrize("penalty", ["l1", "elastic", "l2"])
@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
def test_proximal_is_the_prox_after_the_optimizers_step(penalty: str, optimizer: str) -> None:
    """Decoupled l1 / elastic: the torch optimizer's step on the data gradient, then
    w ← S(w, ηλρ) / (1 + ηλ(1−ρ)) (a = λ for l1, c = λ for l2)."""
    cfg = config(penalty=penalty, lam=0.3, rule="proximal", optimizer=optimizer)
    a, c = get_penalty(penalty).coefficients(cfg.lam, cfg.l1_ratio)

    def prox(w: torch.Tensor) -> None:
        w.copy_(torch.sign(w) * torch.clamp(w.abs() - cfg.lr * a, min=0) / (1 + cfg.lr * c))

    def make(groups: list[dict[str, Any]]) -> torch.optim.Optimizer:
        plain = [{**g, "weight_decay": 0.0} for g in groups]
        if optimizer == "adam":
            return torch.optim.Adam(plain, lr=cfg.lr)
        return torch.optim.SGD(plain, lr=cfg.lr, momentum=0.9)

    # the reference's loss must not see the L1 part: prox handles it
    ref = reference(config(**{**cfg.__dict__, "penalty": "none", "lam": 0.0}), make, after=prox)
    assert_same(train(lesson(), cfg, curves=False), ref)


def test_adam_couplings_differ_measurably_on_the_lessons_problem() -> None:
    """Adam(weight_decay=3) and AdamW(weight_decay=3) at the lesson's η: L2 in the gradient is
    rescaled by Adam's preconditioner, decoupled decay is not — different weights and losses."""
    coupled = train(lesson(), config(penalty="l2", lam=3.0, optimizer="adam"), curves=False)
    decoupled = train(
        lesson(), config(penalty="l2", lam=3.0, optimizer="adam", rule="decoupled"), curves=False
    )
    assert relative(coupled.w, decoupled.w) > 0.1
    assert coupled.val_loss > 2 * decoupled.val_loss
    plain = [
        train(lesson(), config(penalty="l2", lam=3.0, rule=rule), curves=False)
        for rule in ("coupled", "decoupled")
    ]
    assert relative(plain[0].w, plain[1].w) <= 1e-14  # plain SGD: one update


@pytest.mark.parametrize(("rule", "penalty"), [(r, p) for r in RULES for p in RULES[r].penalties])
def test_update_through_plain_sgd_is_the_rules_step(rule: str, penalty: str) -> None:
    """``Rule.update_`` with plain SGD ≡ ``Rule.step`` (the plain-SGD form the fast kernels
    replay): the two forms of a rule cannot drift apart."""
    gen = torch.Generator().manual_seed(3)
    w, g = (torch.randn(3, 6, generator=gen, dtype=torch.float64) for _ in range(2))
    lam = torch.tensor([[0.0], [0.5], [4.0]], dtype=torch.float64)
    factors = Factors.of(get_penalty(penalty), 0.02, lam, 0.4, like=w)
    expected = RULES[rule].step(w, g, factors)
    opt = Optimizer("sgd")
    got, buffer = w.clone(), torch.empty_like(w)
    RULES[rule].update_(got, g.clone(), opt, opt.state(got), factors, buffer)
    assert torch.allclose(got, expected, rtol=1e-14, atol=1e-15)


def test_optimizer_registry_and_state() -> None:
    assert set(OPTIMIZERS) == {"sgd", "momentum", "adam"}
    assert not Optimizer("sgd").stateful and Optimizer("adam").stateful
    state = Optimizer("adam").state(torch.ones(2, 3))
    assert set(state.buffers) == {"exp_avg", "exp_avg_sq"} and state.steps == 0
    with pytest.raises(ValueError, match="optimizer must be one of"):
        Optimizer("rmsprop")


def test_adam_first_step_is_sign_times_lr() -> None:
    """At t = 1, m̂ = g and v̂ = g², so the step is η·g/(|g| + ε): η·sign(g) for |g| ≫ ε."""
    opt = Optimizer("adam")
    g = torch.tensor([3.0, -2.0, 1e-3, 0.0], dtype=torch.float64)
    p = torch.zeros_like(g)
    opt.step_(p, g.clone(), opt.state(p), 0.1)
    assert torch.allclose(p, -0.1 * g / (g.abs() + 1e-8), rtol=1e-12, atol=0)


def test_default_config_is_plain_sgd_with_torchs_defaults() -> None:
    cfg = TrainConfig()
    assert (cfg.optimizer, cfg.momentum, cfg.nesterov) == ("sgd", 0.9, False)
    assert (cfg.beta1, cfg.beta2, cfg.eps) == (0.9, 0.999, 1e-8)
    assert cfg.optimizer_settings() == Optimizer()
    row = train(lesson(), config(epochs=1), curves=False).to_row()
    assert {"optimizer", "momentum", "nesterov", "beta1", "beta2", "eps"} <= set(row)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"optimizer": "rmsprop"}, "optimizer must be one of"),
        ({"optimizer": "momentum", "momentum": 1.0}, "momentum must be in"),
        ({"optimizer": "momentum", "momentum": -0.1}, "momentum must be in"),
        ({"optimizer": "adam", "beta1": 1.0}, "beta1 must be in"),
        ({"optimizer": "adam", "beta2": float("nan")}, "beta2 must be in"),
        ({"optimizer": "adam", "eps": -1e-8}, "eps must be"),
        ({"nesterov": True}, "nesterov=True needs optimizer 'momentum'"),
        ({"optimizer": "momentum", "momentum": 0.0, "nesterov": True}, "nesterov=True needs"),
        ({"optimizer": "momentum", "nesterov": 1}, "nesterov must be True or False"),
        ({"impl": "concise", "optimizer": "adam"}, "cannot run optimizer 'adam'"),
        ({"impl": "optim", "rule": "decoupled", "optimizer": "momentum"}, "cannot run optimizer"),
    ],
)
def test_invalid_optimizer_fields_name_the_field(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TrainConfig(**fields)
