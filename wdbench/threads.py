"""The CPU thread policy: independent chunks on a small pool, one intra-op thread each.

The population kernel's work per operation is small, so torch's intra-op threads gain little on
an idle machine and, beside any other busy process, spin against each other (one busy neighbour
halved the population speed on 2 cores; a load of 3 cut it 40×). The policy instead splits a
computation into independent chunks (blocks of configurations) and runs them on a pool of
``cpu_threads()`` worker threads, each doing its chunk alone — torch set to one intra-op thread
while it runs — and taking the next chunk when done. A worker that shares its core with another
process only takes fewer chunks; nothing waits on it in a spin loop.

``cpu_threads()`` is ``set_cpu_threads(n)`` if called, else ``$WDBENCH_THREADS``, else the cores
this process may run on (at most ``MAX_THREADS``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

import torch

__all__ = [
    "MAX_THREADS",
    "cpu_threads",
    "in_this_thread",
    "one_op_thread",
    "run_parallel",
    "set_cpu_threads",
    "thread_source",
]

MAX_THREADS = 8
T = TypeVar("T")

_PREFIX = "wdbench-pool"
_override: int | None = None
_pools: dict[int, ThreadPoolExecutor] = {}
_lock = threading.Lock()
_local = threading.local()


def set_cpu_threads(n: int | None) -> None:
    """Use ``n`` workers from now on (``None``: back to the default)."""
    global _override
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"threads must be an integer >= 1, got {n!r}")
    _override = n


def cpu_threads() -> int:
    """How many workers the CPU kernels use (see module)."""
    if _override is not None:
        return _override
    env = _env_threads()
    if env is not None:
        return env
    return max(1, min(MAX_THREADS, _available_cores()))


def thread_source() -> str:
    """Where ``cpu_threads()`` comes from: ``"set"``, ``"WDBENCH_THREADS"`` or ``"cores"``."""
    if _override is not None:
        return "set"
    return "WDBENCH_THREADS" if _env_threads() is not None else "cores"


def _env_threads() -> int | None:
    value = os.environ.get("WDBENCH_THREADS", "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"WDBENCH_THREADS must be an integer >= 1, got {value!r}")
    return int(value)


def _available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


@contextmanager
def one_op_thread() -> Iterator[None]:
    """Torch at one intra-op thread inside the block (restored after)."""
    saved = torch.get_num_threads()
    if saved != 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if saved != 1:
            torch.set_num_threads(saved)


@contextmanager
def in_this_thread(until: Callable[[], bool] | None = None) -> Iterator[None]:
    """Inside the block, ``run_parallel`` called from this thread runs its tasks here, one after
    another (until ``until()`` is true, if given: the tasks left then go to the pool): work
    beside other work, which must not queue ahead of it on the pool."""
    saved = getattr(_local, "inline", None)
    _local.inline = until or (lambda: False)
    try:
        yield
    finally:
        _local.inline = saved


def _inline() -> bool:
    until = getattr(_local, "inline", None)
    return until is not None and not until()


def run_parallel(tasks: Sequence[Callable[[], T]]) -> list[T]:
    """Run independent ``tasks`` on the pool (in this thread when there is one worker or one
    task, or when this thread is a pool worker: a nested call never waits on its own pool) and
    return their results in order; the first error is raised."""
    workers = cpu_threads()
    nested = threading.current_thread().name.startswith(_PREFIX)
    if workers == 1 or len(tasks) <= 1 or nested:
        return [task() for task in tasks]
    done: list[T] = []
    while len(done) < len(tasks) and _inline():  # in_this_thread: here, task by task
        done.append(tasks[len(done)]())
    if len(done) == len(tasks):
        return done
    with _lock:
        pool = _pools.get(workers)
        if pool is None:
            pool = _pools[workers] = ThreadPoolExecutor(workers, thread_name_prefix=_PREFIX)
    futures = [pool.submit(task) for task in tasks[len(done) :]]
    return done + [future.result() for future in futures]
