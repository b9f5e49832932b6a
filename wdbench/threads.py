"""The CPU thread policy: independent chunks on a small pool, one intra-op thread each.

The population kernel's work per operation is small, so torch's intra-op threads gain little on
an idle machine and, beside any other busy process, spin against each other (one busy neighbour
halved the population speed on 2 cores; a load of 3 cut it 40×). The policy instead splits a
computation into independent chunks (blocks of configurations) and runs them on a pool of
worker threads, each doing its chunk alone — torch set to one intra-op thread while it runs —
and taking the next chunk when done. A worker that shares its core with another process only
takes fewer chunks; nothing waits on it in a spin loop.

``cpu_threads()`` is the pool's size: ``set_cpu_threads(n)`` if called, else
``$WDBENCH_THREADS``, else the cores this process may run on (at most ``MAX_THREADS``). The first
two are used exactly. By default (``thread_source() == "measured"``) each batch runs on the whole
pool or on one worker, whichever measurably gets more: a batch's CPU share (this process's CPU
seconds per wall second while it ran) is kept for both (a count's share: the largest of its last
``READINGS``), the one not in use is measured again after ``PROBE_S`` seconds (longer while the
readings confirm the choice), and the pool is used while it gets at least ``POOL_GAIN`` times
the share of one worker (``choose_workers``). More workers get more of the machine only where
the scheduler shares it per thread. Linux shares it per session first (``sched_autogroup``):
beside a busy process of another session two workers got the CPU of one (0.49 vs 0.50 of a core
on 2 cores) and, spending 5-10 % more CPU on the same work, 9 % fewer trajectories; beside a
busy process of this session (a report process) they took part of its share (0.64 vs 0.50:
18 % more), idle up to twice. ``planned_workers()`` is the count the next batch will use (chunks
are sized for it); ``choices()`` counts the batches run at each count.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

import torch

__all__ = [
    "MAX_THREADS",
    "POOL_GAIN",
    "POOL_THREAD_PREFIX",
    "PROBE_S",
    "choices",
    "choose_workers",
    "cpu_threads",
    "in_this_thread",
    "one_op_thread",
    "planned_workers",
    "run_parallel",
    "set_cpu_threads",
    "thread_source",
]

MAX_THREADS = 8
#: The pool is used while its CPU share is at least this many times one worker's (on two cores
#: the pool spends 5-10 % more CPU on the same work; a wrong choice of one worker costs up to
#: half the speed, a wrong choice of the pool at most that: the margin leans to the pool).
POOL_GAIN = 1.05
#: Seconds after which the worker count not in use is measured again (one batch); doubled up
#: to ``PROBE_MAX_S`` while the readings confirm the choice.
PROBE_S = 2.0
PROBE_MAX_S = 32.0
#: A change of the chosen count's share by more than this fraction (the load changed: one busy
#: process more or less on 2 cores moves it by 45-100 %; consecutive batches under the same load
#: differed by up to 27 %) brings the interval back to ``PROBE_S``.
SHARE_MOVED = 0.4
#: Shorter batches give no reading (a few scheduler ticks say little about the share).
MIN_READING_S = 0.02
#: A count's share is the largest of its last this many readings: what it can get under the
#: present load. One batch's reading is noisy (the pool's, beside a busy process of this
#: session, ranged 0.97-1.46 CPU-s/s from batch to batch); with the last reading alone one low
#: reading of the pool chose one worker for a whole benchmark case, 13-18 % slower than the pool.
READINGS = 3
T = TypeVar("T")

#: The name every pool thread starts with.
POOL_THREAD_PREFIX = "wdbench-pool"
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
    """Where the worker count comes from: ``"set"`` or ``"WDBENCH_THREADS"`` (exactly
    ``cpu_threads()``), or ``"measured"`` (the pool of the usable cores or one worker, batch by
    batch: see module)."""
    if _override is not None:
        return "set"
    return "WDBENCH_THREADS" if _env_threads() is not None else "measured"


def planned_workers() -> int:
    """The worker count the next batch runs on, for sizing its chunks: ``cpu_threads()`` where
    set, else the measured policy's choice at this moment."""
    pool = cpu_threads()
    if pool == 1 or thread_source() != "measured":
        return pool
    with _lock:
        return _measured.peek(pool, time.perf_counter())


