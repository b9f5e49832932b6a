"""Parity of the update loops (design notes: ‖w_a − w_b‖/‖w_b‖, |b_a − b_b| and the final losses).

All in float64 from the same w₀ and batch order. The reference rule below is written out here,
independently of ``wdbench.rules``; it shares only the seed-derived start and batch order, which
are the definition of "the same run" in every loop.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple

import pytest
import torch

from wdbench import Problem, TrainConfig, TrainResult, train
from wdbench.loops import OptimLoop, make_loop
from wdbench.order import batch_order, init_params

TOL = 1e-10
LESSON_LAMS = [0.0, 0.1, 3.0, 5.0]
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


class Reference(NamedTuple):
    w: torch.Tensor
    b: float
    min_abs_w: float
    sign_changes: int


@functools.cache
def lesson(n_train: int = 50) -> Problem:
    """The tutorial's data (n_train = 50) or a variant, in float64."""
    return Problem.synthetic(n_train=n_train, dtype=torch.float64)


@functools.cache
def run(config: TrainConfig, n_train: int = 50, b0: float | None = None) -> TrainResult:
    return train(lesson(n_train), config, curves=False, b0=b0)


def f64(**fields: float | int | str) -> TrainConfig:
    return TrainConfig(dtype="float64", **fields)  # type: ignore[arg-type]


def reference_sgd(
    problem: Problem, config: TrainConfig, *, proximal: bool = False, nominal: bool = False
) -> Reference:
    """p ← p − η·grad with ℓ = (1/B) Σ_batch (x·w + b − y)²/2, written out from scratch.

    Coupled (sub)gradient step w ← w − η(∇ℓ + aρ·sign(w) + c·w) with a = λρ, c = λ(1−ρ) for elastic
    (a = λ for l1, c = λ for l2); with ``proximal`` and l2, w ← (w − η∇ℓ)/(1 + ηλ). B is the size
    of the batch at hand, or the nominal batch size with ``nominal`` (the lesson's divisor).
    """
    lam, rho, lr = config.lam, config.l1_ratio, config.lr
    a, c = {
        "none": (0.0, 0.0),
        "l2": (0.0, lam),
        "l1": (lam, 0.0),
        "elastic": (lam * rho, lam * (1 - rho)),
    }[config.penalty]
    w = init_params(problem.dim, config.init_scale, config.seed)[0]
    b = torch.zeros((), dtype=torch.float64)
    signs, min_abs, changes = torch.sign(w), float(w.abs().min()), 0
    for row in batch_order(problem.n_train, config.epochs, config.seed):
        for start in range(0, len(row), config.batch_size):
            idx = row[start : start + config.batch_size]
            X, y = problem.X_train[idx], problem.y_train[idx]
            divisor = config.batch_size if nominal else len(idx)
            r = X @ w + b - y
            gw, gb = X.T @ r / divisor, r.sum() / divisor
            if proximal:
                w = (w - lr * gw) / (1 + lr * c)
            else:
                w = w - lr * (gw + a * torch.sign(w) + c * w)
            b = b - lr * gb
            min_abs = min(min_abs, float(w.abs().min()))
            changes += int((torch.sign(w) != signs).sum())
    return Reference(w, float(b), min_abs, changes)


def assert_parity(a: TrainResult, b: TrainResult, tol: float = TOL) -> None:
    w_rel = float((a.w - b.w).norm() / b.w.norm())
    assert w_rel <= tol, f"relative w difference {w_rel:.3e}"
    assert abs(a.b - b.b) <= tol, f"bias difference {abs(a.b - b.b):.3e}"
    for split in ("train_loss", "val_loss", "test_loss"):
        la, lb = getattr(a, split), getattr(b, split)
        assert abs(la - lb) <= tol * max(1.0, abs(lb)), f"{split}: {la!r} vs {lb!r}"


def assert_matches_reference(result: TrainResult, ref: Reference, tol: float = TOL) -> None:
    w_rel = float((result.w - ref.w).norm() / ref.w.norm())
    assert w_rel <= tol, f"relative w difference {w_rel:.3e}"
    assert abs(result.b - ref.b) <= tol


@pytest.mark.parametrize("lam", LESSON_LAMS)
@pytest.mark.parametrize("loop", ["optim", "decoupled"])
def test_l2_loops_agree_with_scratch_after_the_lessons_100_epochs(loop: str, lam: float) -> None:
    assert_parity(run(f64(penalty="l2", lam=lam, loop=loop)), run(f64(penalty="l2", lam=lam)))


