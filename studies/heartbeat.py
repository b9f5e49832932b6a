"""A heartbeat and a stale-trial sweep for batched ask/tell.

Optuna's own heartbeat (``RDBStorage(heartbeat_interval=...)``) only covers ``study.optimize()``;
a worker that asks a batch of trials, trains them together and tells them later needs its own.

Protocol (stored through Optuna's public storage API, so it works on every storage):

- a worker has an id (``new_worker_id()``, host:pid:random); each trial it runs carries the trial
  system attribute ``OWNER_KEY`` = that id, written right after the ask (``Heartbeat.running``);
- while it holds RUNNING trials, the worker writes the study system attribute
  ``BEAT_PREFIX + id`` = now (Unix seconds) every ``interval_s`` from a background thread;
- ``sweep_stale(study, stale_after_s)`` fails every RUNNING trial whose owner's last beat (or, for a
  trial not yet claimed, its start time) is older than ``stale_after_s`` and re-enqueues its
  parameters with the user attribute ``requeued_from`` = the failed trial's number.

Exactly-once re-queue: the FAIL transition is the guard. Both storages refuse to finish a trial
twice (RDB: ``SELECT ... FOR UPDATE`` then an updatable check; journal: the log order decides and
the loser's replay raises), so when two sweepers race, exactly one ``tell(FAIL)`` succeeds and only
that one enqueues. A worker that was merely slow finds its trial already failed and drops its
result (``tell_unless_swept``); the re-queued copy runs instead. Beats are wall-clock times, so
the machines of one study need clocks that agree to well within ``stale_after_s`` (NTP).
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TypeVar

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

__all__ = [
    "BEAT_PREFIX",
    "FAIL_REASON",
    "OWNER_KEY",
    "REQUEUED_FROM",
    "Heartbeat",
    "fail_and_requeue",
    "known_workers",
    "new_worker_id",
    "owner_of",
    "release",
    "sweep_stale",
    "tell_unless_swept",
    "unless_swept",
]

OWNER_KEY = "wdbench:worker"
BEAT_PREFIX = "wdbench:beat:"
REQUEUED_FROM = "requeued_from"
FAIL_REASON = "fail_reason"

Clock = Callable[[], float]
T = TypeVar("T")


def _storage(study: optuna.Study) -> tuple[BaseStorage, int]:
    """The study's storage and id. Optuna 5 exposes system attributes only through the storage
    API, and a study's handles only as private attributes (its own ``fail_stale_trials`` and
    ``copy_study`` use them the same way); this is the one place that reads them."""
    return study._storage, study._study_id


def new_worker_id() -> str:
    """A worker id unique across machines and runs: ``host:pid:random``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def owner_of(trial: FrozenTrial) -> str | None:
    """The id of the worker that claimed ``trial``, if any."""
    owner = trial.system_attrs.get(OWNER_KEY)
    return owner if isinstance(owner, str) else None


class Heartbeat:
    """The beat of one worker process: claims its trials and keeps them fresh.

    Use ``with heartbeat.running(trials): ...`` around the evaluation of an asked batch. The beat
    thread never raises: a storage error stops it and is kept in ``error`` (the worker's own next
    storage call meets the same error and reports it).
    """

    def __init__(
        self,
        study: optuna.Study,
        interval_s: float,
        worker_id: str | None = None,
        clock: Clock = time.time,
    ) -> None:
        if not interval_s > 0:
            raise ValueError(f"heartbeat interval must be > 0 s, got {interval_s!r}")
        self.study = study
        self.interval_s = float(interval_s)
        self.worker_id = worker_id or new_worker_id()
        self.error: BaseException | None = None
        self._clock = clock

    @property
    def key(self) -> str:
        """The study system attribute holding this worker's last beat."""
        return BEAT_PREFIX + self.worker_id

    def beat(self) -> None:
        """Record "alive now" for every trial this worker holds."""
        storage, study_id = _storage(self.study)
        storage.set_study_system_attr(study_id, self.key, self._clock())

    def claim(self, trials: Sequence[optuna.Trial]) -> None:
        """Mark ``trials`` as this worker's (beat first: a claim is fresh only after a beat).

        A trial a sweeper failed before it was claimed stays failed; its tell is dropped later.
        """
        storage, _ = _storage(self.study)
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
        while not stop.wait(self.interval_s):
            try:
                self.beat()
            except Exception as exc:  # storage errors of any backend: the worker reports them
                self.error = exc
                return


