"""Threads: the population kernel on an idle machine and beside one busy process.

Group ``threads``: ``train_population`` on K = 4096 configurations (``l2`` and ``l1`` proximal,
λ log-spaced; the lesson's problem, float32, one shared train seed), under each thread setting
(``policy`` in ``extra_info``):

* ``default`` — the policy of ``wdbench.threads`` as shipped: a pool of one worker per usable
  core or one worker, batch by batch, whichever measurably gets more CPU; torch at one intra-op
  thread (``chosen`` in ``extra_info``: batches run at each worker count, warm-up included);
* ``pool-1`` / ``pool-2`` — the same kernel with 1 or 2 pool workers;
* ``torch-1`` / ``torch-2`` — the torch kernels (``backend="torch"``) with torch's own 1 or 2
  intra-op threads and no pool: how the population ran before the policy;
* ``interleaved`` — ``default``, ``pool-1`` and ``pool-2`` call by call, in turn (the order
  rotated each round), so that the three meet the same load: on a shared machine the load moves
  by tens of percent between cases timed one after another. A round is one call of each;
  ``extra_info`` has each setting's trajectories/s (``rates``, median over the recorded rounds)
  and ``default_vs_best``: how much slower the default is than the better of 1 and 2 threads
  (negative: faster). ``trajectories_per_s`` is the default's.

Each runs with ``load`` = ``idle`` and then ``busy``: beside one busy process that this module
starts (a Python spin loop, at most ``BUSY_MAX_S`` seconds) and stops when the busy cases are
done. ``os.getloadavg()`` is recorded with every case. The target: ``default`` is never more than
10 % slower than the best of 1 and 2 threads, idle or busy. Smoke setting: K = 16, idle only.
"""

from __future__ import annotations

import contextlib
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
import torch
from pytest_benchmark.fixture import BenchmarkFixture

import wdbench
from benchmarks._machine import device_info
from benchmarks._measure import Rounds, is_smoke, measure, record
from studies.cli import DEFAULTS
from wdbench.threads import choices, cpu_threads, set_cpu_threads

K, SMOKE_K = 4096, 16
POLICIES = ("default", "pool-1", "pool-2", "torch-1", "torch-2", "interleaved")
INTERLEAVED = ("default", "pool-1", "pool-2")
PENALTIES = {"l2": "scratch", "l1": "proximal"}
LOADS = ("idle", "busy")
PLAN = Rounds(rounds=3, warmup_rounds=1)
#: The torch settings are context (how it ran before the policy; slow, seconds a call): 1 round.
CONTEXT_PLAN = Rounds(rounds=1, warmup_rounds=1)
INTERLEAVED_PLAN = Rounds(rounds=7, warmup_rounds=1)
#: The busy neighbour stops by itself after this many seconds, whatever happens here.
BUSY_MAX_S = 240
BUSY_LOOP = "import time\nend = time.monotonic() + {s}\nwhile time.monotonic() < end:\n    pass\n"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "thread_policy" in metafunc.fixturenames:
        loads = LOADS[:1] if is_smoke(metafunc.config) else LOADS
        metafunc.parametrize("load", loads, indirect=True, scope="module")
        metafunc.parametrize("thread_policy", POLICIES)
        metafunc.parametrize("penalty", list(PENALTIES))


@pytest.fixture(scope="module")
def load(request: pytest.FixtureRequest) -> Iterator[str]:
    """``idle``, or ``busy`` with the neighbour process running for the cases that use it."""
    if request.param == "idle":
        yield "idle"
        return
    proc = subprocess.Popen([sys.executable, "-c", BUSY_LOOP.format(s=BUSY_MAX_S)])
    try:
        yield "busy"
    finally:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def thread_setting(policy: str) -> Iterator[tuple[str, int]]:
    """Apply ``policy``; yields (backend, threads in use)."""
    saved = torch.get_num_threads()
    try:
        if policy.startswith("torch-"):
            torch.set_num_threads(int(policy[-1]))
            yield "torch", int(policy[-1])
        else:
            set_cpu_threads(None if policy == "default" else int(policy[-1]))
            yield "auto", cpu_threads()
    finally:
        set_cpu_threads(None)
        torch.set_num_threads(saved)