@pytest.mark.parametrize("lam", LESSON_LAMS)
def test_scratch_l2_matches_the_hand_written_rule(lam: float) -> None:
    config = f64(penalty="l2", lam=lam)
    assert_matches_reference(run(config), reference_sgd(lesson(), config))


@functools.cache
def _fused_sgd_supported() -> bool:
    p = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    try:
        opt = torch.optim.SGD([p], lr=0.1, fused=True)
        p.grad = torch.ones_like(p)
        opt.step()
    except (RuntimeError, ValueError):
        return False
    return True


@pytest.mark.parametrize(
    ("impl", "flags"),
    [("for-loop", {"foreach": False}), ("foreach", {"foreach": True}), ("fused", {"fused": True})],
)
def test_optim_impl_reaches_torch_sgd(impl: str, flags: dict[str, bool]) -> None:
    """The parity below is only meaningful if each implementation is really the one used."""
    if impl == "fused" and not _fused_sgd_supported():
        pytest.skip("this torch build has no fused SGD for float64 CPU tensors")
    config = f64(loop="optim", optim_impl=impl, epochs=1)
    w0, b0 = init_params(lesson().dim, 1.0, config.seed)[0], torch.zeros(1, dtype=torch.float64)
    loop = make_loop(lesson(), config, w0, b0, batch_order(lesson().n_train, 1, config.seed))
    assert isinstance(loop, OptimLoop)
    assert {key: loop.opt.defaults[key] for key in flags} == flags


@pytest.mark.parametrize("lam", [0.0, 3.0])
@pytest.mark.parametrize("impl", ["default", "foreach", "fused"])
def test_optim_implementations_agree_with_the_for_loop(impl: str, lam: float) -> None:
    """5 epochs (50 steps): fused SGD on the CPU costs milliseconds per step."""
    if impl == "fused" and not _fused_sgd_supported():
        pytest.skip("this torch build has no fused SGD for float64 CPU tensors")
    base = f64(penalty="l2", lam=lam, loop="optim", optim_impl="for-loop", epochs=5)
    assert_parity(run(dataclasses.replace(base, optim_impl=impl)), run(base))


def _small_problem(n_train: int = 50) -> Problem:
    """d = 20: a short run's weights keep their sign here (n_train = 23 ends on a 3-row batch)."""
    return Problem.synthetic(n_train=n_train, dim=20, dtype=torch.float64)


@pytest.mark.parametrize(("penalty", "rho"), [("l1", 1.0), ("elastic", 0.5), ("elastic", 0.2)])
@pytest.mark.parametrize("lam", [0.1, 0.5])
@pytest.mark.parametrize("loop", ["scratch", "optim"])
@pytest.mark.parametrize("n_train", [50, 23])
def test_subgradient_penalties_match_the_hand_written_rule_away_from_zero(
    n_train: int, loop: str, lam: float, penalty: str, rho: float
) -> None:
    problem = _small_problem(n_train)
    config = f64(penalty=penalty, lam=lam, l1_ratio=rho, loop=loop, epochs=5)
    ref = reference_sgd(problem, config)
    # Precondition: no weight crosses or approaches zero, so sign(w) is the same on every path.
    assert ref.sign_changes == 0 and ref.min_abs_w > 1e-3
    result = train(problem, config, curves=False)
    assert_matches_reference(result, ref)
    undecayed = train(problem, dataclasses.replace(config, lam=0.0), curves=False)
    assert float((result.w - undecayed.w).norm()) > 1e3 * TOL * float(result.w.norm())


@pytest.mark.parametrize(("penalty", "rho"), [("l1", 1.0), ("elastic", 0.5)])
def test_scratch_and_optim_subgradient_runs_agree_away_from_zero(penalty: str, rho: float) -> None:
    problem = _small_problem()
    config = f64(penalty=penalty, lam=0.5, l1_ratio=rho, epochs=5)
    assert reference_sgd(problem, config).sign_changes == 0
    scratch = train(problem, config, curves=False)
    optim = train(problem, dataclasses.replace(config, loop="optim"), curves=False)
    assert_parity(optim, scratch)


@pytest.mark.parametrize("wd", [0.0, 3.0, 5.0])
def test_concise_equals_scratch_with_half_decay_and_double_lr(wd: float) -> None:
    """MSELoss has no ½: concise(wd, η) ≡ scratch(wd/2, 2η) from the same bias start."""
    concise = run(f64(penalty="l2", lam=wd, loop="concise"), b0=0.25)
    scratch = run(f64(penalty="l2", lam=wd / 2, lr=0.006), b0=0.25)
    assert_parity(concise, scratch)


