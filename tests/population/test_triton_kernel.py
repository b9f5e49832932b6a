"""The fused Triton kernel computes what ``wdbench.train`` and the PyTorch population path compute.

Without CUDA the kernel runs in Triton's interpreter on CPU tensors: ``TRITON_INTERPRET=1`` is set
below, before anything imports Triton. With CUDA the same tests run the compiled kernel on the GPU.
Parity bound (float32): ‖w_a − w_b‖ ≤ 1e-5·‖w_b‖ and |b_a − b_b| ≤ 1e-5·max(1, |b_b|).
"""

from __future__ import annotations

import dataclasses
import os

import torch

CUDA = torch.cuda.is_available()
if not CUDA:  # must precede the first import of Triton in this process
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402

pytest.importorskip("triton")

import wdbench  # noqa: E402
import wdbench.population._kernels  # noqa: E402
from wdbench.order import batch_order, init_params  # noqa: E402
from wdbench.penalties import get_penalty  # noqa: E402
from wdbench.population import Group, RowSpace, train_group_reference  # noqa: E402
from wdbench.population.triton import (  # noqa: E402
    TRITON_RULES,
    KernelOptions,
    train_group_triton,
)
from wdbench.population.triton._jit import interpreted  # noqa: E402
from wdbench.rules import get_rule  # noqa: E402

if not CUDA and not interpreted():
    if os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}:
        pytest.fail("Triton was imported before TRITON_INTERPRET=1 was set", pytrace=False)
    pytest.skip(
        "Triton was imported before TRITON_INTERPRET=1 was set (run this file on its own)",
        allow_module_level=True,
    )

DEVICE = "cuda" if CUDA else "cpu"
TOL = 1e-5
N, DIM, EPOCHS, BATCH, SEED = 12, 20, 3, 5, 7  # 12 rows: batches of 5, 5 and a partial 2
#: (λ, η, init_scale) of the K = 5 configurations: not a multiple of the block sizes 4 and 8.
HYPER = ((0.0, 0.01, 1.0), (0.1, 0.03, 0.5), (1.0, 0.05, 2.0), (0.5, 0.02, 1.0), (3.0, 0.04, 1.0))
L1_RATIO = 0.3
LOOP_OF_RULE = {"coupled": "scratch", "proximal": "proximal"}


def problems() -> list[wdbench.Problem]:
    return [
        wdbench.Problem.synthetic(n_train=N, n_val=6, n_test=8, dim=DIM, seed=seed)
        for seed in (3, 4)
    ]


def make_group(penalty: str, rule: str) -> Group:
    """The group ``train_population`` would build for ``configs(penalty, rule)``."""
    probs = problems()
    lam, lr, scale = (torch.tensor([[h[i]] for h in HYPER], device=DEVICE) for i in range(3))
    w0 = init_params(DIM, 1.0, SEED)[0].to(DEVICE)[None] * scale
    return Group(
        X=torch.stack([p.X_train for p in probs]).to(DEVICE),
        y=torch.stack([p.y_train for p in probs]).to(DEVICE),
        order=batch_order(N, EPOCHS, SEED)[None].to(DEVICE),
        w0=w0.to(DEVICE, torch.float32),
        lr=lr,
        lam=lam,
        l1_ratio=torch.full((len(HYPER), 1), L1_RATIO, device=DEVICE),
        penalty=get_penalty(penalty),
        rule=get_rule(rule),
        batch_size=BATCH,
    )


def configs(penalty: str, rule: str) -> list[wdbench.TrainConfig]:
    base = wdbench.TrainConfig(penalty=penalty, loop=LOOP_OF_RULE[rule], epochs=EPOCHS,
                               batch_size=BATCH, seed=SEED, l1_ratio=L1_RATIO)  # fmt: skip
    return [dataclasses.replace(base, lam=lam, lr=lr, init_scale=scale) for lam, lr, scale in HYPER]


def assert_close(
    w: torch.Tensor, b: torch.Tensor, w_ref: torch.Tensor, b_ref: torch.Tensor
) -> None:
    """Per trajectory: relative error of w, error of b (float32 parity bound)."""
    w, b, w_ref, b_ref = (t.detach().to("cpu", torch.float64) for t in (w, b, w_ref, b_ref))
    w_err = torch.linalg.vector_norm(w - w_ref, dim=-1) / torch.linalg.vector_norm(w_ref, dim=-1)
    b_err = (b - b_ref).abs() / b_ref.abs().clamp(min=1)
    assert float(w_err.max()) <= TOL, f"w: relative error {float(w_err.max()):.2e}"
    assert float(b_err.max()) <= TOL, f"b: error {float(b_err.max()):.2e}"


