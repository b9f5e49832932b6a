"""Penalty registry conformance, generated from ``wdbench.PENALTIES`` (a new entry is tested too).

For every penalty pen(w) = a‖w‖₁ + c/2‖w‖² (λ ≥ 0, ρ ∈ [0, 1]):
value ≥ 0 and value(0) = 0; ``grad`` is autograd of ``value`` (sign(0) = 0 at the kink);
``prox(v, η)`` = argmin_u ‖u − v‖²/2 + η·pen(u); and the bias is never penalized by any loop.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from wdbench import LOOPS, PENALTIES, Penalty, Problem, TrainConfig, get_penalty, train
from wdbench.penalties import prox_, soft_threshold

NAMES = sorted(PENALTIES)
LAMS = [0.0, 0.3, 2.0]
RATIOS = [0.0, 0.5, 1.0]
STEPS = [0.003, 0.5]
F64 = torch.float64
#: (name, l1_ratio) pairs: ρ varies only for the penalties that use it.
CASES = [(n, r) for n in NAMES for r in (RATIOS if PENALTIES[n].uses_l1_ratio else [0.5])]


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _away_from_zero(n: int, seed: int) -> torch.Tensor:
    """Random float64 weights with |wᵢ| ∈ [0.1, 2.1]: no L1 kink nearby."""
    g = _gen(seed)
    signs = torch.randint(0, 2, (n,), generator=g).to(F64) * 2 - 1
    return signs * (0.1 + 2 * torch.rand(n, generator=g, dtype=F64))


def _objective(
    pen: Penalty, u: torch.Tensor, v: torch.Tensor, step: float, lam: float, rho: float
) -> torch.Tensor:
    """‖u − v‖²/2 + step·pen(u), over the last dimension."""
    return ((u - v) ** 2).sum(-1) / 2 + step * pen.value(u, lam, rho)


@pytest.mark.parametrize("name", NAMES)
def test_registry_is_keyed_by_name_and_lookup_works(name: str) -> None:
    assert PENALTIES[name].name == name
    assert get_penalty(name) is PENALTIES[name]


def test_unknown_penalty_lookup_names_the_choices() -> None:
    with pytest.raises(ValueError, match="penalty must be one of"):
        get_penalty("l3")


@pytest.mark.parametrize(("name", "rho"), CASES)
@pytest.mark.parametrize("lam", LAMS)
def test_value_is_nonnegative_and_zero_at_zero(name: str, rho: float, lam: float) -> None:
    pen = PENALTIES[name]
    w = torch.randn(64, 30, generator=_gen(0), dtype=F64) * 3
    assert bool((pen.value(w, lam, rho) >= 0).all())
    assert float(pen.value(torch.zeros(30, dtype=F64), lam, rho)) == 0.0


@pytest.mark.parametrize("name", NAMES)
def test_value_scales_linearly_in_lambda(name: str) -> None:
    pen = PENALTIES[name]
    w = torch.randn(30, generator=_gen(1), dtype=F64)
    assert torch.allclose(pen.value(w, 2.0, 0.3), 2 * pen.value(w, 1.0, 0.3), rtol=1e-14)
    assert float(pen.value(w, 0.0, 0.3)) == 0.0


@pytest.mark.parametrize("name", NAMES)
def test_value_matches_its_formula(name: str) -> None:
    """The registry's (a, c) weights against the documented formulas, written out here."""
    w, lam, rho = torch.randn(30, generator=_gen(2), dtype=F64), 0.7, 0.25
    l1, l2 = float(w.abs().sum()), float((w * w).sum()) / 2
    expected = {
        "none": 0.0,
        "l2": lam * l2,
        "l1": lam * l1,
        "elastic": lam * (rho * l1 + (1 - rho) * l2),
    }
    if name not in expected:
        pytest.skip(f"no written-out formula for {name!r}")
    assert float(PENALTIES[name].value(w, lam, rho)) == pytest.approx(expected[name], rel=1e-14)


