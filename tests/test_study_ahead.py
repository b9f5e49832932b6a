"""``studies.ahead``: the grid and the oracles beside the search, same results, errors loud."""

from __future__ import annotations

import threading
import time

import pytest

from studies.ahead import Ahead, Cancelled
from wdbench.threads import run_parallel, set_cpu_threads


@pytest.fixture(autouse=True)
def _two_workers() -> None:
    set_cpu_threads(2)
    yield
    set_cpu_threads(None)


def test_jobs_run_beside_the_caller_in_order_and_give_their_results() -> None:
    order: list[str] = []
    names: dict[str, str] = {}

    def job(name: str, value: int) -> int:
        order.append(name)
        names[name] = threading.current_thread().name
        time.sleep(0.05)
        return value

    ahead = Ahead({"grid": lambda: job("grid", 1), "oracles": lambda: job("oracles", 2)}, True)
    assert ahead.in_background
    ahead.search_done()
    assert ahead.result("oracles") == 2 and ahead.result("grid") == 1
    assert order == ["grid", "oracles"]
    assert set(names.values()) == {"wdbench-ahead"}
    assert set(ahead.seconds) == {"grid", "oracles"} and min(ahead.seconds.values()) >= 0.05


def test_a_job_error_is_raised_where_its_result_is_asked() -> None:
    def boom() -> int:
        raise RuntimeError("grid failed")

    ahead = Ahead({"grid": boom, "oracles": lambda: 2}, True)
    with pytest.raises(RuntimeError, match="grid failed"):
        ahead.result("grid")
    assert ahead.result("oracles") == 2


def test_without_background_each_job_runs_when_asked() -> None:
    ran: list[str] = []
    ahead = Ahead({"grid": lambda: ran.append("grid"), "oracles": lambda: ran.append("o")}, False)
    assert not ahead.in_background and ran == []
    ahead.result("oracles")
    assert ran == ["o"]


def test_one_worker_runs_nothing_beside() -> None:
    set_cpu_threads(1)
    assert not Ahead({"grid": lambda: 1}, True).in_background


def test_cancel_stops_before_the_next_chunk_and_waits() -> None:
    started = threading.Event()
    ran: list[int] = []

    def chunk(i: int) -> int:
        started.set()
        time.sleep(0.05)
        ran.append(i)
        return i

    def grid() -> list[int]:
        return run_parallel([lambda i=i: chunk(i) for i in range(100)])

    ahead = Ahead({"grid": grid, "oracles": lambda: ran.append(-1)}, True)
    started.wait(5)
    ahead.cancel()  # returns once the thread has stopped
    assert not ahead._thread.is_alive()  # type: ignore[union-attr]
    assert 1 <= len(ran) < 100 and -1 not in ran
    with pytest.raises(Cancelled):
        ahead.result("grid")
