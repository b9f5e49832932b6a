"""The CPU thread policy of ``wdbench.threads``."""

from __future__ import annotations

import threading

import pytest
import torch

import wdbench.threads as threads_module
from wdbench.threads import (
    POOL_GAIN,
    PROBE_MAX_S,
    PROBE_S,
    choices,
    choose_workers,
    cpu_threads,
    in_this_thread,
    one_op_thread,
    planned_workers,
    run_parallel,
    set_cpu_threads,
    thread_source,
)


@pytest.fixture(autouse=True)
def _default_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WDBENCH_THREADS", raising=False)
    monkeypatch.setattr(threads_module, "_measured", threads_module._Measured())
    set_cpu_threads(None)
    yield
    set_cpu_threads(None)


def test_default_is_the_usable_cores_then_env_then_set(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    cores = len(os.sched_getaffinity(0))
    assert cpu_threads() == max(1, min(8, cores)) and thread_source() == "measured"
    monkeypatch.setenv("WDBENCH_THREADS", "3")
    assert cpu_threads() == 3 and thread_source() == "WDBENCH_THREADS"
    set_cpu_threads(5)
    assert cpu_threads() == 5 and thread_source() == "set"


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "2"])
def test_set_rejects_non_counts(bad: object) -> None:
    with pytest.raises(ValueError, match="threads must be an integer >= 1"):
        set_cpu_threads(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["0", "two", "-3"])
