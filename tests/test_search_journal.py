"""The embedded journal under faults: a torn tail is cut (and kept), damage elsewhere is refused
with the file left as it is, a full disk exits 3 and a rerun resumes; no COMPLETE trial is lost."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.storages.journal import JournalFileBackend, JournalStorage
from optuna.trial import TrialState

from studies.journal import TORN_SUFFIX, JournalDamaged, JournalFile, complete_length
from studies.search import main
from tests.python_child import run_python

ROOT = Path(__file__).resolve().parent.parent
SMALL = ["--seeds", "2", "--epochs", "4", "--grid-points", "3", "--batch", "3", "--no-report"]


def run(out: Path, n_trials: int, *extra: str) -> int:
    return main(["--out", str(out), "--n-trials", str(n_trials), *SMALL, *extra])


def journal(out: Path) -> Path:
    return out / "weight-decay" / "study.log"


def complete(path: Path) -> dict[int, tuple[dict[str, object], float | None]]:
    """The COMPLETE trials as plain Optuna reads the journal (it must be readable)."""
    study = optuna.load_study(
        study_name="weight-decay", storage=JournalStorage(JournalFileBackend(str(path)))
    )
    return {t.number: (t.params, t.value) for t in study.get_trials(states=(TrialState.COMPLETE,))}


def test_torn_tail_is_cut_kept_and_the_rerun_resumes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(tmp_path, 4) == 0
    path = journal(tmp_path)
    whole = path.read_bytes()
    os.truncate(path, len(whole) - 40)  # a crash mid-record
    before = complete(path)  # what survived the tear, as Optuna reads it
    kept = whole[whole.rfind(b"\n", 0, len(whole) - 40) + 1 : len(whole) - 40]
    capsys.readouterr()
    # the torn record was a tell of this very process (in-process run): its trial goes stale
    assert run(tmp_path, 6, "--heartbeat-interval", "0.2", "--stale-after", "1") == 0
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if "incomplete record" in line]
    assert len(warnings) == 1 and TORN_SUFFIX in warnings[0]
    assert (path.parent / ("study.log" + TORN_SUFFIX)).read_bytes() == kept
    after = complete(path)  # readable: the rerun did not append onto the torn record
    assert len(after) >= 6
    assert {n: after[n] for n in before} == before
    assert path.read_bytes().startswith(whole[: len(whole) - 40 - len(kept)])


def test_a_complete_garbage_last_line_is_cut_too(tmp_path: Path) -> None:
    assert run(tmp_path, 3) == 0
    path = journal(tmp_path)
    with path.open("ab") as fh:
        fh.write(b"not json at all\n")
    before = complete(path)
    assert run(tmp_path, 5) == 0
    assert (path.parent / ("study.log" + TORN_SUFFIX)).read_bytes() == b"not json at all\n"
    after = complete(path)
    assert len(after) >= 5 and {n: after[n] for n in before} == before


DAMAGE = {
    "garbage line": b"garbage\n",
    "not UTF-8": b"\xff\xfe\n",
    "a record Optuna cannot replay": b'{"op_code": 99, "worker_id": "x"}\n',
}


@pytest.mark.parametrize("damage", DAMAGE.values(), ids=list(DAMAGE))
def test_damage_inside_the_journal_is_refused_and_left_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: bytes
) -> None:
    assert run(tmp_path, 3) == 0
    path = journal(tmp_path)
    lines = path.read_bytes().splitlines(keepends=True)
    damaged = b"".join([*lines[:5], damage, *lines[5:]])
    path.write_bytes(damaged)
    capsys.readouterr()
    assert run(tmp_path, 5) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert str(path) in err and "left as it is" in err
    assert path.read_bytes() == damaged
    assert not (path.parent / ("study.log" + TORN_SUFFIX)).exists()


def test_complete_length_follows_optunas_reader(tmp_path: Path) -> None:
    path = tmp_path / "j.log"
    path.write_bytes(b'{"a":1}\n{"b":2}\n{"c":')
    assert complete_length(path) == len(b'{"a":1}\n{"b":2}\n')
    path.write_bytes(b'{"a":1}\n{"b":2}\n')
    assert complete_length(path) == path.stat().st_size
    path.write_bytes(b'{"a":1}\nxx\n{"b":2}\n')
    with pytest.raises(JournalDamaged, match="line 2"):
        complete_length(path)


def test_an_append_that_fails_leaves_no_partial_record(tmp_path: Path) -> None:
    """A write cut short (here: a file-size limit in a child process) is cut back at once."""
    path = tmp_path / "j.log"
    path.write_bytes(b'{"a":1}\n')
    code = (
        "import resource, sys\n"
        "from studies.journal import JournalFile\n"
        f"resource.setrlimit(resource.RLIMIT_FSIZE, (12, {resource.RLIM_INFINITY}))\n"
        f"JournalFile({str(path)!r}).append_logs([{{'op': 'x' * 50}}])\n"
    )
    proc = run_python(code)
    assert proc.returncode == 1 and "File too large" in proc.stderr
    assert path.read_bytes() == b'{"a":1}\n'
    JournalFile(path).append_logs([{"b": 2}])
    assert path.read_bytes() == b'{"a":1}\n{"b":2}\n'


def _limited(limit: int) -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))


@pytest.mark.slow
def test_full_disk_exits_3_and_a_rerun_resumes(tmp_path: Path) -> None:
    """A full disk simulated by a file-size limit (RLIMIT_FSIZE; Python ignores SIGXFSZ, so a
    write past it fails with EFBIG, as one on a full disk fails with ENOSPC)."""
    assert run(tmp_path, 3) == 0
    path = journal(tmp_path)
    before = complete(path)
    size = path.stat().st_size
    command = [
        sys.executable, "-m", "studies.search", "--out", str(tmp_path), "--n-trials", "60", *SMALL,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        command,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        preexec_fn=lambda: _limited(size + 12_000),
        timeout=300,
    )
    assert proc.returncode == 3, proc.stderr
    err = proc.stderr.strip()
    assert len(err.splitlines()) == 1 and "rerun" in err and "Traceback" not in err, err
    assert path.read_bytes().endswith(b"\n")  # no partial record left
    middle = complete(path)
    assert {n: middle[n] for n in before} == before and len(middle) < 60
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    after = complete(path)
    assert len(after) >= 60 and {n: after[n] for n in middle} == middle
    info = json.loads((tmp_path / "weight-decay" / "run.json").read_text())
    assert info["summary"]["best_value"] == min(v for _, v in after.values() if v is not None)


def test_an_append_whose_lock_was_taken_over_still_completes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process frozen inside its append past the lock's grace period finds the lock released
    by a waiting process; its record is written all the same and it carries on."""
    path = tmp_path / "j.log"
    journal = JournalFile(path)
    real_write = os.write

    def frozen_write(fd: int, data: memoryview) -> int:
        os.unlink(str(path) + ".lock")  # what a waiting process does after the grace period
        return real_write(fd, data)

    monkeypatch.setattr("studies.journal.os.write", frozen_write)
    journal.append_logs([{"a": 1}])
    monkeypatch.undo()
    journal.append_logs([{"b": 2}])
    assert path.read_bytes() == b'{"a":1}\n{"b":2}\n'


def test_only_records_that_end_a_trial_or_change_the_study_are_flushed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A trial's state (COMPLETE, FAIL, re-queued) and the study's records are fsynced with
    every record before them; a new trial, its parameters and attributes are not, one by one."""
    from optuna.storages.journal._storage import JournalOperation as Op

    flushed = {
        Op.CREATE_STUDY,
        Op.DELETE_STUDY,
        Op.SET_STUDY_USER_ATTR,
        Op.SET_STUDY_SYSTEM_ATTR,
        Op.SET_TRIAL_STATE_VALUES,
        Op.DISCARD_TRIALS,
    }
    calls: list[int] = []
    monkeypatch.setattr("studies.journal.os.fsync", calls.append)
    journal = JournalFile(tmp_path / "j.log")
    for op in Op:
        calls.clear()
        journal.append_logs([{"op_code": int(op), "worker_id": "w"}])
        assert len(calls) == (op in flushed), op.name
    calls.clear()
    journal.append_logs(
        [{"op_code": int(Op.SET_TRIAL_PARAM)}, {"op_code": int(Op.SET_TRIAL_STATE_VALUES)}]
    )
    assert len(calls) == 1