def _last_sign_of_life(trial: FrozenTrial, beats: dict[str, float]) -> float | None:
    """Unix time of the owner's last beat; the start time for a trial nobody claimed yet."""
    owner = owner_of(trial)
    if owner is not None and owner in beats:
        return beats[owner]
    if trial.datetime_start is None:
        return None
    # Optuna stores naive local datetimes; ``timestamp()`` reads them as local time.
    return trial.datetime_start.timestamp()


def known_workers(study: optuna.Study) -> list[str]:
    """Ids of the workers that have run batches on ``study`` (they left a beat)."""
    return sorted(_beats(study))


def _beats(study: optuna.Study) -> dict[str, float]:
    storage, study_id = _storage(study)
    attrs = storage.get_study_system_attrs(study_id)
    return {
        key[len(BEAT_PREFIX) :]: float(value)
        for key, value in attrs.items()
        if key.startswith(BEAT_PREFIX) and isinstance(value, int | float)
    }


def sweep_stale(
    study: optuna.Study,
    stale_after_s: float,
    clock: Clock = time.time,
    owners: Callable[[str | None], bool] | None = None,
) -> list[int]:
    """Fail and re-queue RUNNING trials silent for more than ``stale_after_s`` seconds.

    ``owners`` (optional) restricts the sweep to trials whose owner id it accepts; with it,
    ``stale_after_s = 0`` fails them at once (the launcher's final sweep of its own dead
    workers). Returns the numbers of the trials *this call* failed.
    """
    now = clock()
    beats = _beats(study)
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if owners is not None and not owners(owner_of(trial)):
            continue
        last = _last_sign_of_life(trial, beats)
        if last is not None and now - last <= stale_after_s:
            continue
        silent = "never" if last is None else f"{now - last:.0f} s"
        reason = f"stale: no heartbeat from worker {owner_of(trial) or '?'} for {silent}"
        if fail_and_requeue(study, trial, reason):
            failed.append(trial.number)
    return failed


def fail_and_requeue(
    study: optuna.Study, trial: FrozenTrial, reason: str, requeue: bool = True
) -> bool:
    """Fail a RUNNING trial and enqueue its parameters again — unless someone else finished it.

    Returns True iff this call made the FAIL transition (and so, with ``requeue``, enqueued the
    copy).
    """
    try:
        # A reason written on a trial whose owner then completes it is ignored by exports
        # (``fail_reason`` is read on FAIL rows only).
        storage, _ = _storage(study)
        storage.set_trial_user_attr(trial._trial_id, FAIL_REASON, reason)
        if not storage.set_trial_state_values(trial._trial_id, TrialState.FAIL):
            return False
    except UpdateFinishedTrialError:
        return False
    if requeue and trial.params:
        study.enqueue_trial(dict(trial.params), user_attrs={REQUEUED_FROM: trial.number})
    return True


def release(
    study: optuna.Study, trials: Sequence[optuna.Trial], reason: str, requeue: bool = True
) -> list[int]:
    """Fail this worker's unfinished ``trials`` (on shutdown), re-queueing their parameters.

    Returns the numbers of the trials failed here (a sweeper may have been faster for some).
    """
    storage, _ = _storage(study)
    failed = []
    for trial in trials:
        frozen = storage.get_trial(trial._trial_id)
        if frozen.state == TrialState.RUNNING and fail_and_requeue(study, frozen, reason, requeue):
            failed.append(trial.number)
    return failed


def tell_unless_swept(
    study: optuna.Study,
    trial: optuna.Trial,
    value: float | None = None,
    state: TrialState | None = None,
) -> bool:
    """``study.tell`` that tolerates a sweeper having failed the trial meanwhile.

    Returns False (and tells nothing) when the trial was already finished: its re-queued copy
    runs instead. Any other error propagates.
    """
    return unless_swept(study, trial, lambda: study.tell(trial, value, state=state)) is not None


def unless_swept(study: optuna.Study, trial: optuna.Trial, tell: Callable[[], T]) -> T | None:
    """Run ``tell`` (the writes that finish ``trial``); None if a sweeper finished it first.

    A sweeper's FAIL makes the owner's later writes raise ``UpdateFinishedTrialError`` (or,
    when ``study.tell`` reads the trial already failed, ``ValueError``); both mean "dropped".
    """
    try:
        return tell()
    except UpdateFinishedTrialError:
        return None
    except ValueError:  # "Cannot tell a FAIL trial." when it was finished before the read
        storage, _ = _storage(study)
        if storage.get_trial(trial._trial_id).state.is_finished():
            return None
        raise