def test_env_rejects_non_counts(monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    monkeypatch.setenv("WDBENCH_THREADS", bad)
    with pytest.raises(ValueError, match="WDBENCH_THREADS must be an integer >= 1"):
        cpu_threads()


def test_run_parallel_keeps_order_uses_the_pool_and_raises() -> None:
    set_cpu_threads(3)
    seen: set[str] = set()

    def task(i: int) -> int:
        seen.add(threading.current_thread().name)
        return i * i

    assert run_parallel([lambda i=i: task(i) for i in range(20)]) == [i * i for i in range(20)]
    assert all(name.startswith("wdbench") for name in seen)

    def boom() -> int:
        raise RuntimeError("chunk failed")

    with pytest.raises(RuntimeError, match="chunk failed"):
        run_parallel([lambda: 1, boom])


def test_one_worker_runs_in_the_calling_thread() -> None:
    set_cpu_threads(1)
    names = run_parallel([lambda: threading.current_thread().name] * 3)
    assert names == [threading.current_thread().name] * 3


def test_one_op_thread_restores_the_setting() -> None:
    saved = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with one_op_thread():
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(saved)


def test_a_nested_call_runs_inline_instead_of_waiting_on_its_own_pool() -> None:
    set_cpu_threads(2)

    def outer(i: int) -> list[int]:
        return run_parallel([lambda j=j: 10 * i + j for j in range(3)])

    assert run_parallel([lambda i=i: outer(i) for i in range(4)]) == [
        [10 * i + j for j in range(3)] for i in range(4)
    ]


def test_in_this_thread_runs_here_until_told_then_hands_the_rest_to_the_pool() -> None:
    set_cpu_threads(2)
    here = threading.current_thread().name
    release = threading.Event()

    def task(i: int) -> tuple[int, str]:
        if i == 2:
            release.set()  # from the next task on, the pool takes over
        return i, threading.current_thread().name

    with in_this_thread(until=release.is_set):
        out = run_parallel([lambda i=i: task(i) for i in range(6)])
    assert [i for i, _ in out] == list(range(6))
    assert [name for _, name in out[:3]] == [here] * 3
    assert all(name.startswith("wdbench-pool") for _, name in out[3:])
    with in_this_thread():
        assert run_parallel([lambda: threading.current_thread().name] * 3) == [here] * 3
    assert all(n != here for n in run_parallel([lambda: threading.current_thread().name] * 4))


def test_the_pool_is_chosen_only_where_it_gets_more_cpu_than_one_worker() -> None:
    # idle: two workers get about twice the CPU of one
    assert choose_workers(2, {2: 1.9, 1: 1.0}) == 2
    # beside a busy process of another session: the session's share, whatever the threads
    assert choose_workers(2, {2: 0.49, 1: 0.50}) == 1
    # beside a busy process of this session: the pool takes part of its share
    assert choose_workers(2, {2: 0.64, 1: 0.50}) == 2
    # the margin: two workers spend more CPU on the same work
    assert choose_workers(4, {4: POOL_GAIN * 1.0 - 0.01, 1: 1.0}) == 1
    assert choose_workers(4, {4: POOL_GAIN * 1.0, 1: 1.0}) == 4
    # unknown: the pool; one core: one worker
    assert choose_workers(2, {1: 1.0}) == 2 and choose_workers(2, {}) == 2
    assert choose_workers(1, {1: 1.0}) == 1


def test_each_count_is_measured_again_once_it_has_not_run_for_a_while() -> None:
    state = threads_module._Measured()
    assert state.workers(2, 0.0) == 2  # the pool first
    assert state.workers(2, 0.1) == 1  # then one worker, once
    state.record(2, 0.5, 0.5)  # the pool got no more CPU than one worker
    state.record(1, 0.5, 0.5)
    assert [state.workers(2, t) for t in (0.2, 1.0, 1.9)] == [1, 1, 1]
    assert state.workers(2, PROBE_S + 0.01) == 2  # the pool again, PROBE_S after it last ran
    state.record(2, 0.5, 0.95)  # ... and now it gets more
    assert state.workers(2, PROBE_S + 0.1) == 2
    due = 1.9 + PROBE_S  # one worker is due again; peek does not count it as run
    assert state.peek(2, due) == 1 and state.peek(2, due) == 1 and state.count == {2: 3, 1: 4}
    state.record(1, 0.01, 0.0)  # too short a batch: no reading
    assert state.share[1] == 1.0  # the last reading (0.5 CPU-s in 0.5 s)


def test_readings_that_confirm_the_choice_space_out_the_next_ones() -> None:
    state = threads_module._Measured()
    state.workers(2, 0.0)
    state.record(2, 0.5, 0.9)
    state.workers(2, 0.1)
    state.record(1, 0.5, 0.5)  # the pool gets 1.8x the CPU of one worker: the pool
    assert state.choice == 2 and state.interval == PROBE_S
    intervals = []
    for _ in range(6):  # one worker measured again each time it is due, the same as before
        due = state.tried[1] + state.interval
        assert state.workers(2, due - 0.01) == 2 and state.workers(2, due + 1e-6) == 1
        state.record(1, 0.5, 0.5)
        intervals.append(state.interval)
    assert intervals == [min(PROBE_S * 2**i, PROBE_MAX_S) for i in range(1, 7)]
    now = state.tried[1] + 1.0
    assert state.workers(2, now) == 2
    state.record(2, 0.5, 0.8)  # within SHARE_MOVED of 1.8: the same load
    assert state.interval == PROBE_MAX_S
    state.record(2, 0.5, 0.5)  # one low reading: the largest of the last READINGS stays
    state.record(2, 0.5, 0.5)
    assert state.share[2] == 1.6 and state.interval == PROBE_MAX_S
    state.record(2, 0.5, 0.5)  # READINGS low ones: fell by 44 %, the load changed
    assert state.share[2] == 1.0 and state.interval == PROBE_S and state.reference == 1.0
    soon = now + PROBE_S - 0.5  # PROBE_S after one worker last ran
    assert state.workers(2, soon) == 1  # one worker measured again
    state.record(1, 0.5, 0.5)  # ... and now it gets as much as the pool: one worker
    assert state.choice == 1 and state.workers(2, soon + 0.1) == 1


def test_one_low_reading_of_the_pool_does_not_choose_one_worker() -> None:
    """Beside a busy process of this session the pool's readings ranged 0.97-1.46 CPU-s/s;
    its share is the largest of its last ``READINGS``, so one reading at one worker's level
    keeps the pool, and only ``READINGS`` such readings in a row choose one worker."""
    state = threads_module._Measured()
    state.workers(2, 0.0)
    state.record(2, 0.5, 0.65)  # 1.3
    state.workers(2, 0.1)
    state.record(1, 0.5, 0.5)  # 1.0: the pool
    assert state.choice == 2
    for reading in (0.97, 0.99):
        state.record(2, 0.5, 0.5 * reading)
        assert state.choice == 2 and state.share[2] == 1.3
    state.record(2, 0.5, 0.5)
    assert state.share[2] == 1.0 and state.choice == 1


def _share_readings(monkeypatch: pytest.MonkeyPatch, pool: float, one: float) -> None:
    """The measured policy's readings, as if just taken (no timing in the test)."""
    state = threads_module._Measured()
    now = threads_module.time.perf_counter()
    state.share, state.tried = {2: pool, 1: one}, {2: now, 1: now}
    monkeypatch.setattr(threads_module, "_measured", state)
    monkeypatch.setattr(threads_module, "_available_cores", lambda: 2)


def test_run_parallel_follows_the_measured_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    here = threading.current_thread().name

    def names() -> list[str]:
        inner = [lambda: threading.current_thread().name] * 3
        return run_parallel([lambda: run_parallel(inner)] * 4)[0] + run_parallel(inner)

    _share_readings(monkeypatch, pool=0.5, one=0.5)
    assert planned_workers() == 1
    assert names() == [here] * 6  # one worker: here, nested calls too
    assert choices() == {1: 2}
    _share_readings(monkeypatch, pool=1.8, one=1.0)
    assert planned_workers() == 2
    assert all(n.startswith("wdbench-pool") for n in names())
    assert choices() == {2: 2}


def test_set_and_env_are_exact_whatever_was_measured(monkeypatch: pytest.MonkeyPatch) -> None:
    _share_readings(monkeypatch, pool=0.5, one=0.5)  # the measured policy would take one
    set_cpu_threads(2)
    assert planned_workers() == 2
    assert all(n.startswith("wdbench-pool") for n in run_parallel([_name] * 4))
    set_cpu_threads(None)
    monkeypatch.setenv("WDBENCH_THREADS", "2")
    assert planned_workers() == 2 and thread_source() == "WDBENCH_THREADS"
    assert all(n.startswith("wdbench-pool") for n in run_parallel([_name] * 4))
    assert choices() == {}


def _name() -> str:
    return threading.current_thread().name