def test_concise_starts_its_bias_at_the_seeds_random_draw() -> None:
    config = f64(penalty="l2", lam=3.0, loop="concise", epochs=2)
    b_random = float(init_params(200, 1.0, config.seed)[1])
    default = train(lesson(), config, curves=False)
    assert torch.equal(default.w, train(lesson(), config, curves=False, b0=b_random).w)
    assert not torch.equal(default.w, train(lesson(), config, curves=False, b0=0.0).w)


@pytest.mark.parametrize("lam", [0.1, 3.0, 5.0])
def test_proximal_l2_is_the_hand_written_shrinkage_loop(lam: float) -> None:
    """w ← (w − η∇ℓ)/(1 + ηλ), so L2 decays by (1 + ηλ)⁻¹ per step on this path."""
    config = f64(penalty="l2", lam=lam, loop="proximal")
    ref = reference_sgd(lesson(), config, proximal=True)
    assert_matches_reference(run(config), ref)
    coupled = reference_sgd(lesson(), dataclasses.replace(config, loop="scratch"))
    assert float((ref.w - coupled.w).norm() / coupled.w.norm()) > 1e3 * TOL


@pytest.mark.parametrize(("penalty", "lam", "rho"), [("l1", 2.0, 1.0), ("elastic", 4.0, 0.5)])
def test_only_the_proximal_path_gives_exact_zeros(penalty: str, lam: float, rho: float) -> None:
    """Proximal: exact zeros. Subgradient: none, but the same weights hover within ≈ ηλρ of 0."""
    config = f64(penalty=penalty, lam=lam, l1_ratio=rho)
    proximal = run(dataclasses.replace(config, loop="proximal"))
    subgradient = run(config)
    zeros = proximal.w == 0
    assert proximal.zero_fraction >= 0.9
    assert subgradient.zero_fraction == 0.0
    threshold = config.lr * lam * rho
    assert float(subgradient.w[zeros].abs().max()) <= 2 * threshold


@pytest.mark.parametrize(
    ("loop", "lam", "lr", "proximal"),
    [
        ("scratch", 3.0, 0.003, False),
        ("optim", 3.0, 0.003, False),
        ("decoupled", 3.0, 0.003, False),
        ("proximal", 3.0, 0.003, True),
        ("concise", 6.0, 0.0015, False),
    ],
)
def test_partial_last_batch_divides_by_its_own_size_in_every_loop(
    loop: str, lam: float, lr: float, proximal: bool
) -> None:
    """n_train = 23, batch 5: the last batch has 3 rows, and every loop divides by 3 there."""
    n_train = 23
    config = f64(penalty="l2", lam=lam, lr=lr, loop=loop)
    # concise(wd, η) is scratch(wd/2, 2η): compare it with the reference at (wd/2, 2η).
    ref_config = f64(penalty="l2", lam=3.0, lr=0.003)
    ref = reference_sgd(lesson(n_train), ref_config, proximal=proximal)
    assert_matches_reference(run(config, n_train=n_train, b0=0.0), ref)
    nominal = reference_sgd(lesson(n_train), ref_config, proximal=proximal, nominal=True)
    assert float((nominal.w - ref.w).norm() / ref.w.norm()) > 1e3 * TOL


@pytest.mark.parametrize("lam", [0.0, 3.0])
def test_partial_last_batch_scratch_optim_decoupled_agree(lam: float) -> None:
    base = f64(penalty="l2", lam=lam)
    for loop in ("optim", "decoupled"):
        assert_parity(run(dataclasses.replace(base, loop=loop), 23), run(base, 23))


@CUDA
@pytest.mark.parametrize("lam", [0.0, 3.0])
@pytest.mark.parametrize("loop", ["optim", "decoupled"])
def test_l2_loops_agree_with_scratch_on_cuda(loop: str, lam: float) -> None:
    scratch = train(lesson(), f64(penalty="l2", lam=lam), device="cuda", curves=False)
    other = train(lesson(), f64(penalty="l2", lam=lam, loop=loop), device="cuda", curves=False)
    assert_parity(other, scratch)


@CUDA
@pytest.mark.parametrize("loop", ["scratch", "optim", "decoupled", "proximal", "concise"])
def test_cpu_and_cuda_agree(loop: str) -> None:
    config = f64(penalty="l2", lam=3.0, loop=loop)
    assert_parity(train(lesson(), config, device="cuda", curves=False), run(config))


@CUDA
def test_cuda_fused_optim_agrees_with_the_cpu_for_loop() -> None:
    config = f64(penalty="l2", lam=3.0, loop="optim", optim_impl="fused")
    cpu = run(dataclasses.replace(config, optim_impl="for-loop"))
    assert_parity(train(lesson(), config, device="cuda", curves=False), cpu)