@pytest.mark.parametrize(("name", "rho"), CASES)
@pytest.mark.parametrize("lam", LAMS)
def test_grad_is_autograd_of_value_away_from_zero(name: str, rho: float, lam: float) -> None:
    pen = PENALTIES[name]
    w = _away_from_zero(40, seed=3).requires_grad_(True)
    (auto,) = torch.autograd.grad(pen.value(w, lam, rho), w)
    assert torch.allclose(pen.grad(w.detach(), lam, rho), auto, rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("name", NAMES)
def test_grad_at_zero_is_the_lessons_subgradient(name: str) -> None:
    """sign(0) = 0: the autograd subgradient of |w| at 0, which the scratch loop relies on."""
    pen = PENALTIES[name]
    w = torch.tensor([0.0, -0.0, 1.5, -2.0], dtype=F64, requires_grad=True)
    (auto,) = torch.autograd.grad(pen.value(w, 1.3, 0.4), w)
    grad = pen.grad(w.detach(), 1.3, 0.4)
    assert torch.equal(grad[:2], torch.zeros(2, dtype=F64))
    assert torch.allclose(grad, auto, rtol=1e-14, atol=0)


@pytest.mark.parametrize("name", NAMES)
def test_batched_lambda_columns_match_one_call_per_row(name: str) -> None:
    """[K, d] weights with [K, 1] λ and ρ columns: the population kernel's broadcast form."""
    pen = PENALTIES[name]
    w = torch.randn(3, 8, generator=_gen(4), dtype=F64)
    lam = torch.tensor([[0.0], [0.5], [2.0]], dtype=F64)
    rho = torch.tensor([[0.2], [0.5], [1.0]], dtype=F64)
    value, grad = pen.value(w, lam, rho), pen.grad(w, lam, rho)
    prox = pen.prox(w, 0.1, lam, rho)
    assert value.shape == (3,)
    for k in range(3):
        args = (float(lam[k]), float(rho[k]))
        assert torch.allclose(value[k], pen.value(w[k], *args), rtol=1e-14)
        assert torch.allclose(grad[k], pen.grad(w[k], *args), rtol=1e-14)
        assert torch.allclose(prox[k], pen.prox(w[k], 0.1, *args), rtol=1e-14)


@pytest.mark.parametrize(("name", "rho"), CASES)
@pytest.mark.parametrize("lam", [0.3, 2.0])
@pytest.mark.parametrize("step", STEPS)
def test_prox_is_the_argmin_on_a_fine_grid(name: str, rho: float, lam: float, step: float) -> None:
    """pen is separable: a per-coordinate 1-D search over a fine grid finds the argmin.

    Each coordinate's grid spans [min(0, v) − 1, max(0, v) + 1] with 4001 points.
    """
    pen = PENALTIES[name]
    v = torch.randn(12, generator=_gen(5), dtype=F64) * 2
    lo, hi = v.clamp(max=0) - 1, v.clamp(min=0) + 1
    t = torch.linspace(0, 1, 4001, dtype=F64).unsqueeze(-1)
    grid = lo + (hi - lo) * t  # [points, coordinate]
    objective = _objective(pen, grid.unsqueeze(-1), v.view(1, -1, 1), step, lam, rho)
    best = grid.gather(0, objective.argmin(0, keepdim=True)).squeeze(0)
    spacing = (hi - lo) / 4000
    assert bool(((pen.prox(v, step, lam, rho) - best).abs() <= spacing).all())


@pytest.mark.parametrize(("name", "rho"), CASES)
@pytest.mark.parametrize("lam", LAMS)
@pytest.mark.parametrize("step", STEPS)
def test_prox_satisfies_the_optimality_condition(
    name: str, rho: float, lam: float, step: float
) -> None:
    """0 ∈ u − v + η(a·∂|u| + c·u): equality off zero, |v| ≤ ηa at an exact zero."""
    pen = PENALTIES[name]
    a, c = (float(x) for x in pen.coefficients(lam, rho))
    v = torch.randn(200, generator=_gen(6), dtype=F64)
    u = pen.prox(v, step, lam, rho)
    on = u != 0
    residual = u[on] - v[on] + step * (a * torch.sign(u[on]) + c * u[on])
    assert torch.allclose(residual, torch.zeros_like(residual), atol=1e-14)
    assert bool((v[~on].abs() <= step * a + 1e-15).all())
    assert bool((torch.sign(u[on]) == torch.sign(v[on])).all())


@pytest.mark.parametrize(("name", "rho"), CASES)
@pytest.mark.parametrize("lam", LAMS)
@pytest.mark.parametrize("step", STEPS)
def test_prox_beats_random_perturbations(name: str, rho: float, lam: float, step: float) -> None:
    pen = PENALTIES[name]
    g = _gen(7)
    v = torch.randn(25, generator=g, dtype=F64)
    u = pen.prox(v, step, lam, rho)
    best = _objective(pen, u, v, step, lam, rho)
    for scale in (1e-6, 1e-3, 1e-1):
        others = u + scale * torch.randn(500, 25, generator=g, dtype=F64)
        assert bool((_objective(pen, others, v, step, lam, rho) >= best - 1e-15).all())


@pytest.mark.parametrize("name", NAMES)
def test_prox_with_zero_strength_is_the_identity(name: str) -> None:
    v = torch.randn(30, generator=_gen(8), dtype=F64)
    assert torch.equal(PENALTIES[name].prox(v, 0.5, 0.0, 0.5), v)


def _no_features_problem() -> Problem:
    """X = 0 everywhere: the data never moves w, and the bias sees only its own gradient."""
    g = _gen(9)
    zeros = torch.zeros(10, 4, dtype=F64)
    y = torch.randn(10, generator=g, dtype=F64) + 3.0
    return Problem("no-features", zeros, y, zeros, y.clone(), zeros, y.clone())


@pytest.mark.parametrize(
    ("name", "loop"), [(n, lp) for lp, allowed in LOOPS.items() for n in allowed if n in NAMES]
)
def test_loops_never_penalize_the_bias(name: str, loop: str) -> None:
    """With no features, the bias follows the same path at λ = 0 and at a large λ."""
    problem = _no_features_problem()
    base = TrainConfig(
        penalty=name,
        loop=loop,
        lam=0.0,
        lr=0.1,
        epochs=5,
        batch_size=3,
        l1_ratio=0.5,
        dtype="float64",
    )
    free = train(problem, base, curves=False)
    decayed = train(problem, dataclasses.replace(base, lam=4.0), curves=False)
    assert decayed.b == free.b
    assert abs(free.b) > 1.0  # the bias moved towards mean(y) ≈ 3
    if name != "none":
        assert float(decayed.w.norm()) < float(free.w.norm())


@pytest.mark.parametrize(("name", "rho"), CASES)
def test_has_l1_and_has_l2_say_which_coefficients_can_be_nonzero(name: str, rho: float) -> None:
    """``has_l1`` / ``has_l2`` hold exactly when some λ (and ρ) gives a nonzero a / c."""
    pen = PENALTIES[name]
    a, c = pen.coefficients(1.0, rho)
    if a:
        assert pen.has_l1
    if c:
        assert pen.has_l2
    if not pen.has_l1:
        assert all(pen.coefficients(1.0, r)[0] == 0 for r in RATIOS)
    if not pen.has_l2:
        assert all(pen.coefficients(1.0, r)[1] == 0 for r in RATIOS)


def test_has_l1_of_every_penalty() -> None:
    assert {n: (PENALTIES[n].has_l1, PENALTIES[n].has_l2) for n in NAMES} == {
        "elastic": (True, True),
        "l1": (True, False),
        "l2": (False, True),
        "none": (False, False),
    }


@pytest.mark.parametrize(("name", "rho"), CASES)
@pytest.mark.parametrize("step", STEPS)
def test_in_place_prox_is_the_prox(name: str, rho: float, step: float) -> None:
    """``prox_`` (what the rules call, with [K, 1] factors and a buffer) ≡ ``Penalty.prox`` ≡
    S(v, step·a) / (1 + step·c) written out."""
    pen = PENALTIES[name]
    v = torch.randn(3, 30, generator=_gen(11), dtype=F64)
    lam = torch.tensor([[0.0], [0.3], [2.0]], dtype=F64)
    a, c = (torch.as_tensor(x) for x in pen.coefficients(lam, rho))
    expected = torch.sign(v) * torch.clamp(v.abs() - step * a, min=0) / (1 + step * c)
    got = prox_(v.clone(), step * a, 1 + step * c, l1=pen.has_l1, l2=pen.has_l2,
                buffer=torch.empty_like(v))  # fmt: skip
    assert torch.allclose(got, expected, rtol=1e-15, atol=0)
    assert torch.allclose(pen.prox(v, step, lam, rho), expected, rtol=1e-15, atol=0)
    assert torch.equal(got == 0, expected == 0)


def test_soft_threshold_gives_exact_zeros_and_keeps_nan() -> None:
    v = torch.tensor([-2.0, -0.5, 0.0, 0.5, 2.0, math.nan], dtype=F64)
    got = soft_threshold(v, 1.0)
    assert got[:5].tolist() == [-1.0, 0.0, 0.0, 0.0, 1.0]
    assert math.isnan(float(got[5]))
