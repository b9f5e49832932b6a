"""Several workers on one study, on the embedded journal and on PostgreSQL: shared budget,
SIGKILL survived, SIGINT → exit 130 and a rerun that resumes. Each runs the real command."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import optuna
import pytest
import sqlalchemy
from optuna.storages import BaseStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend, JournalStorage
from optuna.trial import FrozenTrial, TrialState
from pg import PostgresServer

from studies.scaleout.guard import FAIL_REASON, REQUEUED_FROM
from studies.scaleout.heartbeat import OWNER_KEY

pytestmark = pytest.mark.slow  # worker processes, signals, a real PostgreSQL

ROOT = Path(__file__).resolve().parent.parent
STUDY = "scaleout"
#: 300 epochs: a batch trains for ~0.1 s, long enough to be caught mid-batch.
N_TRIALS, BATCH, EPOCHS = 8, 2, 300
WAIT_S = 240.0


@dataclass
class Target:
    """Where the study lives: ``--out`` and, for PostgreSQL, ``--storage``."""

    out: Path
    url: str | None
    _storage: BaseStorage | None = None

    def flags(self) -> list[str]:
        return ["--out", str(self.out)] + ([] if self.url is None else ["--storage", self.url])

    def open(self) -> BaseStorage:
        """The test's own handle (kept: later reads only fetch what changed)."""
        if self._storage is None:
            if self.url is not None:
                self._storage = RDBStorage(self.url)
            else:
                path = str(self.out / STUDY / "study.log")
                self._storage = JournalStorage(JournalFileBackend(path))
        return self._storage

    def exists(self) -> bool:
        return self.url is not None or (self.out / STUDY / "study.log").exists()


