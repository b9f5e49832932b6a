"""How close the CPU population kernel gets to this machine's compute limit, load or not.

``python -m benchmarks.tools.cpu_limit [--k 4096]`` measures this core's fp32 FMA peak (a probe
in the native kernel's library: independent vector FMAs, in FLOPs per second of the thread's
CPU time), turns it into a limit in trajectories per second for all usable cores (a trajectory
of the lesson's problem is ≈ 4.6 MFLOP in the full 200-dimensional space, a quarter of that in
the 50-dimensional row space that none / l2 run in), and times ``train_population`` on K
configurations of each path with one worker, by the thread's CPU time: trajectories per
CPU-second, which other processes on the machine do not change (they change the wall time).
Prints a markdown table; the wall-clock figures of the same paths are the ``population`` and
``threads`` benchmark groups.
"""

from __future__ import annotations

import argparse
import ctypes
import math
import os
import time
from collections.abc import Sequence

import optuna
import torch

import wdbench
from studies.space import sample_configs
from wdbench.population.native._build import library
from wdbench.threads import set_cpu_threads

#: FLOPs of one trajectory (1000 steps, batch 5): full space d = 200, row space n = 50.
FULL_FLOP, ROW_FLOP = 4.6e6, 4.6e6 * 50 / 200
PATHS = {
    "l2 (row space)": ("l2", "scratch", ROW_FLOP),
    "l1 proximal": ("l1", "proximal", FULL_FLOP),
    "l1 subgradient": ("l1", "scratch", FULL_FLOP),
    "elastic proximal": ("elastic", "proximal", FULL_FLOP),
}


def fma_peak() -> float:
    """This core's fp32 FMA peak, FLOP per CPU-second (best of 3)."""
    lib = library()
    if lib is None:
        raise SystemExit("error: the native kernel is unavailable here (no C++ compiler?)")
    probe = lib.wd_fma_probe
    probe.restype, probe.argtypes = ctypes.c_double, [ctypes.c_long, ctypes.c_void_p]
    sink = ctypes.c_float()
    best = 0.0
    for _ in range(3):
        start = time.thread_time()
        flops = probe(20_000_000, ctypes.byref(sink))
        best = max(best, flops / (time.thread_time() - start))
    return best


def cpu_rate(configs: list[wdbench.TrainConfig], problem: wdbench.Problem) -> float:
    """Trajectories per CPU-second of ``train_population`` with one worker (best of 3)."""
    wdbench.train_population(problem, configs[:64], keep_weights=False)
    best = math.inf
    for _ in range(3):
        start = time.thread_time()
        wdbench.train_population(problem, configs, keep_weights=False)
        best = min(best, time.thread_time() - start)
    return len(configs) / best


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tools.cpu_limit",
                                     description=__doc__.split("\n\n")[0])  # fmt: skip
    parser.add_argument("--k", type=int, default=4096, help="configurations per call")
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    torch.set_num_threads(1)
    set_cpu_threads(1)
    cores = len(os.sched_getaffinity(0))
    peak = fma_peak()
    problem = wdbench.Problem.synthetic(seed=0)
    lams = torch.logspace(-5, 2, args.k, dtype=torch.float64).tolist()
    print(f"fp32 FMA peak {peak / 1e9:.1f} GFLOP/s per core × {cores} cores; "
          f"K = {args.k}; load average {os.getloadavg()[0]:.1f}\n")  # fmt: skip
    print("| path | limit (trajectories/s, all cores) | kernel (trajectories per CPU-s) | "
          "× cores | of the limit |")  # fmt: skip
    print("| --- | --- | --- | --- | --- |")
    rows = [(name, [wdbench.TrainConfig(penalty=p, lam=lam, loop=loop) for lam in lams], flop)
            for name, (p, loop, flop) in PATHS.items()]  # fmt: skip
    mix = sample_configs(args.k)
    rows.append(("search-space mix", mix, math.nan))
    for name, configs, flop in rows:
        rate = cpu_rate(configs, problem)
        limit = cores * peak / flop
        share = f"{rate * cores / limit:.0%}" if math.isfinite(limit) else "–"
        limit_text = f"{limit:,.0f}" if math.isfinite(limit) else "–"
        print(f"| {name} | {limit_text} | {rate:,.0f} | {rate * cores:,.0f} | {share} |")
    set_cpu_threads(None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
