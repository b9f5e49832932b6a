"""A trial's life under faults: claim, keep alive, tell unless swept, fail and re-queue.

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

Stale trials: ``sweep_stale(study, stale_after_s)`` fails every RUNNING trial whose owner's last
beat (``studies.scaleout.heartbeat``; for a trial not yet claimed, its start time) is older than
``stale_after_s`` and re-enqueues its parameters with the user attribute ``requeued_from`` = the
failed trial's number.

Re-queueing is capped as Optuna's ``RetryFailedTrialCallback(max_retry=MAX_RETRY)`` caps it: a
copy carries ``worker_deaths``, the number of times a worker died (or froze past
``stale_after_s``) while running this point; a point whose worker died ``MAX_RETRY + 1`` times
fails for good with that reason (a point that kills its worker is not retried forever). A signal
(SIGINT / SIGTERM) re-queues without counting.

Exactly-once re-queue: the FAIL transition is the guard. Both storages refuse to finish a trial
twice (RDB: ``SELECT ... FOR UPDATE`` then an updatable check; journal: the log order decides and
the loser's replay raises), so when two sweepers race, exactly one ``tell(FAIL)`` succeeds and only
that one enqueues. A worker that was merely slow finds its trial already failed and drops its
result (``unless_swept``); the re-queued copy runs instead.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from types import TracebackType
from typing import TypeVar

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from studies.scaleout import faults, heartbeat
from studies.scaleout.heartbeat import Heartbeat

__all__ = [
    "FAIL_REASON",
    "MAX_POLL_S",
    "MAX_RETRY",
    "REQUEUED_FROM",
    "WORKER_DEATHS",
    "WorkerGuard",
    "fail_and_requeue",
    "release",
    "sweep_stale",
    "tell_unless_swept",
    "unless_swept",
]

REQUEUED_FROM = "requeued_from"
WORKER_DEATHS = "worker_deaths"
FAIL_REASON = "fail_reason"
#: Re-queues of a point after its worker died running it (Optuna's ``max_retry``).
MAX_RETRY = 1
Clock = Callable[[], float]

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
        return sweep_stale(self.study, self.stale_after_s)

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
        return unless_swept(self.study, trial, tell)

    def suggested(self, trial: optuna.Trial, suggest: Callable[[], T]) -> T | None:
        """Draw ``trial``'s parameters with ``suggest``; None when a sweeper had failed it
        meanwhile (this worker was frozen past ``stale_after_s``): the caller drops it."""
        return unless_swept(self.study, trial, suggest)

    def _release(self, trials: Sequence[optuna.Trial], exc: BaseException) -> None:
        if faults.is_storage_lost(exc):
            return
        interrupted = isinstance(exc, KeyboardInterrupt | faults.Terminated)
        if interrupted:
            self.interrupts.acknowledge()
        name = "SIGTERM" if isinstance(exc, faults.Terminated) else "SIGINT"
        reason = f"interrupted by {name}" if interrupted else f"worker error: {type(exc).__name__}"
        release(self.study, trials, reason, requeue=interrupted)


def _last_sign_of_life(trial: FrozenTrial, beats: dict[str, float]) -> float | None:
    """Unix time of the owner's last beat; the start time for a trial nobody claimed yet."""
    owner = heartbeat.owner_of(trial)
    if owner is not None and heartbeat.is_dead_here(owner):
        return -math.inf  # its process on this host has exited: stale at once
    if owner is not None and owner in beats:
        return beats[owner]
    if trial.datetime_start is None:
        return None
    # Optuna stores naive local datetimes; ``timestamp()`` reads them as local time.
    return trial.datetime_start.timestamp()


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
    last_beats = heartbeat.beats(study)
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if owners is not None and not owners(heartbeat.owner_of(trial)):
            continue
        last = _last_sign_of_life(trial, last_beats)
        if last is not None and now - last <= stale_after_s:
            continue
        owner = heartbeat.owner_of(trial) or "?"
        if last is not None and math.isinf(last):
            reason = f"stale: worker {owner} exited"
        else:
            silent = "never" if last is None else f"{now - last:.0f} s"
            reason = f"stale: no heartbeat from worker {owner} for {silent}"
        if fail_and_requeue(study, trial, reason, worker_died=True):
            failed.append(trial.number)
    return failed


def fail_and_requeue(
    study: optuna.Study,
    trial: FrozenTrial,
    reason: str,
    requeue: bool = True,
    worker_died: bool = False,
) -> bool:
    """Fail a RUNNING trial and enqueue its parameters again — unless someone else finished it.

    ``worker_died``: the trial's worker died or froze running it; that counts toward
    ``MAX_RETRY``, past which the point is not re-queued. Returns True iff this call made the
    FAIL transition (and so, with ``requeue``, enqueued the copy, or was refused it by the cap).
    """
    deaths = int(trial.user_attrs.get(WORKER_DEATHS, 0)) + int(worker_died)
    if worker_died and deaths > MAX_RETRY:
        reason = f"{reason}; its worker died running this point {deaths} times: not re-queued"
        requeue = False
    try:
        # A reason written on a trial whose owner then completes it is ignored by exports
        # (``fail_reason`` is read on FAIL rows only).
        storage, _ = heartbeat.storage_of(study)
        storage.set_trial_user_attr(trial._trial_id, FAIL_REASON, reason)
        if not storage.set_trial_state_values(trial._trial_id, TrialState.FAIL):
            return False
    except UpdateFinishedTrialError:
        return False
    if requeue:
        # read again: an owner only slow, not dead, may have written parameters since
        # ``trial`` was read; none can follow the FAIL, so these are all it will ever hold
        params = storage.get_trial(trial._trial_id).params
        if params:
            attrs = {REQUEUED_FROM: trial.number, WORKER_DEATHS: deaths}
            study.enqueue_trial(dict(params), user_attrs=attrs)
    return True


def release(
    study: optuna.Study, trials: Sequence[optuna.Trial], reason: str, requeue: bool = True
) -> list[int]:
    """Fail this worker's unfinished ``trials`` (on shutdown), re-queueing their parameters.

    Returns the numbers of the trials failed here (a sweeper may have been faster for some).
    """
    storage, _ = heartbeat.storage_of(study)
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
        storage, _ = heartbeat.storage_of(study)
        if storage.get_trial(trial._trial_id).state.is_finished():
            return None
        raise
