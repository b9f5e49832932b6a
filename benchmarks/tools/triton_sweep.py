"""Time the fused kernel on the lesson's problem: trajectories per second, per variant.

``python -m benchmarks.tools.triton_sweep`` trains K configurations (default 262,144; λ log-spaced
in [1e-5, 1e2], η = 0.003, one train seed) of the lesson's problem (d = 200, n = 50, batch 5, 100
epochs = 1000 steps) and prints one line per variant: the median seconds of a launch (CUDA
synchronized; data built outside the timed region), trajectories/s = K·S / seconds, and that rate as
a fraction of the card's float32 limit for this workload, peak FLOP/s ÷ (2·2·B·d + 3·d) FLOP per
step (4.6 MFLOP a trajectory at d = 200: ≈14M/s on an H100 SXM). The default sweep is L2 over the
forms, layouts, block sizes and warps, every penalty and rule at the default options, and the
PyTorch group kernels as baselines. ``--json FILE`` appends one JSON record per line (card, date,
command, variant, figures).
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import torch

from wdbench.order import batch_order, init_params
from wdbench.penalties import get_penalty
from wdbench.population._group import Group, GroupOutput, train_group_reference
from wdbench.population._rowspace import rowspace_applies, train_group_rowspace
from wdbench.population.triton import KernelOptions, train_group_triton
from wdbench.problems import Problem
from wdbench.rules import get_rule

__all__ = ["SWEEP", "Case", "main"]

#: float32 FLOP/s of the cards this was written for (dense, no tensor cores).
PEAK_FLOPS = {"H100 PCIe": 51e12, "H100": 67e12, "H200": 67e12, "A100": 19.5e12}


@dataclass(frozen=True)
class Case:
    """One timed variant: penalty, rule, and the kernel (``triton`` with its options, or one of
    the PyTorch group kernels ``reference`` / ``rowspace``)."""

    penalty: str
    rule: str
    kernel: str = "triton"
    options: KernelOptions = field(default_factory=KernelOptions)


def _sweep() -> tuple[Case, ...]:
    """L2 over the tilings (thread: one configuration per thread, block = 32·warps; warp: a few
    configurations per warp), every penalty and rule at the defaults, then the baselines."""
    thread = [("rowspace", "thread", 32 * w, w) for w in (1, 2, 4, 8)]
    warp = [(f, "warp", k, w) for f in ("rowspace", "full") for k, w in ((2, 1), (4, 1), (8, 1))]
    l2 = [Case("l2", "coupled", options=KernelOptions(*tiling)) for tiling in (*thread, *warp)]
    rules = [Case(p, r) for p in ("none", "l2", "l1", "elastic") for r in ("coupled", "proximal")]
    baselines = [Case("l2", "coupled", "reference"), Case("l2", "coupled", "rowspace"),
                 Case("l1", "coupled", "reference")]  # fmt: skip
    return (*l2, *rules, *baselines)


SWEEP = _sweep()


def lesson_group(k: int, case: Case, epochs: int, device: torch.device) -> Group:
    """K configurations of ``case`` on the lesson's problem, as ``train_population`` groups them."""
    problem = Problem.synthetic(seed=0).to(device, torch.float32)
    seed, dim, n = 0, problem.dim, problem.n_train
    lam = torch.logspace(-5, 2, k, dtype=torch.float64).unsqueeze(1)
    w0 = init_params(dim, 1.0, seed)[0].to(device, torch.float32)
    return Group(
        X=problem.X_train[None], y=problem.y_train[None],
        order=batch_order(n, epochs, seed)[None].to(device), w0=w0.expand(k, dim).contiguous(),
        lr=torch.full((k, 1), 0.003, device=device), lam=lam.to(device, torch.float32),
        l1_ratio=torch.full((k, 1), 0.5, device=device), penalty=get_penalty(case.penalty),
        rule=get_rule(case.rule), batch_size=5,
    )  # fmt: skip


