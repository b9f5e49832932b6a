"""Work that does not depend on the search, run beside it: the dense grid and the oracles.

Neither reads a trial: they depend on the settings and the data draws only, so their numbers are
the same whenever they run. While the search runs, its main thread spends most of its time in
Optuna's sampler (Python, holding the GIL) and the thread pool waits for the next batch; the grid
(the compiled kernel) and the oracles (coordinate descent) release the GIL, so one background
thread runs them, its chunks one after another on that thread while the search runs
(``in_this_thread``: queued on the pool they would hold up the search's own batches), on the
pool once ``search_done`` is called. ``Ahead.result(name)`` waits for one and
returns it, or raises the error it raised (a bug stays loud where the phase used to run).

Only where the pool has two workers or more (one core: nothing to run beside) and on the CPU.
``cancel`` (an interrupted or failed run) stops the thread before its next chunk and waits for
it, so the process neither waits for work nobody will read nor exits under a running kernel.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from wdbench.threads import cpu_threads, in_this_thread

__all__ = ["Ahead", "Cancelled"]


class Cancelled(Exception):
    """Raised inside the background thread, before its next chunk, once ``cancel`` was called."""


class Ahead:
    """Named jobs run in order on one background thread (or on demand, when ``background`` is
    false); their results, errors and seconds of work."""

    def __init__(self, jobs: Mapping[str, Callable[[], Any]], background: bool) -> None:
        self._jobs = dict(jobs)
        self._done: dict[str, tuple[bool, Any]] = {}
        self.seconds: dict[str, float] = {}
        self._cancelled = threading.Event()
        self._search_done = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        if background and cpu_threads() >= 2:
            self._thread = threading.Thread(target=self._run_all, name="wdbench-ahead")
            self._thread.start()

    @property
    def in_background(self) -> bool:
        """Whether the jobs run beside the caller (else each runs when its result is asked)."""
        return self._thread is not None

    def _run_all(self) -> None:
        with in_this_thread(until=self._until):
            for name in self._jobs:
                if self._cancelled.is_set():
                    return
                self._run(name)

    def _until(self) -> bool:
        """Chunks run on this thread until the search is done (then on the pool); none after
        ``cancel``."""
        if self._cancelled.is_set():
            raise Cancelled
        return self._search_done.is_set()

    def _run(self, name: str) -> None:
        with self._lock:
            if name in self._done:
                return
            start = time.perf_counter()
            try:
                self._done[name] = (True, self._jobs[name]())
            except BaseException as exc:  # handed to the caller of result()
                self._done[name] = (False, exc)
            self.seconds[name] = time.perf_counter() - start

    def result(self, name: str) -> Any:
        """The result of job ``name`` (waiting for it, or running it here); its error re-raised."""
        if self._thread is None:
            self._run(name)
        else:
            while name not in self._done:
                self._thread.join(0.05)
                if not self._thread.is_alive() and name not in self._done:
                    self._run(name)  # cancelled before it started
        ok, value = self._done[name]
        if not ok:
            raise value
        return value

    def search_done(self) -> None:
        """The search has ended: the jobs left may use the whole pool."""
        self._search_done.set()

    def cancel(self) -> None:
        """Stop the background thread before its next chunk and wait for it (an interrupted or
        failed run); the results not computed are never asked for."""
        self._cancelled.set()
        if self._thread is not None:
            self._thread.join()
