"""The CPU thread policy of ``wdbench.threads``."""

from __future__ import annotations

import threading

import pytest
import torch

from wdbench.threads import (
    cpu_threads,
    in_this_thread,
    one_op_thread,
    run_parallel,
    set_cpu_threads,
    thread_source,
)


@pytest.fixture(autouse=True)
def _default_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WDBENCH_THREADS", raising=False)
    set_cpu_threads(None)
    yield
    set_cpu_threads(None)


def test_default_is_the_usable_cores_then_env_then_set(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    cores = len(os.sched_getaffinity(0))
    assert cpu_threads() == max(1, min(8, cores)) and thread_source() == "cores"
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
