"""Oracles: closed-form ridge, scikit-learn's lasso / elastic net, and training converging to them.

Objective (bias unpenalized): (1/2n)‖Xw + b − y‖² + pen(w), with our λ = scikit-learn's ``alpha``.
Full-batch gradient descent (batch_size = n_train) with a fixed step is a deterministic fixed-point
iteration whose fixed point is that minimizer; on a small float64 problem it converges tightly.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import ElasticNet, Lasso, Ridge

from wdbench import Problem, TrainConfig, oracle, train

CONVERGED = 1e-8


@functools.cache
def small() -> Problem:
    """d = 30 > n = 20: the ridge solution is not the least-squares one, λ matters."""
    return Problem.synthetic(n_train=20, dim=30, n_val=50, n_test=50, dtype=torch.float64)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def _sklearn(model: Lasso | ElasticNet | Ridge) -> tuple[torch.Tensor, float]:
    X, y = small().X_train.numpy(), small().y_train.numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model.fit(X, y)
    return torch.from_numpy(np.asarray(model.coef_, dtype=np.float64)), float(model.intercept_)


@pytest.mark.parametrize("lam", [1e-3, 0.5, 2.0])
def test_ridge_path_solves_the_normal_equations(lam: float) -> None:
    """[XᵀX/n + λI, Xᵀ1/n; 1ᵀX/n, 1] [w; b] = [Xᵀy/n; ȳ] (the bias row carries no λ)."""
    X, y = small().X_train, small().y_train
    n, d = X.shape
    A = torch.cat([X, torch.ones(n, 1, dtype=X.dtype)], dim=1)
    reg = torch.diag(torch.tensor([lam] * d + [0.0], dtype=X.dtype))
    wb = torch.linalg.solve(A.T @ A / n + reg, A.T @ y / n)
    path = oracle.ridge_path(small(), [lam])
    assert _rel(path.w[0], wb[:d]) < 1e-10
    assert abs(float(path.b[0]) - float(wb[d])) < 1e-10


def test_ridge_lambda_is_sklearn_alpha_over_n() -> None:
    """scikit-learn's Ridge minimizes ‖Xw + b − y‖² + α‖w‖², i.e. ours at α = nλ."""
    lam = 0.5
    w, b = _sklearn(Ridge(alpha=small().n_train * lam, solver="svd"))
    path = oracle.ridge_path(small(), [lam])
    assert _rel(path.w[0], w) < 1e-10 and abs(float(path.b[0]) - b) < 1e-10


def test_ridge_at_zero_is_the_minimum_norm_least_squares_fit() -> None:
    X, y = small().X_train, small().y_train
    Xc, yc = X - X.mean(0), y - y.mean()
    w = torch.linalg.pinv(Xc) @ yc
    path = oracle.ridge_path(small(), [0.0])
    assert _rel(path.w[0], w) < 1e-10
    assert float(path.losses["train"][0]) < 1e-20  # d > n: interpolation


def test_path_losses_are_the_mean_half_squared_error() -> None:
    path = oracle.ridge_path(small(), [0.1, 1.0])
    for split in ("train", "val", "test"):
        X, y = small().split(split)
        for k in range(2):
            r = X @ path.w[k] + path.b[k] - y
            expected = float((r * r).mean() / 2)
            assert float(path.losses[split][k]) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("lams", [[], [-1.0], [float("nan")], [0.1, float("inf")]])
def test_invalid_lambdas_are_value_errors(lams: list[float]) -> None:
    with pytest.raises(ValueError, match="lams"):
        oracle.ridge_path(small(), lams)
    with pytest.raises(ValueError, match="lams"):
        oracle.lasso_path(small(), lams)


@pytest.mark.parametrize("lam", [0.5, 2.0])
@pytest.mark.parametrize("loop", ["scratch", "optim", "decoupled", "proximal", "concise"])
def test_full_batch_l2_training_converges_to_ridge(loop: str, lam: float) -> None:
    """Fixed point: ∇ℓ + λw = 0 for coupled/decoupled decay, and for w = (w − η∇ℓ)/(1 + ηλ).

    concise(wd, η) ≡ scratch(wd/2, 2η), so it is run at wd = 2λ, η/2 from b₀ = 0.
    """
    lr, scale = (0.05, 2.0) if loop == "concise" else (0.1, 1.0)
    config = TrainConfig(
        penalty="l2",
        lam=scale * lam,
        loop=loop,
        lr=lr,
        epochs=800,
        batch_size=small().n_train,
        dtype="float64",
    )
    result = train(small(), config, curves=False, b0=0.0)
    path = oracle.ridge_path(small(), [lam])
    assert _rel(result.w, path.w[0]) < CONVERGED
    assert abs(result.b - float(path.b[0])) < CONVERGED
    assert result.train_loss == pytest.approx(float(path.losses["train"][0]), rel=CONVERGED)


