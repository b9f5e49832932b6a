"""Every rule of ``wdbench.rules.RULES``, generated from the registry: the single loop, the
reference batched kernel and every fast kernel compute the same trajectory (float64, 1e-10), and
each form of a rule (in place, out of place, linear) is the rule's formula."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from wdbench import RULES, Problem, TrainConfig, get_penalty, get_rule, train, train_population
from wdbench.population import config_columns, make_group, plan_groups, stack
from wdbench.population._fullspace import train_group_fullspace
from wdbench.population._rowspace import rowspace_applies, train_group_rowspace
from wdbench.population.native import native_applies, native_available, train_group_native
from wdbench.rules import Factors

TOL = 1e-10
CASES = [(rule, penalty) for rule in RULES for penalty in RULES[rule].penalties]
LAM, L1_RATIO, LR = 0.7, 0.4, 0.02


def small_problem() -> Problem:
    """n = 23 < d = 40 (the row-space form applies) and a partial last batch of 3."""
    return Problem.synthetic(n_train=23, n_val=7, n_test=9, dim=40, seed=5, dtype=torch.float64)


def rule_config(rule: str, penalty: str, **fields: object) -> TrainConfig:
    base = TrainConfig(penalty=penalty, lam=LAM, l1_ratio=L1_RATIO, rule=rule, impl="functional",
                       lr=LR, epochs=3, batch_size=5, seed=2, dtype="float64")  # fmt: skip
    return dataclasses.replace(base, **fields)  # type: ignore[arg-type]


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm().clamp(min=1e-300))


@pytest.mark.parametrize(("rule", "penalty"), CASES)
def test_single_loop_reference_and_fast_kernels_agree(rule: str, penalty: str) -> None:
    """train (functional impl) ≡ the reference kernel ≡ each fast kernel that takes the group."""
    problem = small_problem()
    configs = [rule_config(rule, penalty, lam=lam) for lam in (0.0, 0.3, LAM)]
    singles = [train(problem, c, curves=False) for c in configs]
    columns = config_columns(tuple(configs))
    (plan,) = plan_groups(columns)
    group = make_group(stack((problem,), torch.device("cpu"), torch.float64), plan, plan.index,
                       columns)  # fmt: skip
    reference = train_population(problem, configs, backend="reference")
    kernels = [train_group_fullspace] + ([train_group_rowspace] if rowspace_applies(group) else [])
    if native_available() and native_applies(group):
        kernels.append(train_group_native)
    for k, single in enumerate(singles):
        assert relative(reference.w[0, k], single.w) <= TOL  # type: ignore[index]
        assert abs(float(reference.b[0, k]) - single.b) <= TOL
    for kernel in kernels:
        out = kernel(group, None)
        for k in range(len(configs)):
            assert relative(out.w[0, k], reference.w[0, k]) <= TOL, kernel.__name__  # type: ignore[index]
            assert abs(float(out.b[0, k] - reference.b[0, k])) <= TOL, kernel.__name__


@pytest.mark.parametrize(("rule", "penalty"), CASES)
def test_step_is_the_rules_formula(rule: str, penalty: str) -> None:
    """``Rule.step`` against the rule written out by hand on the penalty's (a, c), with λ, ρ as
    ``[K, 1]`` columns (the population) and as numbers (one run)."""
    gen = torch.Generator().manual_seed(0)
    w, g = (torch.randn(3, 6, generator=gen, dtype=torch.float64) for _ in range(2))
    w[0, 0] = 0.0  # sign(0) = 0
    pen = get_penalty(penalty)
    lam = torch.tensor([[0.0], [0.5], [4.0]], dtype=torch.float64)
    a, c = (torch.as_tensor(v) for v in pen.coefficients(lam, L1_RATIO))
    v = w - LR * g
    expected = {
        "coupled": w - LR * (g + a * torch.sign(w) + c * w),
        "decoupled": w - LR * c * w - LR * g,
        "proximal": torch.sign(v) * torch.clamp(v.abs() - LR * a, min=0) / (1 + LR * c),
    }[rule]
    got = get_rule(rule).step(w, g, Factors.of(pen, LR, lam, L1_RATIO, like=w))
    assert torch.allclose(got, expected, rtol=1e-14, atol=1e-15)
    one = get_rule(rule).step(w[2], g[2], Factors.of(pen, LR, 4.0, L1_RATIO, like=w))
    assert torch.allclose(one, expected[2], rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("rule", list(RULES))
@pytest.mark.parametrize("penalty", ["none", "l2"])
def test_linear_form_is_the_step_without_an_l1_part(rule: str, penalty: str) -> None:
    """(κ, μ) = ``Rule.linear``: w ← κ·w − μ·∇ℓ is the rule's step when the penalty has no L1."""
    gen = torch.Generator().manual_seed(1)
    w, g = (torch.randn(4, 5, generator=gen, dtype=torch.float64) for _ in range(2))
    lam = torch.linspace(0, 3, 4, dtype=torch.float64)[:, None]
    factors = Factors.of(get_penalty(penalty), LR, lam, L1_RATIO, like=w)
    kappa, mu = get_rule(rule).linear(factors.lr, factors.lr_c)
    assert torch.allclose(get_rule(rule).step(w, g, factors), kappa * w - mu * g, rtol=1e-14)


@pytest.mark.parametrize("penalty", ["none", "l2"])
def test_decoupled_equals_coupled_for_plain_sgd(penalty: str) -> None:
    """For plain SGD the decay inside or outside the gradient is the same update, bit for bit."""
    problem = small_problem()
    coupled = train(problem, rule_config("coupled", penalty), curves=False)
    decoupled = train(problem, rule_config("decoupled", penalty), curves=False)
    assert torch.equal(coupled.w, decoupled.w) and coupled.b == decoupled.b


def test_every_rule_has_an_entry_the_config_accepts() -> None:
    for name, rule in RULES.items():
        assert rule.name == name and rule.formula
        for penalty in rule.penalties:
            assert rule_config(name, penalty).rule == name
    with pytest.raises(ValueError, match="rule must be one of"):
        get_rule("adam")
