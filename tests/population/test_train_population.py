"""train_population ≡ train, configuration by configuration, on every path it takes."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

import wdbench
from wdbench import PopulationResult, Problem, TrainConfig, train, train_population
from wdbench.population import config_columns
from wdbench.result import TrainResult

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available")
TOL = {"float64": 1e-10, "float32": 1e-5}


def small_problem(seed: int = 0, n_train: int = 23, dim: int = 40) -> Problem:
    """n_train = 23 with batch 5: every epoch ends with a partial batch of 3 rows."""
    return Problem.synthetic(
        n_train=n_train, n_val=17, n_test=29, dim=dim, seed=seed, dtype=torch.float64
    )


def config(**fields: object) -> TrainConfig:
    base = TrainConfig(epochs=4, batch_size=5, lr=0.01, seed=3, dtype="float64")
    return dataclasses.replace(base, **fields)  # type: ignore[arg-type]


def assert_same(got: TrainResult, ref: TrainResult, tol: float) -> None:
    """The parity of the design notes: relative w, absolute b, the final losses, the status."""
    assert got.status == ref.status
    assert got.epochs_run == ref.epochs_run
    assert float((got.w - ref.w).norm()) <= tol * float(ref.w.norm())
    assert abs(got.b - ref.b) <= tol
    for name in ("train_loss", "val_loss", "test_loss", "w_norm"):
        a, b = getattr(got, name), getattr(ref, name)
        assert abs(a - b) <= tol * max(1.0, abs(b)), name
    assert got.zero_fraction == pytest.approx(ref.zero_fraction, abs=1 / got.w.numel())


def assert_matches_train(
    result: PopulationResult, problems: list[Problem], configs: list[TrainConfig]
) -> None:
    for s, problem in enumerate(problems):
        for k, cfg in enumerate(configs):
            ref = train(problem, cfg, curves=False)
            assert_same(result.result(k, s), ref, TOL[cfg.dtype])


EXACT = [  # (loop, penalty): rules whose parity holds to rounding
    *((loop, pen) for loop in ("scratch", "optim", "decoupled") for pen in ("none", "l2")),
    *(("proximal", pen) for pen in ("none", "l2", "l1", "elastic")),
]


#: ``auto`` takes the compiled CPU kernel where it is available, ``torch`` the torch kernels.
CPU_BACKENDS = ["auto", "torch"]


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(("loop", "penalty"), EXACT)
def test_each_config_equals_train(loop: str, penalty: str, dtype: str, backend: str) -> None:
    problem = small_problem()
    configs = [
        config(loop=loop, penalty=penalty, lam=lam, lr=lr, l1_ratio=0.3, dtype=dtype)
        for lam in (0.0, 0.5, 3.0)
        for lr in (0.003, 0.02)
    ]
    result = train_population(problem, configs, backend=backend)
    assert result.shape == (1, len(configs))
    assert_matches_train(result, [problem], configs)


@pytest.mark.parametrize("loop", ["scratch", "optim"])
@pytest.mark.parametrize("penalty", ["l1", "elastic"])
def test_subgradient_l1_equals_train_away_from_zero(loop: str, penalty: str) -> None:
    """Few small steps from w₀ ~ N(0, 1): no weight comes near zero, so no sign flip by rounding."""
    problem = small_problem()
    configs = [
        config(loop=loop, penalty=penalty, lam=lam, lr=0.002, epochs=2) for lam in (0.1, 1.0)
    ]
    result = train_population(problem, configs)
    assert_matches_train(result, [problem], configs)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_lesson_workload_in_float32(backend: str) -> None:
    """The lesson's run (n = 50, d = 200, batch 5, 1000 steps) in float32, with a small ηλ where
    a float32 decay factor 1 − ηλ or 1 + ηλ would drift by more than the tolerance."""
    problem = Problem.synthetic(seed=0)
    configs = [
        TrainConfig(penalty="l2", lam=1e-3, loop="optim"),
        TrainConfig(penalty="none", loop="optim"),
        TrainConfig(penalty="l2", lam=1e-3, loop="proximal"),
        TrainConfig(penalty="l1", lam=0.01, loop="proximal"),
    ]
    result = train_population(problem, configs, backend=backend)
    assert_matches_train(result, [problem], configs)


@pytest.mark.parametrize(
    ("penalty", "loop", "dtype", "kernel"),
    [
        ("l2", "scratch", "float32", "rowspace"),
        ("none", "optim", "float32", "rowspace"),
        ("l2", "proximal", "float64", "rowspace"),
        ("l2", "proximal", "float32", "fullspace"),
        ("l1", "scratch", "float32", "fullspace"),
        ("elastic", "proximal", "float64", "fullspace"),
    ],
)
def test_kernel_dispatch(penalty: str, loop: str, dtype: str, kernel: str) -> None:
    """The torch kernel each shared-seed group gets on the CPU, and the compiled kernel that
    ``auto`` prefers where it is available (what the parity tests cover)."""
    from wdbench.population import make_group, plan_groups, select_kernel, stack
    from wdbench.population.native import native_available

    configs = (config(penalty=penalty, loop=loop, dtype=dtype, lam=0.5, seed=0),)
    columns = config_columns(configs)
    (plan,) = plan_groups(columns)
    data = stack((small_problem(),), torch.device("cpu"), getattr(torch, dtype))
    group = make_group(data, plan, plan.index, columns)
    assert select_kernel(group, "torch").__name__ == f"train_group_{kernel}"
    auto = "native" if native_available() else kernel
    assert select_kernel(group).__name__ == f"train_group_{auto}"
    assert select_kernel(group, "reference").__name__ == "train_group_reference"


def test_mixed_penalties_loops_and_groups_in_one_call() -> None:
    """Penalties, rules, epochs, batch sizes and dtypes mixed; results come back in input order."""
    problem = small_problem()
    configs = [
        config(penalty="l2", lam=1.0),
        config(penalty="l1", lam=0.5, loop="proximal", epochs=3),
        config(penalty="none", batch_size=4),
        config(penalty="elastic", lam=2.0, l1_ratio=0.7, loop="proximal", dtype="float32"),
        config(penalty="l2", lam=0.2, loop="decoupled", batch_size=7, epochs=2),
        config(penalty="l2", lam=1.0, loop="proximal"),
    ]
    result = train_population(problem, configs)
    assert_matches_train(result, [problem], configs)
    assert result.epochs_run[0].tolist() == [4, 3, 4, 4, 2, 4]


def test_several_problems() -> None:
    problems = [small_problem(seed) for seed in (0, 1, 2)]
    configs = [config(penalty="l2", lam=lam) for lam in (0.0, 1.0)]
    configs += [config(penalty="l1", lam=1.0, loop="proximal")]
    result = train_population(problems, configs)
    assert result.shape == (3, 3)
    assert_matches_train(result, problems, configs)


@pytest.mark.parametrize("n_seeds", [2, 6, 9])
def test_distinct_train_seeds(n_seeds: int) -> None:
    """A group per seed (few seeds, or many configurations per seed) or, for many seeds with few
    configurations each, one pooled group with a batch order per configuration."""
    problem = small_problem()
    configs = [
        config(penalty=pen, lam=0.1 * k, seed=k % n_seeds, epochs=2, loop=loop)
        for k in range(18)
        for pen, loop in (("l2", "scratch"), ("l1", "proximal"))
    ]
    result = train_population(problem, configs)
    assert_matches_train(result, [problem], configs[: 2 * n_seeds])
    assert not torch.equal(result.w[0, 0], result.w[0, 2])  # type: ignore[index]


def test_chunking_gives_the_same_results() -> None:
    problem = small_problem()
    configs = [
        config(penalty=pen, lam=lam, loop=loop, seed=0)
        for pen in ("l2", "l1")
        for lam in (0.0, 0.5, 1.0, 2.0)
        for loop in ("optim", "proximal")
    ]
    whole = train_population(problem, configs)
    chunked = train_population(problem, configs, chunk_size=3)
    assert torch.allclose(whole.w, chunked.w, rtol=1e-12, atol=1e-12)  # type: ignore[arg-type]
    assert torch.allclose(whole.val_loss, chunked.val_loss, rtol=1e-12, atol=0)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("extreme", [False, True])
def test_fast_paths_equal_the_reference_in_float64(extreme: bool, backend: str) -> None:
    """``extreme`` adds ηλ = 1 (sgd) and 1 + ηλ = 10⁴ (proximal): the row-space kernel then
    decays at every step instead of once per epoch."""
    problems = [small_problem(0), small_problem(1)]
    configs = [
        config(penalty=pen, lam=lam, loop=loop, l1_ratio=0.4, seed=0, epochs=6)
        for pen in ("none", "l2", "l1", "elastic")
        for lam in (0.0, 0.7, 20.0)
        for loop in ("scratch", "proximal")
    ]
    if extreme:
        configs += [
            config(penalty="l2", lam=4.0, lr=0.25, seed=0, epochs=6),
            config(penalty="l2", lam=1e6, lr=0.01, loop="proximal", seed=0, epochs=6),
        ]
    fast = train_population(problems, configs, backend=backend)
    ref = train_population(problems, configs, backend="reference")
    assert fast.w is not None and ref.w is not None
    err = (fast.w - ref.w).norm(dim=-1) / ref.w.norm(dim=-1).clamp(min=1e-300)
    assert float(err.max()) <= 1e-10
    assert float((fast.b - ref.b).abs().max()) <= 1e-10
    assert torch.allclose(fast.test_loss, ref.test_loss, rtol=1e-10, atol=0)
    assert torch.equal(fast.zero_fraction, ref.zero_fraction)


def test_divergence_stays_in_its_row() -> None:
    problem = small_problem()
    calm = [config(penalty="l2", lam=lam, seed=0, epochs=40) for lam in (0.0, 1.0)]
    wild = config(penalty="l2", lam=1.0, lr=50.0, seed=0, epochs=40)
    alone = train_population(problem, calm)
    mixed = train_population(problem, [calm[0], wild, calm[1]])
    assert mixed.status.tolist() == [["ok", "diverged", "ok"]]
    calm_w = mixed.w[0, [0, 2]]  # type: ignore[index]
    assert bool(torch.isfinite(calm_w).all())
    # equal to rounding: a different K may change the BLAS blocking, never the values' rows
    assert torch.allclose(calm_w, alone.w[0], rtol=1e-12, atol=1e-12)  # type: ignore[index]
    assert math.isinf(float(mixed.val_loss[0, 1]))
    ref = train(problem, wild, curves=False)
    assert ref.status == "diverged"
    assert int(mixed.epochs_run[0, 1]) == ref.epochs_run


def test_curves_equal_train_curves() -> None:
    problem = small_problem()
    configs = [
        config(penalty="l2", lam=1.0),
        config(penalty="l1", lam=1.0, loop="proximal"),
        config(penalty="l2", lam=1.0, lr=50.0, epochs=40),
    ]
    result = train_population(problem, configs, curves=True)
    for k, cfg in enumerate(configs):
        got, ref = result.result(k).curves, train(problem, cfg).curves
        assert got is not None and ref is not None
        for split in ("train", "val", "test"):
            assert len(got[split]) == len(ref[split])
            if cfg.lr < 1:  # a diverging run amplifies rounding: only its length is exact
                assert got[split] == pytest.approx(ref[split], rel=1e-10, abs=0)


def test_curves_of_the_named_splits_are_those_of_all_three() -> None:
    problem = small_problem()
    configs = [config(penalty="l2", lam=1.0), config(penalty="l1", lam=0.5, loop="proximal")]
    every = train_population(problem, configs, curves=True).curves
    some = train_population(problem, configs, curves=["val", "train"]).curves
    assert every is not None and some is not None
    assert list(some) == ["train", "val"] and list(every) == ["train", "val", "test"]
    for split in some:
        assert torch.equal(some[split], every[split])
    with pytest.raises(ValueError, match="valid"):
        train_population(problem, configs, curves=("valid",))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_curves_computed_after_training_equal_those_computed_each_epoch(
    dtype: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A unit keeps each epoch's products X·w and finishes its curves at once after training;
    past ``CURVE_COPIES`` bytes it computes them as each epoch ends: the same bits either way."""
    from wdbench.population import _train

    problems = [small_problem(0), small_problem(1)]
    configs = [
        config(penalty="l2", lam=1.0, dtype=dtype),
        config(penalty="l1", lam=0.5, loop="proximal", dtype=dtype),
        config(penalty="l2", lam=1.0, lr=50.0, epochs=40, dtype=dtype),  # diverges
    ]
    kept = train_population(problems, configs, curves=True).curves
    monkeypatch.setattr(_train, "CURVE_COPIES", 0)
    each = train_population(problems, configs, curves=True).curves
    assert kept is not None and each is not None
    for split in ("train", "val", "test"):
        assert torch.equal(kept[split].isnan(), each[split].isnan())
        assert torch.equal(kept[split].nan_to_num(), each[split].nan_to_num())