LASSO_CASES = [
    ("l1", 1.0, 0.01),
    ("l1", 1.0, 0.02),
    ("elastic", 0.5, 0.02),
    ("elastic", 0.5, 0.04),
    ("elastic", 0.2, 0.05),
]


@functools.cache
def _proximal_limit(penalty: str, rho: float, lam: float) -> tuple[torch.Tensor, float]:
    """Full-batch proximal gradient (ISTA) from w₀ = 0: converges to the penalized minimizer."""
    config = TrainConfig(
        penalty=penalty,
        lam=lam,
        l1_ratio=rho,
        loop="proximal",
        lr=0.1,
        epochs=2000,
        batch_size=small().n_train,
        init_scale=0.0,
        dtype="float64",
    )
    result = train(small(), config, curves=False)
    return result.w, result.b


def _oracle(penalty: str, rho: float, lam: float) -> oracle.OraclePath:
    if penalty == "l1":
        return oracle.lasso_path(small(), [lam])
    return oracle.elastic_net_path(small(), [lam], l1_ratio=rho)


@pytest.mark.parametrize(("penalty", "rho", "lam"), LASSO_CASES)
def test_full_batch_proximal_training_converges_to_the_oracle(
    penalty: str, rho: float, lam: float
) -> None:
    w, b = _proximal_limit(penalty, rho, lam)
    path = _oracle(penalty, rho, lam)
    nonzero = int((path.w[0] != 0).sum())
    assert 0 < nonzero < small().dim  # a non-trivial support: λ is neither too small nor too big
    assert _rel(w, path.w[0]) < CONVERGED
    assert abs(b - float(path.b[0])) < CONVERGED
    assert torch.equal(w == 0, path.w[0] == 0)


@pytest.mark.parametrize(("penalty", "rho", "lam"), LASSO_CASES)
def test_proximal_limit_is_sklearn_at_alpha_equal_to_lambda(
    penalty: str, rho: float, lam: float
) -> None:
    """Straight from scikit-learn, bypassing ``wdbench.oracle``: checks the λ = α scaling."""
    model = (
        Lasso(alpha=lam, tol=1e-14, max_iter=1_000_000)
        if penalty == "l1"
        else ElasticNet(alpha=lam, l1_ratio=rho, tol=1e-14, max_iter=1_000_000)
    )
    w_sk, b_sk = _sklearn(model)
    w, b = _proximal_limit(penalty, rho, lam)
    assert _rel(w, w_sk) < CONVERGED and abs(b - b_sk) < CONVERGED
    path = _oracle(penalty, rho, lam)
    assert _rel(path.w[0], w_sk) < CONVERGED


@pytest.mark.parametrize(("penalty", "rho", "lam"), LASSO_CASES)
def test_oracle_satisfies_the_optimality_conditions_in_our_convention(
    penalty: str, rho: float, lam: float
) -> None:
    """With g = Xᵀr/n + λ(1−ρ)w, r = Xw + b − y: g = −λρ·sign(w) on the support, |g| ≤ λρ off it,
    and mean(r) = 0 (the unpenalized bias)."""
    path = _oracle(penalty, rho, lam)
    w, b = path.w[0], float(path.b[0])
    X, y = small().X_train, small().y_train
    r = X @ w + b - y
    g = X.T @ r / X.shape[0] + lam * (1 - rho) * w
    on = w != 0
    assert torch.allclose(g[on], -lam * rho * torch.sign(w[on]), atol=1e-9)
    assert bool((g[~on].abs() <= lam * rho + 1e-9).all())
    assert abs(float(r.mean())) < 1e-9


def test_elastic_net_path_rejects_a_bad_l1_ratio() -> None:
    with pytest.raises(ValueError, match="l1_ratio"):
        oracle.elastic_net_path(small(), [0.1], l1_ratio=1.5)
