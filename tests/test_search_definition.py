"""A study's defining settings: recorded at creation, compared on rerun, refused without a write,
and race-free when two processes start one study at once."""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path

import optuna
import pytest
from optuna.storages import RDBStorage
from optuna.study import StudyDirection
from optuna.trial import TrialState

from studies.cli import Settings, UsageError, parse_args
from studies.definition import (
    DEFINING,
    DEFINITION_ATTR,
    check_definition,
    definition_of,
    open_study,
)
from studies.problem import StudyProblem
from studies.search import main
from studies.space import make_sampler, with_train_defaults

ROOT = Path(__file__).resolve().parent.parent
SMALL = ["--seeds", "2", "--epochs", "4", "--grid-points", "3", "--batch", "3", "--no-report"]
BASE = ["--penalties", "l1,l2", "--sampler", "random"]


def run(out: Path, *extra: str, n_trials: int = 3) -> int:
    return main(["--out", str(out), "--n-trials", str(n_trials), *SMALL, *BASE, *extra])


def stored_files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("study.log*"))}


def test_every_defining_setting_is_a_settings_field_or_documented() -> None:
    fields = {f.name for f in dataclasses.fields(Settings)}
    keys = [d.key for d in DEFINING]
    assert len(keys) == len(set(keys))
    for d in DEFINING:
        assert d.key in fields or not d.label.startswith("--"), d


def test_order_only_difference_is_accepted(tmp_path: Path) -> None:
    assert run(tmp_path) == 0
    assert run(tmp_path, "--penalties", "l2,l1", n_trials=5) == 0
    assert run(tmp_path, "--penalties", "l2,l1,l2", n_trials=6) == 0
    study = optuna.load_study(study_name="weight-decay", storage=_journal_url(tmp_path))
    assert not study.get_trials(states=(TrialState.FAIL,))
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) >= 6


def _journal_url(out: Path) -> optuna.storages.BaseStorage:
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    return JournalStorage(JournalFileBackend(str(out / "weight-decay" / "study.log")))


CHANGES = {
    "--penalties": ["--penalties", "l1,l2,none"],
    "--lam-range": ["--lam-range", "1e-3", "10"],
    "--seeds": ["--seeds", "3"],
    "--seed": ["--seed", "1"],
    "--epochs": ["--epochs", "5"],
    "--lr": ["--lr", "0.001"],
    "--init-scale": ["--init-scale", "0.5"],
    "--sampler": ["--sampler", "grid"],
    "--problem": ["--problem", "synthetic-sparse"],
}


@pytest.mark.parametrize("flag", list(CHANGES))
def test_changed_setting_is_refused_in_one_line_writing_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str
) -> None:
    assert run(tmp_path) == 0
    before = stored_files(tmp_path)
    capsys.readouterr()
    assert run(tmp_path, *CHANGES[flag], n_trials=5) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert f" {flag} " in err and "--study-name" in err
    assert stored_files(tmp_path) == before


def test_tpe_may_continue_a_random_study(tmp_path: Path) -> None:
    assert run(tmp_path) == 0
    assert run(tmp_path, "--sampler", "tpe", n_trials=5) == 0


def test_refused_rerun_leaves_sqlite_byte_identical(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "s.db"
    storage = ["--storage", f"sqlite:///{db}"]
    assert run(tmp_path, *storage) == 0
    before = db.read_bytes()
    assert run(tmp_path, *storage, "--seed", "9", n_trials=5) == 2
    assert "--seed" in capsys.readouterr().err
    assert db.read_bytes() == before


def _settings(*argv: str) -> tuple[Settings, StudyProblem]:
    settings = with_train_defaults(parse_args(["--study-name", "race", *argv]))
    problem = StudyProblem.from_settings(settings)
    return dataclasses.replace(settings, problem=problem.label), problem


def test_a_joiner_waits_for_the_creators_record() -> None:
    """The loser of the creation race compares against the winner's record, even when it
    reads the study before the winner has written the record."""
    storage = optuna.storages.InMemoryStorage()
    (winner, problem), (loser, _) = _settings("--seed", "1"), _settings("--seed", "2")
    study_id = storage.create_new_study([StudyDirection.MINIMIZE], "race")  # record not yet
    writer = threading.Timer(
        0.3,
        lambda: storage.set_study_user_attr(
            study_id, DEFINITION_ATTR, definition_of(winner, problem)
        ),
    )
    writer.start()
    started = time.monotonic()
    with pytest.raises(UsageError, match="--seed 1, not 2"):
        open_study(storage, loser, problem, make_sampler(loser))
    assert time.monotonic() - started >= 0.25
    writer.join()
    assert open_study(storage, winner, problem, make_sampler(winner)).study_name == "race"


def test_a_study_without_a_record_adopts_the_first_runs() -> None:
    storage = optuna.storages.InMemoryStorage()
    study_id = storage.create_new_study([StudyDirection.MINIMIZE], "race")
    settings, problem = _settings()
    open_study(storage, settings, problem, make_sampler(settings), wait_s=0.0)
    record = storage.get_study_user_attrs(study_id)[DEFINITION_ATTR]
    assert record == definition_of(settings, problem)


def test_an_older_record_compares_only_its_keys() -> None:
    settings, problem = _settings("--seed", "4")
    check_definition({"seed": 4, "lr": settings.lr}, settings, problem)
    with pytest.raises(UsageError, match="--lr"):
        check_definition({"seed": 4, "lr": 0.5}, settings, problem)


def test_readme_examples_run_as_printed_after_the_default_study(tmp_path: Path) -> None:
    """Each line of the README's "Running a study" block, at test size, after the default."""
    text = (ROOT / "README.md").read_text()
    block = text.split("## Running a study", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    lines = [line.split("#", 1)[0].strip() for line in block.strip().splitlines()]
    small = ["--out", str(tmp_path), *SMALL, "--n-trials", "3"]
    (tmp_path / "study.toml").write_text("seeds = 2\n")
    for line in lines:
        argv = shlex.split(line)
        assert argv[:3] == ["python", "-m", "studies.search"], line
        argv = [a.replace("runs/", f"{tmp_path}/") for a in argv[3:]]
        if "--config" in argv:
            argv[argv.index("--config") + 1] = str(tmp_path / "study.toml")
        if "--epochs" in argv:  # a line that sets the budget keeps it; SMALL would override
            small_here = [a for a in small if a not in ("--epochs", "4")]
        else:
            small_here = small
        assert main([*argv, *small_here]) == 0, line


@pytest.mark.slow
def test_two_processes_racing_with_different_seeds_one_is_refused(
    postgres_url: str, tmp_path: Path
) -> None:
    command = [
        sys.executable, "-m", "studies.search", "--storage", postgres_url, "--study-name", "race",
        "--n-trials", "2", *SMALL, "--out", str(tmp_path),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen(
            [*command, "--seed", str(seed)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in (1, 2)
    ]
    results = [(p.communicate(timeout=300)[1], p.returncode) for p in procs]
    assert sorted(code for _, code in results) == [0, 2], results
    loser = next(err for err, code in results if code == 2).strip()
    assert len(loser.splitlines()) == 1, loser
    match = re.search(r"--seed (\d), not (\d)", loser)
    assert match is not None, loser
    winner_seed = int(match.group(1))
    study = optuna.load_study(study_name="race", storage=RDBStorage(postgres_url))
    assert study.user_attrs[DEFINITION_ATTR]["seed"] == winner_seed
    assert {t.state for t in study.trials} == {TrialState.COMPLETE}