@pytest.fixture(params=["journal", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Target:
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    return Target(out=tmp_path / "runs", url=url)


def _start(target: Target, workers: int) -> subprocess.Popen[str]:
    command = [
        sys.executable, "-m", "studies.search", "--study-name", STUDY,
        "--n-trials", str(N_TRIALS), "--batch", str(BATCH), "--workers", str(workers),
        "--epochs", str(EPOCHS), "--seeds", "1", "--sampler", "random", "--device", "cpu",
        "--grid-points", "2", "--no-report", "--heartbeat-interval", "0.5", "--stale-after", "4",
        *target.flags(),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _finish(proc: subprocess.Popen[str]) -> tuple[int, str]:
    """Wait (bounded) for ``proc``; its exit code and stderr (stdout's tail printed)."""
    try:
        out, err = proc.communicate(timeout=WAIT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"the command did not finish within {WAIT_S:.0f} s; stderr:\n{err}")
    print(out[-2000:])
    return proc.returncode, err


def _trials(target: Target) -> list[FrozenTrial]:
    study = optuna.load_study(study_name=STUDY, storage=target.open())
    return study.get_trials(deepcopy=False)


def _wait_for(
    what: str, found: Callable[[], FrozenTrial | None], procs: list[subprocess.Popen[str]]
) -> FrozenTrial:
    """Poll ``found`` until it finds a trial; fail once every command exited or time is up."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline and any(p.poll() is None for p in procs):
        trial = found()
        if trial is not None:
            return trial
        time.sleep(0.01)
    pytest.fail(f"no {what} seen before the commands exited (or within {WAIT_S:.0f} s)")


def _claimed_running(target: Target) -> Callable[[], FrozenTrial | None]:
    """A RUNNING trial that a worker claimed and suggested (so it is training), once one exists."""

    def find() -> FrozenTrial | None:
        if not target.exists():
            return None
        try:
            trials = _trials(target)
        except KeyError:  # the study is not created yet
            return None
        running = [t for t in trials if t.state == TrialState.RUNNING]
        return next((t for t in running if OWNER_KEY in t.system_attrs and t.params), None)

    return find


def _owner_pid(trial: FrozenTrial) -> int:
    return int(str(trial.system_attrs[OWNER_KEY]).rsplit(":", 2)[1])


def _freeze_mid_batch(target: Target, procs: list[subprocess.Popen[str]]) -> tuple[int, list[int]]:
    """SIGSTOP a worker while it holds claimed RUNNING trials; its pid and those trials.

    Stopping first makes "mid-batch" certain: a batch seen RUNNING may finish before a signal
    lands, a stopped worker's cannot.
    """
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        pid = _owner_pid(_wait_for("claimed RUNNING trial", _claimed_running(target), procs))
        os.kill(pid, signal.SIGSTOP)
        held = [
            t.number
            for t in _trials(target)
            if t.state == TrialState.RUNNING and t.params and _owner_pid(t) == pid
        ]
        if held and not _stopped_in_a_transaction(target, pid):
            return pid, held
        os.kill(pid, signal.SIGCONT)
    pytest.fail("no worker could be stopped mid-batch")


def _stopped_in_a_transaction(target: Target, pid: int) -> bool:
    """PostgreSQL: whether the stopped worker ``pid`` has a session inside a transaction that
    has written (a transaction id: it stopped between two statements of a write). Its locks then
    hold the other worker's sweep until it continues (the test waited out ``WAIT_S``), and its
    write lands after the sweep; the tests here stop a worker while it trains, not in its
    milliseconds of writing."""
    if target.url is None:
        return False
    storage = target.open()
    assert isinstance(storage, RDBStorage)
    time.sleep(0.1)  # a statement the server was running ends: what it wrote stays pending
    query = sqlalchemy.text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND client_port = ANY(:ports) AND backend_xid IS NOT NULL"
    )
    with storage.engine.connect() as connection:
        return bool(connection.execute(query, {"ports": sorted(_tcp_ports(pid))}).scalar())


def _tcp_ports(pid: int) -> set[int]:
    """The local ports of process ``pid``'s TCP sockets (Linux: its descriptors, /proc/net)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
            if link.startswith("socket:["):
                inodes.add(link[len("socket:[") : -1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[9] in inodes:
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def _check_requeues(trials: list[FrozenTrial]) -> None:
    """Every failed-by-fault trial is re-queued exactly once; no copy is duplicated."""
    sources = [t.user_attrs[REQUEUED_FROM] for t in trials if REQUEUED_FROM in t.user_attrs]
    assert len(sources) == len(set(sources)), f"duplicated re-queues: {sorted(sources)}"
    faulted = {
        t.number
        for t in trials
        if t.state == TrialState.FAIL
        and str(t.user_attrs.get(FAIL_REASON, "")).startswith(("stale", "interrupted"))
        and t.params
    }
    assert set(sources) == faulted


def _check_done(target: Target, total_workers: int) -> list[FrozenTrial]:
    trials = _trials(target)
    states = [t.state for t in trials]
    complete = states.count(TrialState.COMPLETE)
    assert N_TRIALS <= complete <= N_TRIALS + (total_workers - 1) * BATCH
    assert TrialState.RUNNING not in states
    _check_requeues(trials)
    return trials


@pytest.mark.timeout(600)
def test_sigkilled_worker_is_survived(target: Target) -> None:
    """Journal: one command, 2 local workers. PostgreSQL: the same command twice (two
    "machines", 1 worker each, racing to create the tables and the study)."""
    commands = [_start(target, 2)] if target.url is None else [_start(target, 1) for _ in "ab"]
    pid, held = _freeze_mid_batch(target, commands)
    os.kill(pid, signal.SIGKILL)
    results = [_finish(proc) for proc in commands]
    survivors = [(code, err) for code, err in results if code != -signal.SIGKILL]
    assert survivors and all(code == 0 for code, _ in survivors), results
    assert all("Traceback" not in err for _, err in results), results
    trials = _check_done(target, total_workers=2)
    assert all(trials[n].state == TrialState.FAIL for n in held)
    copies = {t.user_attrs.get(REQUEUED_FROM) for t in trials}
    assert set(held) <= copies


@pytest.mark.timeout(600)
def test_sigint_fails_in_flight_trials_and_rerun_resumes(target: Target) -> None:
    """Journal: 1 worker, in the command's own process. PostgreSQL: 2 worker processes, to
    which the command forwards the signal as SIGTERM."""
    workers = 1 if target.url is None else 2
    proc = _start(target, workers)
    pid, held = _freeze_mid_batch(target, [proc])
    proc.send_signal(signal.SIGINT)  # delivered to the stopped worker when it continues
    time.sleep(0.5)
    os.kill(pid, signal.SIGCONT)
    code, err = _finish(proc)
    assert code == 130, err
    assert "Traceback" not in err and "interrupted" in err, err
    assert sum("interrupted" in line for line in err.splitlines()) == 1, err  # not one per worker
    trials = _trials(target)
    assert TrialState.RUNNING not in [t.state for t in trials]
    for number in held:  # failed by the worker itself — or told, if it was telling already
        trial = trials[number]
        reason = str(trial.user_attrs.get(FAIL_REASON, ""))
        assert trial.state == TrialState.COMPLETE or (
            trial.state == TrialState.FAIL and reason.startswith("interrupted by SIG")
        ), (trial.state, reason)
    _check_requeues(trials)
    code, err = _finish(_start(target, workers))
    assert code == 0, err
    done = _check_done(target, total_workers=workers)
    assert not [t for t in done if t.state == TrialState.WAITING]


@pytest.mark.timeout(600)
@pytest.mark.parametrize("workers", [1, 2])
def test_lost_database_exits_3_and_rerun_resumes(
    postgres_server: PostgresServer, tmp_path: Path, workers: int
) -> None:
    """The server stops mid-study: one line (for N workers too), exit 3; once it is back the
    same command finishes."""
    server = PostgresServer.start()  # a private server: this test stops it
    try:
        url = server.create_database()
        target = Target(out=tmp_path / "runs", url=url)
        proc = _start(target, workers)
        _wait_for("claimed RUNNING trial", _claimed_running(target), [proc])
        server.halt()
        code, err = _finish(proc)
        assert code == 3, err
        assert "Traceback" not in err, err
        assert err.strip().splitlines()[-1].startswith("error: lost the study storage"), err
        assert sum(line.startswith("error:") for line in err.splitlines()) == 1, err
        server.resume()
        fresh = Target(out=target.out, url=url)
        code, err = _finish(_start(fresh, workers))
        assert code == 0, err
        _check_done(fresh, total_workers=workers)
    finally:
        server.stop()


@pytest.mark.timeout(600)
def test_frozen_worker_drops_its_swept_trials_and_carries_on(target: Target) -> None:
    """A worker stopped (SIGSTOP) past --stale-after has its trials swept by the other; once
    continued it drops them (no UpdateFinishedTrialError), and the study ends with exports."""
    commands = [_start(target, 2)] if target.url is None else [_start(target, 1) for _ in "ab"]
    pid, held = _freeze_mid_batch(target, commands)
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:  # the other worker sweeps them after --stale-after
        states = {t.number: t.state for t in _trials(target)}
        if all(states[n] == TrialState.FAIL for n in held):
            break
        time.sleep(0.1)
    os.kill(pid, signal.SIGCONT)
    results = [_finish(proc) for proc in commands]
    assert all(code == 0 for code, _ in results), results
    assert all("Traceback" not in err for _, err in results), results
    trials = _check_done(target, total_workers=2)
    assert all(trials[n].state == TrialState.FAIL for n in held)
    assert all(str(trials[n].user_attrs[FAIL_REASON]).startswith("stale") for n in held)
    assert (target.out / STUDY / "trials.parquet").exists()


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z"


@pytest.mark.timeout(600)
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_stop_when_their_launcher_is_killed(tmp_path: Path) -> None:
    target = Target(out=tmp_path / "runs", url=None)
    launcher = _start(target, 2)
    _wait_for("claimed RUNNING trial", _claimed_running(target), [launcher])
    workers = _children(launcher.pid)
    assert len(workers) == 2
    launcher.kill()
    launcher.communicate()
    deadline = time.monotonic() + 30.0
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in workers), "workers outlived their launcher"
    before = {t.number: t.value for t in _trials(target) if t.state == TrialState.COMPLETE}
    code, err = _finish(_start(target, 2))
    assert code == 0, err
    trials = _check_done(target, total_workers=2)
    assert {n: trials[n].value for n in before} == before


def test_workers_exporting_the_same_file_at_once_all_succeed(tmp_path: Path) -> None:
    """Every worker of a study writes its exports at the end, often at the same moment: each
    writes a file of its own and renames it over the export, so none fails and the file is
    always whole."""
    from concurrent.futures import ThreadPoolExecutor

    import pandas as pd

    from studies.exports import write_json, write_table

    table = pd.DataFrame({"lam": [0.1 * k for k in range(200)], "val": [1.0] * 200})

    def export(k: int) -> None:
        for _ in range(25):
            write_table(table, tmp_path / "grid.parquet")
            write_json({"writer": k}, tmp_path / "run.json")

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(export, range(4)))  # re-raises a writer's error
    assert pd.read_parquet(tmp_path / "grid.parquet").equals(table)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.parquet", "run.json"]
