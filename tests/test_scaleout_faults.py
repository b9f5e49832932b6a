"""Signals raised only where safe, storage-loss reporting, creation-race retries, and the
worker guard that fails (and re-queues) a batch's trials when it is interrupted."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import optuna
import pytest
import sqlalchemy.exc
from optuna.exceptions import StorageInternalError
from optuna.trial import TrialState

from studies.scaleout import faults
from studies.scaleout.guard import (
    FAIL_REASON,
    MAX_RETRY,
    REQUEUED_FROM,
    WORKER_DEATHS,
    WorkerGuard,
    fail_and_requeue,
)
from tests.python_child import run_python

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture
def interrupts() -> Iterator[faults.Interrupts]:
    handlers = faults.Interrupts()
    handlers.install()
    try:
        yield handlers
    finally:
        handlers.restore()


def _signal_self(signum: int) -> None:
    os.kill(os.getpid(), signum)


def test_a_signal_waits_for_the_next_checkpoint(interrupts: faults.Interrupts) -> None:
    _signal_self(signal.SIGINT)  # outside interruptible(): recorded, not raised
    assert interrupts.signum == signal.SIGINT
    for _ in range(2):  # raised again until acknowledged (library code may swallow it)
        with pytest.raises(KeyboardInterrupt):
            interrupts.raise_pending()
    interrupts.acknowledge()
    interrupts.raise_pending()


def test_a_signal_interrupts_an_interruptible_block(interrupts: faults.Interrupts) -> None:
    with pytest.raises(faults.Terminated), interrupts.interruptible():
        _signal_self(signal.SIGTERM)
        pytest.fail("the block went on after SIGTERM")
    interrupts.acknowledge()
    for signum in (signal.SIGINT, signal.SIGINT):  # once acknowledged, later ones are ignored
        _signal_self(signum)
    interrupts.raise_pending()
    assert interrupts.signum == signal.SIGTERM


def test_a_second_signal_is_raised_at_once(interrupts: faults.Interrupts) -> None:
    _signal_self(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        _signal_self(signal.SIGINT)
        pytest.fail("the second signal was deferred")


def test_installed_finds_the_handlers_of_this_process(interrupts: faults.Interrupts) -> None:
    assert faults.Interrupts.installed() is interrupts


def test_exit_codes_follow_the_shell_convention() -> None:
    assert faults.exit_code_of_signal(signal.SIGINT) == faults.EXIT_SIGINT == 130
    assert faults.exit_code_of_signal(signal.SIGTERM) == faults.EXIT_SIGTERM == 143
    assert len({faults.EXIT_OK, faults.EXIT_FAILED, faults.EXIT_USAGE, faults.EXIT_STORAGE}) == 4


def test_storage_loss_is_one_line() -> None:
    refused = sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("refused\nDETAIL: x"))
    wrapped = StorageInternalError("An exception is raised during the commit.")
    wrapped.__cause__ = refused
    for exc in (refused, wrapped):
        assert faults.is_storage_lost(exc)
        message = faults.storage_lost_message(exc)
        assert "\n" not in message and "refused" in message and "SELECT" not in message
    assert not faults.is_storage_lost(ValueError("a bug"))


def test_creation_race_is_retried_then_given_up() -> None:
    calls: list[int] = []
    sleeps: list[float] = []

    def create() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise sqlalchemy.exc.IntegrityError("CREATE TABLE", {}, Exception("duplicate"))
        return "storage"

    assert faults.retry_creation_race(create, sleep=sleeps.append) == "storage"
    assert len(calls) == 3 and len(sleeps) == 2

    def always() -> str:
        raise sqlalchemy.exc.ProgrammingError("CREATE TABLE", {}, Exception("exists"))

    with pytest.raises(sqlalchemy.exc.ProgrammingError):
        faults.retry_creation_race(always, tries=3, sleep=sleeps.append)


def test_a_bug_in_creation_is_not_retried() -> None:
    calls: list[int] = []

    def create() -> str:
        calls.append(1)
        raise ValueError("a bug")

    with pytest.raises(ValueError, match="a bug"):
        faults.retry_creation_race(create, sleep=lambda _: None)
    assert calls == [1]


_NO_SQLALCHEMY = """
import sys
import studies.driver
from optuna.exceptions import StorageInternalError
from studies.scaleout import faults
assert "sqlalchemy" not in sys.modules, "sqlalchemy imported"
assert faults.is_storage_lost(StorageInternalError("commit"))
assert not faults.is_storage_lost(ValueError("a bug"))
print("ok")
"""


def test_a_command_line_does_not_import_sqlalchemy() -> None:
    """The journal file never needs it: its errors are recognised once a database imported it."""
    done = run_python(_NO_SQLALCHEMY)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def _asked(guard: WorkerGuard, n: int) -> list[optuna.Trial]:
    trials = guard.ask(n)
    for trial in trials:
        trial.suggest_float("x", 0.0, 1.0)
    return trials


@pytest.mark.parametrize(
    ("error", "requeued"),
    [(KeyboardInterrupt, True), (faults.Terminated, True), (RuntimeError, False)],
)
def test_guard_fails_the_batch_it_is_left_by(error: type[BaseException], requeued: bool) -> None:
    study = optuna.create_study()
    with WorkerGuard(study, 0.1, 1.0) as guard:
        trials = _asked(guard, 2)
        study.tell(trials[0], 1.0)
        with pytest.raises(error), guard.running(trials):
            raise error()
    states = [t.state for t in study.get_trials(deepcopy=False)]
    assert states[:2] == [TrialState.COMPLETE, TrialState.FAIL]
    reason = study.trials[1].user_attrs[FAIL_REASON]
    assert reason.startswith("interrupted" if requeued else "worker error")
    waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    assert [t.user_attrs[REQUEUED_FROM] for t in waiting] == ([1] if requeued else [])


def test_guard_leaves_trials_alone_when_the_storage_is_lost() -> None:
    study = optuna.create_study()
    lost = StorageInternalError("gone")
    with WorkerGuard(study, 0.1, 1.0) as guard:
        trials = _asked(guard, 1)
        with pytest.raises(StorageInternalError), guard.running(trials):
            raise lost
    assert study.trials[0].state == TrialState.RUNNING


def test_guard_releases_what_it_asked_when_a_signal_came_meanwhile(
    interrupts: faults.Interrupts,
) -> None:
    study = optuna.create_study()
    with WorkerGuard(study, 0.1, 1.0) as guard:
        assert guard.interrupts is interrupts
        _signal_self(signal.SIGINT)
        with pytest.raises(KeyboardInterrupt):
            guard.ask(2)
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.FAIL]


def test_guard_drops_the_tell_of_a_swept_trial() -> None:
    study = optuna.create_study()
    with WorkerGuard(study, 0.1, 1.0) as guard:
        trials = _asked(guard, 1)
        frozen = study.get_trials(deepcopy=False)[0]
        assert fail_and_requeue(study, frozen, "stale: test")
        assert guard.told(trials[0], lambda: study.tell(trials[0], 1.0)) is None


def test_guard_needs_stale_after_above_the_interval() -> None:
    with pytest.raises(ValueError, match="must exceed"):
        WorkerGuard(optuna.create_study(), 5.0, 5.0)


def test_a_trial_swept_before_its_suggest_is_dropped_not_a_crash() -> None:
    """A worker frozen between its ask and its suggest finds the trial failed by a sweeper."""
    study = optuna.create_study()
    with WorkerGuard(study, 0.1, 1.0) as guard:
        trial = guard.ask(1)[0]
        frozen = study.get_trials(deepcopy=False)[0]
        assert fail_and_requeue(study, frozen, "stale: test", worker_died=True)
        assert guard.suggested(trial, lambda: trial.suggest_float("x", 0.0, 1.0)) is None
    assert study.trials[0].state == TrialState.FAIL


def test_a_sweep_re_queues_the_parameters_written_after_it_read_the_trial() -> None:
    """An owner only slow, not dead, may write its parameters between the sweeper's read of the
    RUNNING trial and its FAIL: the re-queued copy carries what the failed trial holds."""
    study = optuna.create_study()
    trial = study.ask()
    read = study.get_trials(deepcopy=True)[0]  # a copy, as another process reads it
    assert read.params == {}
    x = trial.suggest_float("x", 0.0, 1.0)
    assert fail_and_requeue(study, read, "stale: test", worker_died=True)
    failed, copy = study.get_trials(deepcopy=False)
    assert failed.state == TrialState.FAIL and failed.params == {"x": x}
    assert copy.state == TrialState.WAITING
    assert copy.user_attrs[REQUEUED_FROM] == failed.number
    assert copy.system_attrs["fixed_params"] == {"x": x}


def _requeue_chain(study: optuna.Study, died: list[bool]) -> list[optuna.trial.FrozenTrial]:
    study.enqueue_trial({"x": 0.5})
    for worker_died in died:
        trial = study.ask()
        trial.suggest_float("x", 0.0, 1.0)
        frozen = study.get_trials(deepcopy=False)[-1]
        assert frozen.number == trial.number
        assert fail_and_requeue(study, frozen, "stale: test", worker_died=worker_died)
    return study.get_trials(deepcopy=False)


def test_a_point_that_killed_its_worker_twice_fails_for_good() -> None:
    trials = _requeue_chain(optuna.create_study(), [True, True])
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.FAIL]
    assert trials[1].user_attrs[WORKER_DEATHS] == MAX_RETRY == 1
    assert "died running this point 2 times: not re-queued" in trials[1].user_attrs[FAIL_REASON]


def test_interrupts_re_queue_without_counting_toward_the_cap() -> None:
    trials = _requeue_chain(optuna.create_study(), [False, True, False, False])
    assert [t.state for t in trials[:4]] == [TrialState.FAIL] * 4
    assert trials[4].state == TrialState.WAITING  # one death so far: re-queued
    assert trials[4].user_attrs[WORKER_DEATHS] == 1