def choose_workers(pool: int, share: dict[int, float]) -> int:
    """The worker count for the next batch from the CPU share measured with ``pool`` workers and
    with one (``share``: workers → CPU seconds per wall second): the pool unless its share is
    below ``POOL_GAIN`` times one worker's; the pool while either share is unknown."""
    if pool <= 1:
        return 1
    if pool not in share or 1 not in share:
        return pool
    return pool if share[pool] >= POOL_GAIN * share[1] else 1


def choices() -> dict[int, int]:
    """How many batches ran at each worker count under the measured policy (this process)."""
    with _lock:
        return dict(_measured.count)


class _Measured:
    """The measured policy's state: the CPU share at each worker count (the largest of its last
    ``READINGS`` readings), when each count last ran and how often, and the choice with its
    re-measuring interval: it doubles (up to ``PROBE_MAX_S``) each time a reading of the other
    count confirms the choice, and is back at ``PROBE_S`` when the choice changes or the chosen
    count's share moves by more than ``SHARE_MOVED`` (the load changed)."""

    def __init__(self) -> None:
        self.share: dict[int, float] = {}
        self.readings: dict[int, deque[float]] = {}
        self.tried: dict[int, float] = {}
        self.count: dict[int, int] = {}
        self.interval = PROBE_S
        self.choice: int | None = None
        self.reference = 0.0  # the chosen count's share when the choice was made
        self.pool = 1

    def peek(self, pool: int, now: float) -> int:
        """The count for a batch starting at ``now``: a count not run for ``interval`` seconds
        (the pool first), else ``choose_workers``."""
        stale = [n for n in (pool, 1) if now - self.tried.get(n, -float("inf")) >= self.interval]
        if stale:
            return stale[0]
        return choose_workers(pool, {n: self.share[n] for n in (pool, 1) if n in self.share})

    def workers(self, pool: int, now: float) -> int:
        """``peek``, counted as run at ``now``."""
        chosen = self.peek(pool, now)
        self.pool = pool
        self.tried[chosen] = now
        self.count[chosen] = self.count.get(chosen, 0) + 1
        return chosen

    def record(self, workers: int, wall: float, cpu: float) -> None:
        """A batch's reading: ``cpu`` seconds of this process in ``wall`` seconds on
        ``workers`` workers (none from a batch shorter than ``MIN_READING_S``); the count's share
        is then the largest of its last ``READINGS``."""
        if wall < MIN_READING_S:
            return
        readings = self.readings.setdefault(workers, deque(maxlen=READINGS))
        readings.append(cpu / wall)
        self.share[workers] = max(readings)
        known = {n: self.share[n] for n in (self.pool, 1) if n in self.share}
        if len(known) < 2 or self.pool == 1:
            return
        choice = choose_workers(self.pool, known)
        if choice != self.choice:
            self.choice, self.reference, self.interval = choice, known[choice], PROBE_S
        elif workers != choice:  # the other count measured again, and the choice holds
            self.interval = min(2 * self.interval, PROBE_MAX_S)
        elif abs(known[choice] - self.reference) > SHARE_MOVED * self.reference:
            self.reference, self.interval = known[choice], PROBE_S


_measured = _Measured()


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
    pool = cpu_threads()
    here = threading.current_thread().name
    nested = here.startswith(POOL_THREAD_PREFIX) or getattr(_local, "serial", False)
    if pool == 1 or len(tasks) <= 1 or nested:
        return [task() for task in tasks]
    done: list[T] = []
    while len(done) < len(tasks) and _inline():  # in_this_thread: here, task by task
        done.append(tasks[len(done)]())
    if len(done) == len(tasks):
        return done
    if thread_source() != "measured":
        return done + _run(tasks[len(done) :], pool)
    start, cpu = time.perf_counter(), time.process_time()
    with _lock:
        workers = _measured.workers(pool, start)
    out = _run(tasks[len(done) :], workers)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    with _lock:
        _measured.record(workers, wall, cpu)
    return done + out


def _run(tasks: Sequence[Callable[[], T]], workers: int) -> list[T]:
    """``tasks`` on ``workers`` pool threads (here, one after another, for one: a call nested
    in them runs here too, as it would in a pool worker)."""
    if workers == 1:
        _local.serial = True
        try:
            return [task() for task in tasks]
        finally:
            _local.serial = False
    with _lock:
        pool = _pools.get(workers)
        if pool is None:
            pool = _pools[workers] = ThreadPoolExecutor(
                workers, thread_name_prefix=POOL_THREAD_PREFIX
            )
    futures = [pool.submit(task) for task in tasks]
    return [future.result() for future in futures]