def runner(case: Case) -> Callable[[Group], GroupOutput]:
    if case.kernel == "reference":
        return train_group_reference
    if case.kernel == "rowspace":
        return train_group_rowspace
    return lambda group: train_group_triton(group, None, case.options)


def time_case(case: Case, k: int, epochs: int, repeats: int, device: torch.device) -> float:
    """Median seconds of one call (after one untimed call that compiles and warms up)."""
    group, run = lesson_group(k, case, epochs, device), runner(case)
    if case.kernel == "rowspace" and not rowspace_applies(group):
        raise ValueError(f"the rowspace baseline needs none or l2, got {case.penalty}")
    seconds = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        run(group)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds[1:])


def flop_per_trajectory(epochs: int, n: int = 50, dim: int = 200, batch: int = 5) -> int:
    """Full-space float32 work of one trajectory: steps × (2·2·B·d + 3·d) (dots, gradient sum,
    update) — the yardstick for every form, so rates compare across forms."""
    return epochs * -(-n // batch) * (2 * 2 * batch * dim + 3 * dim)


def peak_flops(device: torch.device, given: float | None) -> float | None:
    if given is not None or device.type != "cuda":
        return given
    name = torch.cuda.get_device_name(device)
    return next((v for key, v in PEAK_FLOPS.items() if key in name), None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.tools.triton_sweep", description=__doc__
    )
    parser.add_argument("--k", type=int, default=262_144, help="configurations per launch")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per variant")
    parser.add_argument("--only", default="", help="comma-separated penalties to keep")
    parser.add_argument("--no-baselines", action="store_true", help="skip the PyTorch kernels")
    parser.add_argument("--device", default="cuda", help="cuda (cpu: Triton's interpreter)")
    parser.add_argument("--peak-tflops", type=float, default=None, help="float32 TFLOP/s")
    parser.add_argument("--json", default=None, help="append one JSON record per variant here")
    args = parser.parse_args(argv)
    error = _check(args)
    if error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    device = torch.device(args.device)
    peak = peak_flops(device, None if args.peak_tflops is None else args.peak_tflops * 1e12)
    card = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu (interpreter)"
    keep = set(args.only.split(",")) if args.only else None
    for case in SWEEP:
        if (keep and case.penalty not in keep) or (args.no_baselines and case.kernel != "triton"):
            continue
        seconds = time_case(case, args.k, args.epochs, args.repeats, device)
        rate = args.k / seconds
        flop = flop_per_trajectory(args.epochs)
        command = ["python", "-m", "benchmarks.tools.triton_sweep", *(argv or [])]
        record = {"card": card, "date": datetime.now(UTC).isoformat(timespec="seconds"),
                  "command": shlex.join(command),
                  "penalty": case.penalty, "rule": case.rule, "kernel": case.kernel,
                  **asdict(case.options), "K": args.k, "epochs": args.epochs,
                  "seconds": seconds, "trajectories_per_s": rate,
                  "fraction_of_fp32_limit": rate * flop / peak if peak else None}  # fmt: skip
        print(" ".join(f"{key}={value}" for key, value in record.items()
                       if key not in ("card", "date", "command")), flush=True)  # fmt: skip
        if args.json:
            with open(args.json, "a") as f:
                f.write(json.dumps(record) + "\n")
    return 0


def _check(args: argparse.Namespace) -> str | None:
    """A user mistake, said in one line (or None)."""
    if args.k < 1 or args.epochs < 1 or args.repeats < 1:
        return "--k, --epochs and --repeats must be >= 1"
    if args.device not in ("cuda", "cpu"):
        return f"--device must be cuda or cpu, got {args.device!r}"
    if args.device == "cuda" and not torch.cuda.is_available():
        return (
            "CUDA is not available: this benchmark needs a GPU "
            "(python -m benchmarks.tools.triton_sass inspects the compiled kernel without one)"
        )
    if args.device == "cpu":
        from wdbench.population.triton._jit import interpreted

        if not interpreted():
            return "--device cpu runs only under TRITON_INTERPRET=1 (Triton's interpreter)"
    return None


if __name__ == "__main__":
    sys.exit(main())
