"""The lesson's mechanism: why λ = 0 "overfits" and what weight decay removes.

Every data gradient Xᵦᵀr/B lies in the row space of X_train, so SGD never moves the component of w
in the null space of X_train (d − n dimensions): there the random w₀ survives, ‖P_null w₀‖ ≈ √(d−n).
L2 decay multiplies that component by exactly (1 − ηλ) per step (scratch, optim, decoupled), or
by (1 + ηλ)⁻¹ per step on the proximal path. Asserted in float64 after the full 100 epochs.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import pytest
import torch

from wdbench import Problem, TrainConfig, TrainResult, train
from wdbench.order import init_params


class Setting(NamedTuple):
    n_train: int
    true_b: float
    lam: float


BOOK = Setting(n_train=20, true_b=0.05, lam=3.0)
TUTORIAL = Setting(n_train=50, true_b=0.1, lam=5.0)
SETTINGS = [pytest.param(BOOK, id="book"), pytest.param(TUTORIAL, id="tutorial")]
LOOPS = ["scratch", "optim", "decoupled", "proximal"]


@functools.cache
def problem(setting: Setting) -> Problem:
    return Problem.synthetic(n_train=setting.n_train, true_b=setting.true_b, dtype=torch.float64)


@functools.cache
def run(setting: Setting, loop: str, lam: float) -> TrainResult:
    config = TrainConfig(penalty="l2", lam=lam, loop=loop, dtype="float64")
    return train(problem(setting), config, curves=False)


@functools.cache
def null_projector(setting: Setting) -> torch.Tensor:
    """P_null = I − VVᵀ, V an orthonormal basis of the row space of X_train ([d, d])."""
    X = problem(setting).X_train
    _, S, Vh = torch.linalg.svd(X, full_matrices=False)
    assert int((S > S.max() * 1e-12).sum()) == X.shape[0]  # full row rank: d − n null dims
    projector: torch.Tensor = torch.eye(X.shape[1], dtype=X.dtype) - Vh.T @ Vh
    return projector


def initial_weights(setting: Setting) -> torch.Tensor:
    config = TrainConfig()
    return init_params(problem(setting).dim, config.init_scale, config.seed)[0]


def steps(setting: Setting) -> int:
    config = TrainConfig()
    return config.epochs * math.ceil(setting.n_train / config.batch_size)


def decay_factor(loop: str, lr: float, lam: float, n_steps: int) -> float:
    per_step = 1 / (1 + lr * lam) if loop == "proximal" else 1 - lr * lam
    return per_step**n_steps


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize("setting", SETTINGS)
def test_initial_null_space_component_has_norm_near_sqrt_d_minus_n(setting: Setting) -> None:
    p = problem(setting)
    norm = float((null_projector(setting) @ initial_weights(setting)).norm())
    # ‖P w₀‖² ~ χ²(d − n): its square root is within 20 % of √(d − n) by a wide margin.
    assert abs(norm / math.sqrt(p.dim - p.n_train) - 1) < 0.2


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("setting", SETTINGS)
def test_null_space_component_is_untouched_without_decay(setting: Setting, loop: str) -> None:
    P = null_projector(setting)
    w0, w = initial_weights(setting), run(setting, loop, 0.0).w
    assert _rel(P @ w, P @ w0) < 1e-12
    assert float(w.norm()) >= float((P @ w0).norm())


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("setting", SETTINGS)
def test_null_space_component_decays_by_the_exact_per_step_factor(
    setting: Setting, loop: str
) -> None:
    """(1 − ηλ)^steps for coupled and decoupled decay, (1 + ηλ)^−steps for the proximal step."""
    P = null_projector(setting)
    lr = TrainConfig().lr
    factor = decay_factor(loop, lr, setting.lam, steps(setting))
    expected = factor * (P @ initial_weights(setting))
    assert _rel(P @ run(setting, loop, setting.lam).w, expected) < 1e-9


def test_decay_factors_differ_between_the_coupled_and_proximal_paths() -> None:
    """The check above can tell the two rules apart: their factors differ by far more than 1e-9."""
    n = steps(BOOK)
    coupled, proximal = (decay_factor(loop, 0.003, BOOK.lam, n) for loop in ("scratch", "proximal"))
    assert abs(coupled / proximal - 1) > 1e-3


@pytest.mark.parametrize("setting", SETTINGS)
def test_weight_norm_is_large_without_decay_and_small_with_it(setting: Setting) -> None:
    p = problem(setting)
    floor = float((null_projector(setting) @ initial_weights(setting)).norm())
    free, decayed = run(setting, "scratch", 0.0), run(setting, "scratch", setting.lam)
    assert free.w_norm >= floor > 0.8 * math.sqrt(p.dim - p.n_train)
    assert decayed.w_norm < 0.1 * floor
    # The surviving null-space weights are pure noise on held-out rows: decay cuts that loss.
    assert decayed.val_loss < 0.1 * free.val_loss
    assert free.train_loss < free.val_loss