CASES = [
    (rule, penalty, form)
    for rule in ("coupled", "proximal")
    for penalty in ("none", "l2", "l1", "elastic")
    for form in (("full", "rowspace") if penalty in ("none", "l2") else ("full",))
]


@pytest.mark.parametrize("layout", ["thread", "warp"])
@pytest.mark.parametrize(("rule", "penalty", "form"), CASES)
def test_kernel_matches_train(rule: str, penalty: str, form: str, layout: str) -> None:
    group = make_group(penalty, rule)
    options = KernelOptions(form=form, layout=layout, block_k=4 if layout == "warp" else 8)
    out = train_group_triton(group, None, options)
    probs = problems()
    runs = [[wdbench.train(p, c, curves=False) for c in configs(penalty, rule)] for p in probs]
    w_ref = torch.stack([torch.stack([r.w for r in row]) for row in runs])
    b_ref = torch.tensor([[r.b for r in row] for row in runs])
    assert_close(out.w, out.b, w_ref, b_ref)
    assert not bool(out.bad_epoch.any())
    ref = train_group_reference(group)
    assert_close(out.w, out.b, ref.w, ref.b)


@pytest.mark.parametrize(
    ("rule", "penalty"),
    [(r, p) for r in TRITON_RULES for p in wdbench.RULES[r].penalties],
)
def test_kernel_computes_every_rule_it_accepts(rule: str, penalty: str) -> None:
    """Generated from the rule table: the kernel's own arithmetic ≡ ``Rule.step`` (through the
    reference kernel) for every rule it accepts, decoupled included."""
    group = make_group(penalty, rule)
    out, ref = train_group_triton(group), train_group_reference(group)
    assert_close(out.w, out.b, ref.w, ref.b)


@pytest.mark.parametrize("rule", ["coupled", "proximal"])
def test_epoch_hook_sees_every_epoch(rule: str) -> None:
    """With a hook the kernel runs epoch by epoch; the hook gets the same weights as the
    reference's hook (the per-epoch-loss mode of ``train_population``)."""
    group = make_group("l2", rule)
    seen: dict[str, list[tuple[int, torch.Tensor, torch.Tensor]]] = {"kernel": [], "ref": []}
    train_group_triton(group, lambda e, w, b: seen["kernel"].append((e, w.clone(), b.clone())))
    train_group_reference(group, lambda e, w, b: seen["ref"].append((e, w.clone(), b.clone())))
    assert [e for e, _, _ in seen["kernel"]] == list(range(EPOCHS))
    for (_, w, b), (_, w_ref, b_ref) in zip(seen["kernel"], seen["ref"], strict=True):
        assert b.shape == b_ref.shape
        assert_close(w, b.squeeze(-1), w_ref, b_ref.squeeze(-1))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the interpreter's numpy sees inf − inf
@pytest.mark.parametrize("loop", ["scratch", "proximal"])
def test_divergence_matches_train(loop: str) -> None:
    """Too large a step: the same runs diverge, after the same epoch, as in ``wdbench.train``."""
    probs = problems()
    rates = (0.01, 0.02, 0.03, 4.0, 400.0, 0.005, 4000.0, 1e5)  # 8 share the seed: one group
    cfgs = [wdbench.TrainConfig(penalty="l1", lam=0.1, lr=lr, loop=loop, epochs=6,
                                batch_size=BATCH, seed=SEED) for lr in rates]  # fmt: skip
    got = wdbench.train_population(probs, cfgs, device=DEVICE, backend="triton")
    for s, problem in enumerate(probs):
        for k, config in enumerate(cfgs):
            ref = wdbench.train(problem, config, curves=False)
            assert got.status[s, k] == ref.status
            assert int(got.epochs_run[s, k]) == ref.epochs_run
    assert sorted(set(got.epochs_run[0].tolist())) == [3, 4, 5, 6]
    assert got.status[0, 0] == "ok" and got.status[0, 4] == "diverged"
    assert got.w is not None and not bool(torch.isfinite(got.w[0, 4]).all())


