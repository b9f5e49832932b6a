"""The compiled coordinate descent of the lasso / elastic-net oracles against scikit-learn.

``anderson=0`` is scikit-learn's iteration itself (cyclic sweeps, gap-safe screening, the same
stopping rule), so its iterates match scikit-learn's to rounding at any tolerance; the default
extrapolates the iterates and must reach the same minimizer at a tight tolerance. The lesson's
problem (n = 50 < d = 200, rank 49 once centred) has no unique least-squares fit, so the
penalty alone picks the solution.
"""

from __future__ import annotations

import functools
import warnings

import pytest
import torch
from native_build import HAS_COMPILER, IN_CI, TURNED_OFF
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import ElasticNet, Lasso

from tests.python_child import run_python
from wdbench import Problem, oracle
from wdbench._oracle_cd import (
    native_enet_available,
    native_enet_path,
    native_enet_unavailable_reason,
)

native = pytest.mark.skipif(
    not native_enet_available(), reason=f"no compiled oracle: {native_enet_unavailable_reason()}"
)
TIGHT = 1e-13


@functools.cache
def lesson() -> Problem:
    """The lesson's problem in float64: d = 200 features, n = 50 training rows."""
    return Problem.synthetic(seed=3, n_test=10, dtype=torch.float64)


def lam_max(problem: Problem, rho: float) -> float:
    """The smallest λ with w = 0: max |Xcᵀyc| / (n ρ)."""
    X, y = problem.X_train, problem.y_train
    grad = (X - X.mean(0)).T @ (y - y.mean())
    return float(grad.abs().max()) / (X.shape[0] * rho)


