"""The heartbeat and stale-trial sweep on plain Optuna ask/tell, on every storage kind."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
from optuna.storages import BaseStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend, JournalStorage
from optuna.trial import TrialState

from studies.scaleout import guard, heartbeat
from studies.scaleout.guard import REQUEUED_FROM
from studies.scaleout.heartbeat import Heartbeat

optuna.logging.set_verbosity(optuna.logging.WARNING)

StorageFactory = Callable[[], BaseStorage]


class FakeClock:
    """A settable wall clock."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["journal", "postgres"])
def make_storage(request: pytest.FixtureRequest, tmp_path: Path) -> StorageFactory:
    """A factory of independent handles (own file handle / connection) on one storage."""
    if request.param == "journal":
        path = str(tmp_path / "study.log")
        return lambda: JournalStorage(JournalFileBackend(path))
    url: str = request.getfixturevalue("postgres_url")
    return lambda: RDBStorage(url)


def _study(storage: BaseStorage) -> optuna.Study:
    sampler = optuna.samplers.RandomSampler(seed=0)
    return optuna.create_study(
        storage=storage, study_name="hb", sampler=sampler, load_if_exists=True
    )


def _ask(study: optuna.Study, n: int) -> list[optuna.Trial]:
    trials = [study.ask() for _ in range(n)]
    for trial in trials:
        trial.suggest_float("x", 0.0, 1.0)
    return trials


def _requeued(study: optuna.Study) -> list[int]:
    waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    return sorted(t.user_attrs[REQUEUED_FROM] for t in waiting)


def test_fresh_trials_survive_and_silent_ones_are_requeued(make_storage: StorageFactory) -> None:
    clock = FakeClock(time.time())
    study = _study(make_storage())
    trials = _ask(study, 3)
    beat = Heartbeat(study, interval_s=60.0, worker_id="w0", clock=clock)
    beat.beat()
    beat.claim(trials)
    clock.now += 10.0
    assert guard.sweep_stale(study, stale_after_s=30.0, clock=clock) == []
    clock.now += 25.0
    assert guard.sweep_stale(study, stale_after_s=30.0, clock=clock) == [0, 1, 2]
    states = [t.state for t in study.get_trials(deepcopy=False)]
    assert states[:3] == [TrialState.FAIL] * 3
    assert _requeued(study) == [0, 1, 2]
    assert "stale" in study.trials[0].user_attrs[guard.FAIL_REASON]
    # the re-queued copies carry the same parameters and are asked first
    again = _ask(study, 3)
    assert [t.params["x"] for t in again] == [t.params["x"] for t in trials]


def test_beat_thread_keeps_trials_fresh(make_storage: StorageFactory) -> None:
    study = _study(make_storage())
    trials = _ask(study, 2)
    beat = Heartbeat(study, interval_s=0.05, worker_id="w0")
    with beat.running(trials):
        first = heartbeat.beats(study)["w0"]
        deadline = time.monotonic() + 20.0
        while heartbeat.beats(study)["w0"] == first and time.monotonic() < deadline:
            time.sleep(0.02)
        assert heartbeat.beats(study)["w0"] > first
        assert beat.error is None
    last = heartbeat.beats(study)["w0"]
    assert guard.sweep_stale(study, 30.0, clock=lambda: last + 29.0) == []
    assert guard.sweep_stale(study, 30.0, clock=lambda: last + 31.0) == [0, 1]


def test_unclaimed_trials_age_from_their_start(make_storage: StorageFactory) -> None:
    study = _study(make_storage())
    _ask(study, 1)
    assert guard.sweep_stale(study, 30.0) == []
    assert guard.sweep_stale(study, 30.0, clock=lambda: time.time() + 31.0) == [0]


def test_owner_filter_sweeps_only_those_workers(make_storage: StorageFactory) -> None:
    study = _study(make_storage())
    mine, theirs = _ask(study, 1), _ask(study, 1)
    Heartbeat(study, 60.0, worker_id="run/0").claim(mine)
    Heartbeat(study, 60.0, worker_id="other/0").claim(theirs)
    failed = guard.sweep_stale(study, 0.0, owners=lambda o: o is not None and o.startswith("run/"))
    assert failed == [0]
    assert study.trials[1].state == TrialState.RUNNING