def test_train_population_backend_triton_matches_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    """A mixed population (loops, penalties, curves) through ``backend="triton"``: every group
    goes through the kernel, and the results are the PyTorch path's."""
    calls = []

    def spy(group: Group, on_epoch: object) -> object:
        calls.append(group.penalty.name)
        return train_group_triton(group, on_epoch)  # type: ignore[arg-type]

    monkeypatch.setattr(wdbench.population._kernels, "train_group_triton", spy)
    probs = problems()
    groups = (("decoupled", "l2"), ("optim", "none"), ("optim", "elastic"), ("proximal", "l1"),
              ("proximal", "l2"))  # fmt: skip
    lams = (0.05, 0.5, 2.0, 0.0, 1.0, 0.3, 0.2, 0.1)  # ≥ 8 configurations share the seed
    cfgs = [
        wdbench.TrainConfig(
            penalty=pen,
            lam=lam,
            lr=0.02,
            loop=loop,
            epochs=EPOCHS,
            batch_size=BATCH,
            seed=SEED,
            l1_ratio=0.6,
        )
        for loop, pen in groups
        for lam in lams
    ]
    got = wdbench.train_population(probs, cfgs, DEVICE, curves=True, backend="triton")
    assert len(calls) == 5
    ref = wdbench.train_population(probs, cfgs, DEVICE, curves=True, backend="reference")
    assert got.w is not None and ref.w is not None
    assert_close(got.w, got.b, ref.w, ref.b)
    for name in ("train_loss", "val_loss", "test_loss"):
        torch.testing.assert_close(getattr(got, name), getattr(ref, name), rtol=TOL, atol=0)
    assert got.curves is not None and ref.curves is not None
    for split, curve in got.curves.items():
        torch.testing.assert_close(curve, ref.curves[split], rtol=TOL, atol=0)


def test_rowspace_round_trip() -> None:
    """Rank-deficient X (a repeated row): the basis is orthonormal, of the rank's width, and the
    start coordinates rebuild w₀ exactly (σ = 1)."""
    X = torch.randn(2, 6, 9, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    X[:, 5] = X[:, 0]
    w0 = torch.randn(3, 9, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    space = RowSpace.of(X)
    assert space.dim == 6
    eye = space.basis.mT @ space.basis
    torch.testing.assert_close(eye, torch.eye(5, dtype=torch.float64).expand(2, 5, 5))
    torch.testing.assert_close(space.weights(space.start(w0), w0), w0.expand(2, 3, 9))
    rows = space.rows(X)
    torch.testing.assert_close(rows[..., :-1] @ space.start(w0)[..., :-1].mT, X @ w0.T)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"form": "dual"}, "form must be one of"),
        ({"layout": "row"}, "layout must be one of"),
        ({"block_k": 3}, "block_k must be 0"),
        ({"num_warps": -2}, "num_warps must be 0"),
    ],
)
def test_options_are_validated(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        KernelOptions(**options)  # type: ignore[arg-type]


def test_rowspace_form_refuses_an_l1_part() -> None:
    with pytest.raises(ValueError, match="row-space form needs"):
        train_group_triton(make_group("elastic", "coupled"), None, KernelOptions(form="rowspace"))


def test_float64_groups_are_refused() -> None:
    group = make_group("l2", "coupled")
    wide = dataclasses.replace(group, X=group.X.double(), y=group.y.double())
    with pytest.raises(ValueError, match="float32 groups"):
        train_group_triton(wide)


def test_benchmark_runs_one_variant(capsys: pytest.CaptureFixture[str]) -> None:
    """The benchmark's command line, at a toy size (on the CPU: through the interpreter)."""
    from benchmarks.tools import triton_sweep as bench

    argv = ["--k", "3", "--epochs", "1", "--repeats", "1", "--only", "elastic", "--no-baselines",
            "--device", DEVICE]  # fmt: skip
    assert bench.main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2  # elastic × (coupled, proximal) at the default options
    assert all("trajectories_per_s=" in line for line in lines)


def test_benchmark_refuses_bad_flags(capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks.tools import triton_sweep as bench

    assert bench.main(["--k", "0"]) == 2
    assert capsys.readouterr().err.strip() == "error: --k, --epochs and --repeats must be >= 1"