def test_threads(
    benchmark: BenchmarkFixture, load: str, thread_policy: str, penalty: str, smoke: bool
) -> None:
    """K trajectories in one ``train_population`` call under one thread setting and load."""
    k = SMOKE_K if smoke else K
    low, high = (math.log10(v) for v in DEFAULTS.lam_range)
    lams = torch.logspace(low, high, k, dtype=torch.float64).tolist()
    configs = [wdbench.TrainConfig(penalty=penalty, lam=lam, loop=PENALTIES[penalty])
               for lam in lams]  # fmt: skip
    problem = wdbench.Problem.synthetic(seed=0).to("cpu", torch.float32)
    benchmark.group = "threads"
    device = torch.device("cpu")
    if thread_policy == "interleaved":
        _interleaved(benchmark, problem, configs, load, penalty)
        return
    with thread_setting(thread_policy) as (backend, threads):
        run = _runner(problem, configs, backend, intra_op=thread_policy.startswith("torch-"))
        plan = CONTEXT_PLAN if thread_policy.startswith("torch-") else PLAN
        before = choices()
        seconds = measure(benchmark, run, device, plan)
        chosen = {str(n): c - before.get(n, 0) for n, c in sorted(choices().items())}
    record(
        benchmark,
        {
            **device_info(device, "float32"),
            "K": k,
            "penalty": penalty,
            "policy": thread_policy,
            "threads": threads,
            "chosen": {n: c for n, c in chosen.items() if c},
            "load": load,
            "loadavg_1min": os.getloadavg()[0],
            "seconds": seconds,
            "trajectories_per_s": k / seconds,
        },
    )


def _runner(
    problem: wdbench.Problem, configs: list[wdbench.TrainConfig], backend: str, intra_op: bool
) -> Any:
    """The timed call; ``intra_op`` keeps torch's own thread count inside ``train_population``
    (as before the policy) instead of its one intra-op thread."""
    import wdbench.population._train as train_module

    def run() -> None:
        keep = (
            mock.patch.object(train_module, "one_op_thread", contextlib.nullcontext)
            if intra_op
            else contextlib.nullcontext()
        )
        with keep:
            result = wdbench.train_population(problem, configs, keep_weights=False, backend=backend)
        assert not bool(result.diverged.any())

    return run


def _interleaved(
    benchmark: BenchmarkFixture,
    problem: wdbench.Problem,
    configs: list[wdbench.TrainConfig],
    load: str,
    penalty: str,
) -> None:
    """``INTERLEAVED`` call by call; records each one's rate and the default's shortfall."""
    run = _runner(problem, configs, "auto", intra_op=False)
    seconds: dict[str, list[float]] = {policy: [] for policy in INTERLEAVED}
    turn = [0]

    def one_round() -> None:
        shift = turn[0] % len(INTERLEAVED)
        turn[0] += 1
        for policy in INTERLEAVED[shift:] + INTERLEAVED[:shift]:
            with thread_setting(policy):
                start = time.perf_counter()
                run()
                seconds[policy].append(time.perf_counter() - start)

    before = choices()
    measure(benchmark, one_round, torch.device("cpu"), INTERLEAVED_PLAN)
    chosen = {str(n): c - before.get(n, 0) for n, c in sorted(choices().items())}
    skip = INTERLEAVED_PLAN.warmup_rounds if benchmark.enabled else 0
    rates = {p: len(configs) / statistics.median(v[skip:]) for p, v in seconds.items()}
    record(
        benchmark,
        {
            **device_info(torch.device("cpu"), "float32"),
            "K": len(configs),
            "penalty": penalty,
            "policy": "interleaved",
            "threads": cpu_threads(),
            "chosen": {n: c for n, c in chosen.items() if c},
            "load": load,
            "loadavg_1min": os.getloadavg()[0],
            "rates": rates,
            "default_vs_best": 1 - rates["default"] / max(rates["pool-1"], rates["pool-2"]),
            "trajectories_per_s": rates["default"],
        },
    )
