"""Liveness of batched ask/tell workers: who holds which trial, and when it last beat.

Optuna's own heartbeat (``RDBStorage(heartbeat_interval=...)``) only covers ``study.optimize()``;
a worker that asks a batch of trials, trains them together and tells them later needs its own.

Protocol (stored through Optuna's public storage API, so it works on every storage):

- a worker has an id (``new_worker_id()``, host:pid:random); each trial it runs carries the trial
  system attribute ``OWNER_KEY`` = that id, written right after the ask (``Heartbeat.claim``);
- while it holds RUNNING trials, the worker writes the study system attribute
  ``BEAT_PREFIX + id`` = now (Unix seconds) every ``interval_s`` from a background thread.

What is done with a silent worker's trials (the sweep, fail and re-queue) is the trial's life
under faults, in ``studies.scaleout.guard``. Beats are wall-clock times, so the machines of one
study need clocks that agree to well within the stale-after time (NTP).
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial

from reports.redact import mask

__all__ = [
    "BEAT_PREFIX",
    "OWNER_KEY",
    "Heartbeat",
    "beats",
    "is_dead_here",
    "known_workers",
    "new_worker_id",
    "owner_of",
    "storage_of",
]

OWNER_KEY = "wdbench:worker"
BEAT_PREFIX = "wdbench:beat:"

Clock = Callable[[], float]
#: First pause before a failed beat is retried (then doubling up to the interval).
RETRY_FIRST_S = 0.05


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr)


def storage_of(study: optuna.Study) -> tuple[BaseStorage, int]:
    """The study's storage and id. Optuna 5 exposes system attributes only through the storage
    API, and a study's handles only as private attributes (its own ``fail_stale_trials`` and
    ``copy_study`` use them the same way); this is the one place that reads them."""
    return study._storage, study._study_id


def new_worker_id() -> str:
    """A worker id unique across machines and runs: ``host:pid:random``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def is_dead_here(worker_id: str) -> bool:
    """Whether ``worker_id`` names a process of this host that no longer runs.

    Such a worker's trials need not wait ``--stale-after`` seconds (a rerun after a crash).
    A process id reused since only delays that; another host's workers are never judged here.
    """
    host, sep, rest = worker_id.rpartition(":")[0].rpartition(":")
    if not sep or host != socket.gethostname():
        return False
    try:
        pid = int(rest)
    except ValueError:
        return False
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def owner_of(trial: FrozenTrial) -> str | None:
    """The id of the worker that claimed ``trial``, if any."""
    owner = trial.system_attrs.get(OWNER_KEY)
    return owner if isinstance(owner, str) else None


class Heartbeat:
    """The beat of one worker process: claims its trials and keeps them fresh.

    Use ``with heartbeat.running(trials): ...`` around the evaluation of an asked batch. The beat
    thread never raises: a storage error is kept in ``error`` and the beat retried with backoff
    (``RETRY_FIRST_S``, doubling, never longer than the interval), so one hiccup of the storage
    does not get a live worker's trials swept. The first failure of a worker is reported in one
    line (``warn``); a storage that stays lost is reported by the worker's own next call.
    """

    def __init__(
        self,
        study: optuna.Study,
        interval_s: float,
        worker_id: str | None = None,
        clock: Clock = time.time,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        if not interval_s > 0:
            raise ValueError(f"heartbeat interval must be > 0 s, got {interval_s!r}")
        self.study = study
        self.interval_s = float(interval_s)
        self.worker_id = worker_id or new_worker_id()
        self.error: BaseException | None = None
        self.failures = 0
        self._clock = clock
        self._warn = warn or _to_stderr

    @property
    def key(self) -> str:
        """The study system attribute holding this worker's last beat."""
        return BEAT_PREFIX + self.worker_id

    def beat(self) -> None:
        """Record "alive now" for every trial this worker holds."""
        storage, study_id = storage_of(self.study)
        storage.set_study_system_attr(study_id, self.key, self._clock())

    def claim(self, trials: Sequence[optuna.Trial]) -> None:
        """Mark ``trials`` as this worker's (beat first: a claim is fresh only after a beat).

        A trial a sweeper failed before it was claimed stays failed; its tell is dropped later.
        """
        storage, _ = storage_of(self.study)
        for trial in trials:
            try:
                storage.set_trial_system_attr(trial._trial_id, OWNER_KEY, self.worker_id)
            except UpdateFinishedTrialError:
                continue

    @contextmanager
    def running(self, trials: Sequence[optuna.Trial]) -> Iterator[None]:
        """Beat, claim ``trials``, and beat every ``interval_s`` until the block exits."""
        self.beat()
        self.claim(trials)
        with self.beating():
            yield

    @contextmanager
    def beating(self) -> Iterator[None]:
        """Beat every ``interval_s`` from a background thread until the block exits."""
        stop = threading.Event()
        thread = threading.Thread(target=self._loop, args=(stop,), daemon=True, name="heartbeat")
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def _loop(self, stop: threading.Event) -> None:
        wait = self.interval_s
        while not stop.wait(wait):
            try:
                self.beat()
            except Exception as exc:  # storage errors of any backend: retried with backoff
                self.error = exc
                self.failures += 1
                if self.failures == 1:
                    first = mask((str(exc).strip().splitlines() or [type(exc).__name__])[0][:160])
                    self._warn(
                        f"warning: a heartbeat of worker {self.worker_id} failed "
                        f"({type(exc).__name__}: {first}); retrying"
                    )
                wait = min(self.interval_s, RETRY_FIRST_S * 2 ** min(self.failures - 1, 30))
            else:
                wait = self.interval_s


def known_workers(study: optuna.Study) -> list[str]:
    """Ids of the workers that have run batches on ``study`` (they left a beat)."""
    return sorted(beats(study))


def beats(study: optuna.Study) -> dict[str, float]:
    storage, study_id = storage_of(study)
    attrs = storage.get_study_system_attrs(study_id)
    return {
        key[len(BEAT_PREFIX) :]: float(value)
        for key, value in attrs.items()
        if key.startswith(BEAT_PREFIX) and isinstance(value, int | float)
    }
