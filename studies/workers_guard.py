"""``WorkerGuard``: what one worker's batched ask / train / tell loop needs to survive faults.

The loop it guards reads::

    with WorkerGuard(study, heartbeat_interval_s, stale_after_s) as guard:
        while <the study needs trials>:
            guard.sweep()                        # fail + re-queue silent trials of dead workers
            if <nothing to ask while others' trials are in flight>:
                guard.wait(); continue
            trials = guard.ask(size)             # asked and claimed by this worker
            with guard.running(trials):          # beat; on a signal fail + re-queue them
                <suggest>
                with guard.interruptible():      # a signal stops the training at once
                    <train>
                outcomes = [guard.told(trial, <tell trial>) ...]  # None: a sweeper failed it

Signals (``faults.Interrupts``) are raised only inside ``interruptible()`` / ``wait()`` or at
a checkpoint (``sweep``, the end of ``ask`` and of ``running``), never halfway through a storage
call. On SIGINT / SIGTERM the unfinished trials of the batch are failed and their parameters
re-queued, then ``KeyboardInterrupt`` / ``faults.Terminated`` propagates (exit 130 / 143). On
any other error they are failed without re-queueing — except when the storage itself is lost:
then nothing more is written and the next run's sweep fails them once they are stale.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from types import TracebackType
from typing import TypeVar

import optuna

from studies import faults, heartbeat
from studies.heartbeat import Heartbeat

__all__ = ["MAX_POLL_S", "WorkerGuard"]

#: Longest pause while waiting for other workers' in-flight trials.
MAX_POLL_S = 1.0
T = TypeVar("T")


class WorkerGuard:
    """Heartbeat, stale-trial sweep and signal handling of one worker (a context manager).

    ``stale_after_s`` must exceed ``heartbeat_interval_s``: a live worker beats at least once
    per interval, so only a dead (or frozen) one stays silent for ``stale_after_s``. The guard
    uses the process's installed ``faults.Interrupts`` (installing its own if there is none).
    """

    def __init__(
        self,
        study: optuna.Study,
        heartbeat_interval_s: float,
        stale_after_s: float,
        worker_id: str | None = None,
    ) -> None:
        if not stale_after_s > heartbeat_interval_s:
            raise ValueError(
                f"stale-after ({stale_after_s:g} s) must exceed the heartbeat interval "
                f"({heartbeat_interval_s:g} s)"
            )
        self.study = study
        self.stale_after_s = float(stale_after_s)
        self.heartbeat = Heartbeat(study, heartbeat_interval_s, worker_id)
        installed = faults.Interrupts.installed()
        self._owns_interrupts = installed is None
        self.interrupts = installed or faults.Interrupts()

    @property
    def worker_id(self) -> str:
        return self.heartbeat.worker_id

    def __enter__(self) -> WorkerGuard:
        if self._owns_interrupts:
            self.interrupts.install()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._owns_interrupts:
            self.interrupts.restore()

    def interruptible(self) -> AbstractContextManager[None]:
        """A block (no storage calls inside) that a signal interrupts at once."""
        return self.interrupts.interruptible()

    def sweep(self) -> list[int]:
        """Checkpoint, then fail and re-queue RUNNING trials silent for over ``stale_after_s``."""
        self.interrupts.raise_pending()
        return heartbeat.sweep_stale(self.study, self.stale_after_s)

    def wait(self) -> None:
        """Pause while other workers' trials are in flight (a signal ends it at once)."""
        with self.interruptible():
            time.sleep(min(self.heartbeat.interval_s, MAX_POLL_S))

    def ask(self, size: int) -> list[optuna.Trial]:
        """Ask and claim ``size`` trials; a signal meanwhile fails them, then propagates."""
        trials: list[optuna.Trial] = []
        try:
            self.heartbeat.beat()
            for _ in range(size):  # claimed one by one: an unclaimed trial is rare
                trials.append(self.study.ask())
                self.heartbeat.claim(trials[-1:])
            self.interrupts.raise_pending()
        except BaseException as exc:
            self._release(trials, exc)
            raise
        return trials

    @contextmanager
    def running(self, trials: Sequence[optuna.Trial]) -> Iterator[None]:
        """Keep ``trials`` alive (heartbeat); fail them if the block is left by an error."""
        try:
            with self.heartbeat.beating():
                yield
            self.interrupts.raise_pending()
        except BaseException as exc:
            self._release(trials, exc)
            raise

    def told(self, trial: optuna.Trial, tell: Callable[[], T]) -> T | None:
        """Finish ``trial`` with ``tell``; None when a sweeper had failed it meanwhile."""
        return heartbeat.unless_swept(self.study, trial, tell)

    def _release(self, trials: Sequence[optuna.Trial], exc: BaseException) -> None:
        if faults.is_storage_lost(exc):
            return
        interrupted = isinstance(exc, KeyboardInterrupt | faults.Terminated)
        if interrupted:
            self.interrupts.acknowledge()
        name = "SIGTERM" if isinstance(exc, faults.Terminated) else "SIGINT"
        reason = f"interrupted by {name}" if interrupted else f"worker error: {type(exc).__name__}"
        heartbeat.release(self.study, trials, reason, requeue=interrupted)