def test_to_frame_has_one_row_per_problem_and_config() -> None:
    problems = [small_problem(0), small_problem(1)]
    configs = [config(penalty="l2", lam=lam) for lam in (0.0, 1.0, 2.0)]
    result = train_population(problems, configs)
    frame = result.to_frame()
    assert len(frame) == 6
    expected = (
        {"data_index", "config_index", *TrainResult.__dataclass_fields__}
        - {"config", "w", "curves", "biases"}
        | {f.name for f in dataclasses.fields(TrainConfig)}
        | {"loop"}
    )
    assert set(frame.columns) == expected
    assert set(frame.columns) == {
        "data_index",
        "config_index",
        *train(problems[0], configs[0], curves=False).to_row(),
    }
    assert frame["rule"].tolist() == ["coupled"] * 6 and frame["loop"].tolist() == ["scratch"] * 6
    assert frame["lam"].tolist() == [0.0, 1.0, 2.0] * 2
    assert frame["val_loss"].tolist() == result.val_loss.reshape(-1).tolist()
    row = frame.iloc[4]
    assert (row["data_index"], row["config_index"]) == (1, 1)
    assert row["val_loss"] == result.result(1, s=1).val_loss


def test_keep_weights_false_keeps_the_scalars() -> None:
    problem = small_problem()
    configs = [config(penalty="l2", lam=1.0)]
    result = train_population(problem, configs, keep_weights=False)
    assert result.w is None
    assert result.val_loss[0, 0] == train_population(problem, configs).val_loss[0, 0]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"configs": [config(loop="concise")]}, "concise"),
        ({"configs": []}, "at least one configuration"),
        ({"configs": [config(batch_size=50)]}, "batch_size"),
        ({"chunk_size": 0}, "chunk_size"),
        ({"backend": "magic"}, "backend"),
    ],
)
def test_user_mistakes_are_value_errors(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"problem_or_problems": small_problem(), "configs": [config()]}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        train_population(**args)  # type: ignore[arg-type]