def sklearn_fits(
    problem: Problem, lams: list[float], rho: float, tol: float, warm: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn directly, warm-started along ``lams`` (or each from zero)."""
    X, y = problem.X_train.numpy(), problem.y_train.numpy()
    ws, bs = [], []
    for lam in lams:
        if not warm or not ws:
            model = (
                Lasso(tol=tol, max_iter=10_000_000, warm_start=True)
                if rho == 1
                else ElasticNet(l1_ratio=rho, tol=tol, max_iter=10_000_000, warm_start=True)
            )
        model.set_params(alpha=lam)
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConvergenceWarning)
            model.fit(X, y)
        ws.append(torch.from_numpy(model.coef_.copy()))
        bs.append(float(model.intercept_))
    return torch.stack(ws), torch.tensor(bs, dtype=torch.float64)


@pytest.mark.skipif(
    (not HAS_COMPILER and not IN_CI) or TURNED_OFF, reason="no C++ compiler on PATH"
)
def test_builds_where_a_compiler_is() -> None:
    assert native_enet_available(), native_enet_unavailable_reason()


@native
@pytest.mark.parametrize("rho", [1.0, 0.5])
def test_without_extrapolation_the_iterates_are_sklearns(rho: float) -> None:
    """At the study's loose tolerance the answer depends on the iteration: scikit-learn's own
    sweeps, screening and stopping rule give its numbers to rounding along a warm path."""
    top = lam_max(lesson(), rho)
    lams = [2 * top, top / 3, top / 30, top / 300, 1e-3 * top]
    w_sk, b_sk = sklearn_fits(lesson(), lams, rho, tol=1e-6)
    X, y = lesson().X_train, lesson().y_train
    w, b, n_iter = native_enet_path(
        X, y, torch.tensor(lams, dtype=torch.float64), rho, 1e-6, 1_000_000, anderson=0
    )
    assert int(n_iter[0]) == 0 and int(n_iter[-1]) > 10  # λ > λ_max: no sweep at all
    assert float((w - w_sk).abs().max()) < 1e-12
    assert float((b - b_sk).abs().max()) < 1e-12


@native
@pytest.mark.parametrize("rho", [1.0, 0.5, 0.2])
def test_the_path_is_sklearns_minimizer_at_a_tight_tolerance(rho: float) -> None:
    """λ above λ_max (w = 0 exactly, b = ȳ), just above it, and down the path until about as
    many features as rows are non-zero."""
    problem = lesson()
    top = lam_max(problem, rho)
    lams = [3 * top, 1.01 * top, top / 2, top / 10, top / 100]
    path = oracle.elastic_net_path(problem, lams, l1_ratio=rho, tol=TIGHT)
    w_sk, b_sk = sklearn_fits(problem, lams, rho, tol=TIGHT)
    assert torch.equal(path.w[:2], torch.zeros(2, problem.dim, dtype=torch.float64))
    assert torch.allclose(path.b[:2], problem.y_train.mean().expand(2), rtol=1e-14, atol=0)
    support = int((path.w[-1] != 0).sum())
    assert support > 20 and (rho < 1 or support < problem.n_train)  # the lasso's: at most rank
    for k in range(2, len(lams)):
        assert float((path.w[k] - w_sk[k]).norm() / w_sk[k].norm()) < 1e-8
        assert abs(float(path.b[k] - b_sk[k])) < 1e-9
    ref = oracle.elastic_net_path(problem, lams, l1_ratio=rho, tol=TIGHT, backend="sklearn")
    val_sk = ref.losses["val"]
    assert torch.allclose(path.losses["val"], val_sk, rtol=1e-9, atol=0)


@native
@pytest.mark.parametrize("rho", [1.0, 0.5])
def test_a_warm_path_reaches_the_cold_solution(rho: float) -> None:
    problem = lesson()
    top = lam_max(problem, rho)
    lams = [top / 5, top / 20, top / 80]
    warm = oracle.elastic_net_path(problem, lams, l1_ratio=rho, tol=TIGHT)
    for k, lam in enumerate(lams):
        cold = oracle.elastic_net_path(problem, [lam], l1_ratio=rho, tol=TIGHT)
        assert float((warm.w[k] - cold.w[0]).norm() / cold.w[0].norm()) < 1e-8
        assert abs(float(warm.b[k] - cold.b[0])) < 1e-9
    w_cold, b_cold = sklearn_fits(problem, lams, rho, tol=TIGHT, warm=False)
    assert float((warm.w - w_cold).norm() / w_cold.norm()) < 1e-8
    assert float((warm.b - b_cold).abs().max()) < 1e-9


@native
@pytest.mark.parametrize("rho", [1.0, 0.7, 0.3])
@pytest.mark.parametrize("fraction", [0.5, 0.05, 0.005])
def test_the_solution_meets_the_optimality_conditions(rho: float, fraction: float) -> None:
    """Without scikit-learn: with r = Xw + b − y and g = Xᵀr/n + λ(1−ρ)w, g = −λρ·sign(w) on the
    support, |g| ≤ λρ off it, and mean(r) = 0."""
    problem = lesson()
    lam = fraction * lam_max(problem, rho)
    path = oracle.elastic_net_path(problem, [lam], l1_ratio=rho, tol=TIGHT)
    w, b = path.w[0], float(path.b[0])
    X, y = problem.X_train, problem.y_train
    r = X @ w + b - y
    g = X.T @ r / X.shape[0] + lam * (1 - rho) * w
    on = w != 0
    assert 0 < int(on.sum()) < problem.dim
    scale = lam * rho
    assert float((g[on] + scale * torch.sign(w[on])).abs().max()) < 1e-9 * scale
    assert float(g[~on].abs().max()) <= scale * (1 + 1e-9)
    assert abs(float(r.mean())) < 1e-12


@native
def test_an_unconverged_penalty_keeps_its_last_iterate() -> None:
    """As scikit-learn does (with a warning there): a path is returned, the iterate inexact."""
    X, y = lesson().X_train, lesson().y_train
    lam = torch.tensor([0.01 * lam_max(lesson(), 1.0)], dtype=torch.float64)
    w, _, n_iter = native_enet_path(X, y, lam, 1.0, TIGHT, max_iter=3)
    exact, _, _ = native_enet_path(X, y, lam, 1.0, TIGHT, max_iter=1_000_000)
    assert int(n_iter[0]) == 3 and bool(torch.isfinite(w).all())
    assert float((w - exact).norm()) > 1e-6


def test_a_bad_backend_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="backend"):
        oracle.lasso_path(lesson(), [0.1], backend="fortran")


def test_the_sklearn_backend_is_scikit_learns_fit() -> None:
    """The fallback where the library is unavailable: scikit-learn's numbers, unchanged."""
    lams = [0.05, 0.01]
    path = oracle.elastic_net_path(lesson(), lams, l1_ratio=0.5, tol=1e-6, backend="sklearn")
    w_sk, b_sk = sklearn_fits(lesson(), lams, 0.5, tol=1e-6)
    assert torch.equal(path.w, w_sk) and torch.equal(path.b, b_sk)


def _run(code: str, **env: str) -> list[str]:
    done = run_python(code, env=env)
    done.check_returncode()
    return done.stdout.strip().splitlines()


PATH_CODE = (
    "import sys, torch; from wdbench import Problem, oracle;"
    "p = Problem.synthetic(seed=3, n_test=10, dtype=torch.float64);"
    "path = oracle.elastic_net_path(p, [0.05, 0.005], l1_ratio=0.5, tol=1e-13);"
    "print('sklearn' in sys.modules); print(repr(float(path.losses['val'][1])))"
)


def test_turned_off_the_oracle_is_scikit_learns() -> None:
    """WDBENCH_NATIVE=0: scikit-learn solves the path (imported only then), and the backend
    that asks for the library says why it is missing."""
    imported, val = _run(PATH_CODE, WDBENCH_NATIVE="0")
    assert imported == "True"
    ref = oracle.elastic_net_path(lesson(), [0.05, 0.005], tol=1e-13, backend="sklearn")
    assert float(val) == pytest.approx(float(ref.losses["val"][1]), rel=1e-12)
    code = (
        "from wdbench import Problem, oracle\n"
        "try:\n    oracle.lasso_path(Problem.synthetic(), [0.1], backend='native')\n"
        "except ValueError as e:\n    print(e)"
    )
    (why,) = _run(code, WDBENCH_NATIVE="0")
    assert why.endswith("turned off by WDBENCH_NATIVE=0")


@native
def test_the_compiled_oracle_never_imports_scikit_learn() -> None:
    imported, val = _run(PATH_CODE)
    assert imported == "False"
    ref = oracle.elastic_net_path(lesson(), [0.05, 0.005], tol=1e-13, backend="sklearn")
    assert float(val) == pytest.approx(float(ref.losses["val"][1]), rel=1e-9)
