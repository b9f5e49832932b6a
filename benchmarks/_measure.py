"""Measuring right: devices, CUDA synchronization, round plans and the smoke setting.

Every suite times only the kernel: data and models are built outside the timed region (in the
test body or in ``pedantic``'s ``setup``), CUDA is synchronized at the end of each timed call
(one call = one round boundary; a call is a whole run, a step or a study), and warm-up rounds pay
module loading and first-call costs before any round is recorded.

With ``--benchmark-disable`` (the smoke setting the test suite uses) each target runs once, the
suites pick their smallest sizes, and the figures put in ``extra_info`` come from that one call.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import torch
from _pytest.mark.structures import ParameterSet
from pytest_benchmark.fixture import BenchmarkFixture

__all__ = [
    "NO_CUDA",
    "Rounds",
    "cuda_marks",
    "device_params",
    "is_smoke",
    "measure",
    "optim_impl_missing",
    "record",
    "synchronize",
]

NO_CUDA = "CUDA is not available on this machine (the CPU cases still run)"
Setup = Callable[[], tuple[tuple[Any, ...], dict[str, Any]]]

#: ``extra_info`` keys each group must carry (the report reads them; see docs/outputs.md).
REQUIRED_INFO: dict[str, tuple[str, ...]] = {
    "update-loops-run": ("device", "dtype", "loop", "penalty"),
    "update-loops-step": ("device", "dtype", "loop", "penalty"),
    "population": ("device", "dtype", "K", "trajectories_per_s", "speedup_vs_scratch"),
    "scaling": ("device", "dtype", "d", "n_train", "kind"),
    "study": ("device", "dtype", "variant", "trials", "ratio"),
    "threads": ("device", "dtype", "K", "policy", "load", "trajectories_per_s"),
    "networks-run": ("device", "dtype", "variant", "K", "seconds_per_network", "ratio_vs_torch_nn"),
    "networks-step": (
        "device",
        "dtype",
        "variant",
        "K",
        "seconds_per_network",
        "ratio_vs_torch_nn",
    ),
}


@dataclass(frozen=True)
class Rounds:
    """How many recorded rounds, warm-up rounds and calls per round a benchmark makes."""

    rounds: int
    warmup_rounds: int = 1
    iterations: int = 1


def device_params(cuda: bool = True) -> list[ParameterSet]:
    """``cpu``, and ``cuda`` (marked ``cuda``, skipped with a reason when CUDA is absent)."""
    params = [pytest.param("cpu", id="cpu")]
    if cuda:
        params.append(pytest.param("cuda", id="cuda", marks=cuda_marks()))
    return params


def cuda_marks() -> list[pytest.MarkDecorator]:
    """The ``cuda`` marker, and a skip with the reason when CUDA is absent."""
    return [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA)]


def is_smoke(config: pytest.Config) -> bool:
    """True when benchmarking is disabled: every target then runs once, at its smallest size."""
    return bool(config.getoption("benchmark_disable")) and not config.getoption("benchmark_enable")


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(
    benchmark: BenchmarkFixture,
    target: Callable[..., object],
    device: torch.device,
    plan: Rounds,
    setup: Setup | None = None,
) -> float:
    """Time ``target`` with ``benchmark.pedantic``; return the median seconds of one call.

    The device is synchronized at the end of every call, so a call's time covers its own work.
    ``setup`` (run outside the timed region before each round) returns ``(args, kwargs)``; it
    rules out ``plan.iterations > 1``. When benchmarking is disabled the target runs once and
    that call's wall time is returned.
    """

    def timed(*args: Any, **kwargs: Any) -> None:
        target(*args, **kwargs)
        synchronize(device)

    if not benchmark.enabled:
        seconds: list[float] = []

        def once(*args: Any, **kwargs: Any) -> None:
            start = time.perf_counter()
            timed(*args, **kwargs)
            seconds.append(time.perf_counter() - start)

        benchmark.pedantic(once, setup=setup, rounds=1)  # type: ignore[no-untyped-call]
        return seconds[0]
    benchmark.pedantic(  # type: ignore[no-untyped-call]
        timed,
        setup=setup,
        rounds=plan.rounds,
        warmup_rounds=plan.warmup_rounds,
        iterations=plan.iterations,
    )
    assert benchmark.stats is not None
    return float(benchmark.stats.stats.median)


def optim_impl_missing(impl: str, device: torch.device, optimizer: str = "SGD") -> str | None:
    """Why ``torch.optim.<optimizer>`` cannot run implementation ``impl`` on ``device`` (None if
    it can)."""
    flags = {"for-loop": {"foreach": False}, "foreach": {"foreach": True}, "fused": {"fused": True}}
    if impl not in flags:
        return None
    p = torch.zeros(2, device=device, requires_grad=True)
    try:
        opt = getattr(torch.optim, optimizer)([p], lr=0.1, **flags[impl])
        p.sum().backward()  # type: ignore[no-untyped-call]
        opt.step()
    except (RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"torch {torch.__version__} has no {impl} {optimizer} on {device.type}: {first}"
    return None


def record(benchmark: BenchmarkFixture, info: dict[str, Any]) -> None:
    """Add ``info`` to the benchmark's ``extra_info``; fail if its group's keys are missing."""
    benchmark.extra_info.update(info)
    group = benchmark.group
    if group not in REQUIRED_INFO:
        raise AssertionError(f"unknown benchmark group {group!r}")
    missing = [key for key in REQUIRED_INFO[group] if benchmark.extra_info.get(key) is None]
    if missing:
        raise AssertionError(f"group {group!r} lacks extra_info {missing}")