def test_problems_of_different_shapes_are_rejected() -> None:
    with pytest.raises(ValueError, match="same split shapes"):
        train_population([small_problem(), small_problem(dim=30)], [config()])


def test_exported_from_the_package() -> None:
    assert wdbench.train_population is train_population
    assert "PopulationResult" in wdbench.__all__


@needs_cuda
@pytest.mark.cuda
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_cuda_equals_cpu_train(dtype: str) -> None:
    problem = small_problem()
    configs = [
        config(penalty=pen, lam=lam, loop=loop, dtype=dtype, seed=0)
        for pen in ("none", "l2", "l1", "elastic")
        for lam in (0.0, 1.0)
        for loop in ("scratch", "proximal")
        if (pen, loop) != ("l1", "scratch") and (pen, loop) != ("elastic", "scratch")
    ]
    result = train_population(problem, configs, device="cuda")
    assert_matches_train(result, [problem], configs)


@needs_cuda
@pytest.mark.cuda
@pytest.mark.parametrize("backend", ["auto", "reference"])
def test_cuda_graph_replay_equals_cpu_reference(backend: str) -> None:
    """Several epochs on CUDA (epoch 0 eager, then one captured graph replayed) in float64."""
    problems = [small_problem(0), small_problem(1)]
    configs = [
        config(penalty=pen, lam=lam, loop=loop, seed=0, epochs=5)
        for pen in ("none", "l2", "l1", "elastic")
        for lam in (0.0, 0.7)
        for loop in ("scratch", "proximal")
    ]
    on_gpu = train_population(problems, configs, device="cuda", backend=backend)
    on_cpu = train_population(problems, configs, backend="reference")
    assert on_gpu.w is not None and on_cpu.w is not None
    err = (on_gpu.w - on_cpu.w).norm(dim=-1) / on_cpu.w.norm(dim=-1).clamp(min=1e-300)
    assert float(err.max()) <= 1e-10
    assert torch.allclose(on_gpu.val_loss, on_cpu.val_loss, rtol=1e-10, atol=0)


def test_cuda_graphs_switch_restores_itself() -> None:
    """``cuda_graphs(False)`` (the eager CUDA path the benchmarks measure) is scoped."""
    from wdbench.population._graph import _graphs, cuda_graphs

    with cuda_graphs(False):
        assert _graphs["enabled"] is False
        problem = small_problem()
        eager = train_population(problem, [config(penalty="l2", lam=0.5)], backend="torch")
    assert _graphs["enabled"] is True
    graphed = train_population(problem, [config(penalty="l2", lam=0.5)], backend="torch")
    assert torch.equal(eager.w, graphed.w)  # type: ignore[arg-type]