def test_two_sweepers_requeue_each_stale_trial_once(make_storage: StorageFactory) -> None:
    """Concurrent sweeps through separate handles: every stale trial is re-queued exactly once."""
    n = 12
    study = _study(make_storage())
    Heartbeat(study, 60.0, worker_id="dead").claim(_ask(study, n))
    studies = [_study(make_storage()) for _ in range(2)]
    barrier = threading.Barrier(2)
    failed: list[list[int]] = [[], []]

    def sweep(i: int) -> None:
        barrier.wait()
        failed[i] = guard.sweep_stale(studies[i], 0.0, clock=lambda: time.time() + 1.0)

    threads = [threading.Thread(target=sweep, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(failed[0] + failed[1]) == list(range(n))
    assert _requeued(_study(make_storage())) == list(range(n))


def test_tell_after_sweep_is_dropped(make_storage: StorageFactory) -> None:
    study = _study(make_storage())
    slow, fine = _ask(study, 2)
    other = _study(make_storage())
    stale = other.get_trials(deepcopy=False, states=(TrialState.RUNNING,))[0]
    assert guard.fail_and_requeue(other, stale, "stale: test")
    assert not guard.fail_and_requeue(other, stale, "stale: test")
    assert guard.tell_unless_swept(study, slow, 1.0) is False
    assert guard.tell_unless_swept(study, fine, 2.0) is True
    assert [t.state for t in study.trials[:2]] == [TrialState.FAIL, TrialState.COMPLETE]
    assert _requeued(study) == [0]


def test_release_fails_and_requeues_own_trials(make_storage: StorageFactory) -> None:
    study = _study(make_storage())
    done, left = _ask(study, 2)
    study.tell(done, 0.5)
    assert guard.release(study, [done, left], "interrupted") == [1]
    assert study.trials[1].user_attrs[guard.FAIL_REASON] == "interrupted"
    assert _requeued(study) == [1]


def test_claiming_a_trial_swept_before_the_claim_is_harmless(
    make_storage: StorageFactory,
) -> None:
    study = _study(make_storage())
    (trial,) = _ask(study, 1)
    assert guard.sweep_stale(study, 0.0, clock=lambda: time.time() + 1.0) == [0]
    Heartbeat(study, 1.0, worker_id="late").claim([trial])
    assert guard.tell_unless_swept(study, trial, 1.0) is False


def test_known_workers_are_those_that_beat(make_storage: StorageFactory) -> None:
    study = _study(make_storage())
    assert heartbeat.known_workers(study) == []
    for worker_id in ("b", "a"):
        Heartbeat(study, 1.0, worker_id=worker_id).beat()
    assert heartbeat.known_workers(_study(make_storage())) == ["a", "b"]


def test_heartbeat_rejects_a_non_positive_interval() -> None:
    study = optuna.create_study()
    with pytest.raises(ValueError, match="interval"):
        Heartbeat(study, 0.0)


class FlakyStorage(optuna.storages.InMemoryStorage):
    """Fails the first ``failures`` study system-attribute writes (a storage hiccup)."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def set_study_system_attr(self, study_id: int, key: str, value: object) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise optuna.exceptions.StorageInternalError("connection reset")
        super().set_study_system_attr(study_id, key, value)  # type: ignore[arg-type]


def test_beat_thread_retries_a_storage_hiccup_and_says_so_once() -> None:
    storage = FlakyStorage(failures=0)
    study = _study(storage)
    lines: list[str] = []
    hb = Heartbeat(study, interval_s=0.2, warn=lines.append)
    hb.beat()
    storage.failures = 4  # the next four beats fail
    first = heartbeat.beats(study)[hb.worker_id]
    with hb.beating():
        deadline = time.monotonic() + 10.0
        while heartbeat.beats(study)[hb.worker_id] == first and time.monotonic() < deadline:
            time.sleep(0.02)
    assert heartbeat.beats(study)[hb.worker_id] > first  # beating again after the hiccup
    assert hb.failures == 4 and isinstance(hb.error, optuna.exceptions.StorageInternalError)
    assert len(lines) == 1 and "retrying" in lines[0] and hb.worker_id in lines[0]
