"""``train``: reproducibility, divergence handling, the global RNG, curves and result rows."""

from __future__ import annotations

import dataclasses
import functools
import math

import pytest
import torch

from wdbench import LOOPS, Problem, TrainConfig, resolve_device, train
from wdbench import order as order_module
from wdbench.order import batch_order, batches, init_params

LOOP_PENALTY = [(loop, "l1" if "l1" in allowed else "l2") for loop, allowed in LOOPS.items()]


@functools.cache
def lesson() -> Problem:
    return Problem.synthetic()


@pytest.mark.parametrize(("loop", "penalty"), LOOP_PENALTY)
def test_same_config_gives_bit_identical_weights(loop: str, penalty: str) -> None:
    config = TrainConfig(penalty=penalty, lam=0.5, loop=loop, epochs=3)
    a, b = train(lesson(), config), train(lesson(), config)
    assert torch.equal(a.w, b.w) and a.b == b.b
    assert a.curves == b.curves


@pytest.mark.parametrize(("loop", "penalty"), LOOP_PENALTY)
def test_different_train_seed_gives_different_weights(loop: str, penalty: str) -> None:
    config = TrainConfig(penalty=penalty, lam=0.5, loop=loop, epochs=3)
    a = train(lesson(), config, curves=False)
    b = train(lesson(), dataclasses.replace(config, seed=1), curves=False)
    assert not torch.equal(a.w, b.w)


@pytest.mark.parametrize(("loop", "penalty"), LOOP_PENALTY)
def test_training_leaves_the_global_rng_untouched(loop: str, penalty: str) -> None:
    before = torch.random.get_rng_state()
    train(lesson(), TrainConfig(penalty=penalty, lam=0.5, loop=loop, epochs=2))
    assert torch.equal(before, torch.random.get_rng_state())


def test_training_ignores_the_global_rng() -> None:
    config = TrainConfig(loop="concise", epochs=2)
    torch.manual_seed(0)
    a = train(lesson(), config, curves=False)
    torch.manual_seed(123)
    assert torch.equal(a.w, train(lesson(), config, curves=False).w)


def test_train_seed_fixes_the_start_and_a_fresh_order_each_epoch() -> None:
    w0, b_random = init_params(200, 1.0, seed=7)
    assert torch.equal(w0, init_params(200, 1.0, seed=7)[0])
    assert torch.equal(init_params(200, 0.5, seed=7)[0], 0.5 * w0)
    assert abs(float(w0.std()) - 1.0) < 0.15 and b_random.shape == (1,)
    order = batch_order(50, epochs=4, seed=7)
    assert order.shape == (4, 50)
    assert all(torch.equal(row.sort().values, torch.arange(50)) for row in order)
    assert not torch.equal(order[0], order[1])
    assert [len(b) for b in batches(batch_order(23, 1, 0)[0], 5)] == [5, 5, 5, 5, 3]


def test_a_kept_order_is_the_drawn_one_and_its_own_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The order a second call returns from the last few drawn is the order the seed draws, and
    changing one returned order changes neither the kept one nor the next call's."""
    first = batch_order(50, epochs=100, seed=11)
    first[0, 0] = -1
    again = batch_order(50, epochs=100, seed=11)
    monkeypatch.setattr(order_module, "_KEEP_ORDER", 0)  # too large to keep: drawn afresh
    drawn = batch_order(50, epochs=100, seed=11)
    assert torch.equal(again, drawn) and int(again[0, 0]) >= 0
    assert not torch.equal(drawn, batch_order(50, epochs=100, seed=12))


@pytest.mark.parametrize(("loop", "penalty"), LOOP_PENALTY)
def test_divergence_is_a_status_not_an_exception(loop: str, penalty: str) -> None:
    """lr = 1 on the lesson's problem blows up: the run stops early and says so."""
    config = TrainConfig(penalty=penalty, lam=0.1, loop=loop, lr=1.0, epochs=100)
    result = train(lesson(), config)
    assert result.status == "diverged"
    assert result.epochs_run < config.epochs
    assert not math.isfinite(result.train_loss) and not math.isfinite(result.val_loss)
    assert result.curves is not None and len(result.curves["train"]) == result.epochs_run - 1


def test_a_stable_run_reports_ok_and_every_epoch() -> None:
    config = TrainConfig(lam=3.0, epochs=4)
    result = train(lesson(), config)
    assert result.status == "ok" and result.epochs_run == 4
    assert result.curves is not None
    for split in ("train", "val", "test"):
        assert len(result.curves[split]) == 4
        assert result.curves[split][-1] == getattr(result, f"{split}_loss")
    assert train(lesson(), config, curves=False).curves is None


def test_result_reports_norm_and_zero_fraction_of_the_final_weights() -> None:
    config = TrainConfig(penalty="l1", lam=2.0, loop="proximal", dtype="float64")
    result = train(lesson(), config, curves=False)
    assert result.w.dtype == torch.float64 and result.w.shape == (200,)
    assert result.w_norm == pytest.approx(float(result.w.norm()), rel=1e-12)
    assert result.zero_fraction == float((result.w == 0).double().mean()) > 0


def test_result_row_is_flat_config_plus_scalars() -> None:
    config = TrainConfig(lam=3.0, epochs=2)
    row = train(lesson(), config).to_row()
    assert {f.name for f in dataclasses.fields(config)} <= row.keys()
    assert row["lam"] == 3.0 and row["status"] == "ok" and row["epochs_run"] == 2
    assert (row["rule"], row["impl"], row["loop"]) == ("coupled", "scratch", "scratch")
    assert all(isinstance(v, str | int | float | type(None)) for v in row.values())


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_weights_come_back_on_the_cpu_in_the_run_dtype(dtype: str) -> None:
    result = train(lesson(), TrainConfig(dtype=dtype, epochs=1))  # type: ignore[arg-type]
    assert result.w.device.type == "cpu" and result.w.dtype == getattr(torch, dtype)


def test_resolve_device_rejects_unknown_and_absent_devices() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="device"):
        resolve_device("mps")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            train(lesson(), TrainConfig(epochs=1), device="cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize(("loop", "penalty"), LOOP_PENALTY)
def test_cuda_runs_are_reproducible_and_leave_rngs_untouched(loop: str, penalty: str) -> None:
    config = TrainConfig(penalty=penalty, lam=0.5, loop=loop, epochs=3)
    cpu_state, cuda_state = torch.random.get_rng_state(), torch.cuda.get_rng_state()
    a = train(lesson(), config, device="cuda")
    b = train(lesson(), config, device="cuda")
    assert torch.equal(a.w, b.w) and a.w.device.type == "cpu"
    assert torch.equal(cpu_state, torch.random.get_rng_state())
    assert torch.equal(cuda_state, torch.cuda.get_rng_state())
