"""End-to-end behaviour of ``python -m studies.search``: small studies in a temporary directory."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import optuna
import pandas as pd
import pytest
from optuna.storages.journal import JournalFileBackend, JournalStorage
from optuna.trial import TrialState

import studies.grid
from studies.search import main
from studies.storage import slugify

ROOT = Path(__file__).resolve().parent.parent
#: A study small enough for a test: few trials, seeds, epochs and grid points.
SMALL = ["--seeds", "2", "--epochs", "4", "--grid-points", "3", "--batch", "3", "--no-report"]


def run(out: Path, *extra: str, n_trials: int = 4) -> int:
    return main(["--out", str(out), "--n-trials", str(n_trials), *SMALL, *extra])


def journal_study(out: Path, name: str = "weight-decay") -> optuna.Study:
    """The study as plain Optuna reads it from the run's journal file."""
    path = out / slugify(name) / "study.log"
    return optuna.load_study(study_name=name, storage=JournalStorage(JournalFileBackend(str(path))))


def trial_signature(study: optuna.Study) -> list[tuple[int, str, dict[str, object], float | None]]:
    return [(t.number, t.state.name, t.params, t.value) for t in study.trials]


def test_small_study_writes_the_output_contract(tmp_path: Path) -> None:
    assert run(tmp_path) == 0
    run_dir = tmp_path / "weight-decay"
    trials = pd.read_parquet(run_dir / "trials.parquet")
    assert list(trials.columns) == [
        "number",
        "state",
        "penalty",
        "rule",
        "impl",
        "loop",
        "optimizer",
        "decay",
        "lr",
        "lam",
        "l1_ratio",
        "value",
        "val_std",
        "val_ci95",
        "w_norm",
        "zero_fraction",
        "fail_reason",
        "datetime_start",
        "datetime_complete",
    ]
    assert (trials["state"] == "COMPLETE").sum() == 4
    assert (trials["optimizer"] == "sgd").all() and (trials["lr"] == 0.003).all()
    assert not any("test" in c for c in trials.columns)
    assert (trials.loc[trials["penalty"] == "none", "lam"] == 0).all()
    assert trials.loc[trials["penalty"] != "elastic", "l1_ratio"].isna().all()
    grid = pd.read_parquet(run_dir / "grid.parquet")
    # none once + l2 + l1 × 2 rules + elastic × 2 rules × 3 l1_ratio, 3 λ each, × 2 seeds
    assert len(grid) == (1 + 3 * (1 + 2 + 6)) * 2
    assert set(grid["loop"]) == {"scratch", "proximal"}
    assert set(zip(grid["rule"], grid["impl"], strict=True)) == {
        ("coupled", "scratch"),
        ("proximal", "functional"),
    }
    oracle = pd.read_parquet(run_dir / "oracle.parquet")
    assert set(oracle["penalty"]) == {"l2", "l1", "elastic"}
    selected = pd.read_parquet(run_dir / "selected.parquet")
    assert selected["label"].iloc[0] == "best" and selected["is_best"].sum() == 1
    assert "no-decay" in set(selected["label"])
    assert selected["test_mean"].notna().all()
    curves = pd.read_parquet(run_dir / "curves.parquet")
    assert set(curves["split"]) == {"train", "val"}
    assert curves["epoch"].min() == 1 and curves["epoch"].max() == 4
    trained = selected[selected["label"] != "null"]  # the null model has no epochs
    assert len(curves) == len(trained) * 2 * 4 * 2  # labels × seeds × epochs × splits
    info = json.loads((run_dir / "run.json").read_text())
    for key in (
        "command",
        "study_name",
        "storage",
        "problem",
        "settings",
        "versions",
        "device",
        "seeds",
        "started",
        "finished",
    ):
        assert key in info
    assert len(info["seeds"]["data_seeds"]) == 2
    assert info["settings"]["n_trials"] == 4
    phases = info["phases"]
    assert {"imports", "search", "grid", "oracles", "selection", "exports"} <= set(phases)
    assert phases["total"] == pytest.approx(sum(v for k, v in phases.items() if k != "total"),
                                            abs=0.01)  # fmt: skip
    assert info["threads"]["torch_intra_op"] == 1 and info["threads"]["pool"] >= 1
    reach = info["summary"]["time_to_1pct"]
    if reach is not None:  # recomputed from the exported trials and grid
        done = trials[trials["state"] == "COMPLETE"].sort_values(["datetime_complete", "number"])
        target = info["summary"]["grid_best"]["val_mean"] * 1.01
        first = int((done["value"].cummin() <= target).to_numpy().argmax())
        assert reach["trials"] == first + 1


def test_best_trial_matches_its_selected_row(tmp_path: Path) -> None:
    assert run(tmp_path) == 0
    study = journal_study(tmp_path)
    selected = pd.read_parquet(tmp_path / "weight-decay" / "selected.parquet")
    best = selected.set_index("label").loc["best"]
    assert best["penalty"] == study.best_trial.params["penalty"]
    assert best["val_mean"] == pytest.approx(study.best_value, rel=1e-5)


def test_rerun_tops_up_to_n_trials_and_keeps_earlier_trials(tmp_path: Path) -> None:
    light = ("--penalties", "none,l2")
    assert run(tmp_path, *light, n_trials=3) == 0
    first = trial_signature(journal_study(tmp_path))
    assert run(tmp_path, *light, n_trials=6) == 0
    study = journal_study(tmp_path)
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 6
    assert trial_signature(study)[:3] == first
    assert run(tmp_path, *light, n_trials=6) == 0  # already complete: nothing new
    assert len(journal_study(tmp_path).trials) == 6


def test_rerun_reuses_the_dense_grid_until_its_settings_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    light = ("--penalties", "l2")
    assert run(tmp_path, *light, n_trials=2) == 0
    before = pd.read_parquet(tmp_path / "weight-decay" / "grid.parquet")

    def must_not_run(*args: object) -> pd.DataFrame:
        raise AssertionError("the dense grid was recomputed")

    monkeypatch.setattr(studies.grid, "dense_grid", must_not_run)
    assert run(tmp_path, *light, n_trials=3) == 0  # top-up: same grid
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "weight-decay" / "grid.parquet"), before
    )
    with pytest.raises(AssertionError, match="recomputed"):
        main(["--out", str(tmp_path), "--n-trials", "3", *light, *SMALL, "--grid-points", "5"])


def test_same_seed_gives_same_trials_and_best(tmp_path: Path) -> None:
    space = ("--penalties", "l2,l1")  # still conditional: the rule exists only for l1
    assert run(tmp_path / "a", "--seed", "7", *space, n_trials=5) == 0
    assert run(tmp_path / "b", "--seed", "7", *space, n_trials=5) == 0
    assert run(tmp_path / "c", "--seed", "8", *space, n_trials=5) == 0
    a, b, c = (journal_study(tmp_path / d) for d in "abc")
    assert trial_signature(a) == trial_signature(b)
    assert a.best_trial.params == b.best_trial.params
    assert [t.params for t in a.trials] != [t.params for t in c.trials]


def test_grid_and_oracles_beside_the_search_give_the_same_files(tmp_path: Path) -> None:
    """With two pool threads the grid and the oracles run beside the search (``studies.ahead``);
    with one, after it, as before: every table and the summary are the same."""
    assert run(tmp_path / "one", "--threads", "1", n_trials=6) == 0
    assert run(tmp_path / "two", "--threads", "2", n_trials=6) == 0
    one, two = tmp_path / "one" / "weight-decay", tmp_path / "two" / "weight-decay"
    for name in ("grid", "oracle", "selected", "replication", "comparisons"):
        pd.testing.assert_frame_equal(
            pd.read_parquet(one / f"{name}.parquet"), pd.read_parquet(two / f"{name}.parquet")
        )
    info_one, info_two = (json.loads((d / "run.json").read_text()) for d in (one, two))
    assert info_two["phases_beside"]["search"].keys() == {"grid", "oracles"}
    assert info_one["phases_beside"] == {}
    assert info_one["verdicts"] == info_two["verdicts"]
    assert trial_signature(journal_study(tmp_path / "one")) == trial_signature(
        journal_study(tmp_path / "two")
    )


def test_rerun_with_another_objective_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(tmp_path, "--penalties", "l2", n_trials=2) == 0
    capsys.readouterr()
    assert run(tmp_path, "--penalties", "l2", "--lr", "0.001", n_trials=4) == 2
    err = capsys.readouterr().err.strip()
    assert "--lr" in err and len(err.splitlines()) == 1
    assert len(journal_study(tmp_path).trials) == 2


def test_always_diverging_settings_fail_every_trial(tmp_path: Path) -> None:
    assert run(tmp_path, "--lr", "1", "--penalties", "none,l2", n_trials=3) == 2
    study = journal_study(tmp_path)
    assert study.trials and all(t.state == TrialState.FAIL for t in study.trials)
    seeds = json.loads((tmp_path / "weight-decay" / "run.json").read_text())["seeds"]
    for trial in study.trials:
        assert "diverged" in trial.user_attrs["fail_reason"]
        assert trial.user_attrs["diverged_seeds"] == seeds["data_seeds"]
    trials = pd.read_parquet(tmp_path / "weight-decay" / "trials.parquet")
    assert (trials["state"] == "FAIL").all() and (trials["fail_reason"] != "").all()


def test_diverging_trials_fail_and_do_not_count(tmp_path: Path) -> None:
    # lr 0.01: λ = 1000 diverges (ηλ = 10 > 2); the grid's smaller λ train fine.
    args = ["--lr", "0.01", "--penalties", "l2", "--lam-range", "0.1", "1000", "--sampler", "grid"]
    assert run(tmp_path, *args, n_trials=4) == 0
    study = journal_study(tmp_path)
    failed = study.get_trials(states=(TrialState.FAIL,))
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 4
    assert any(t.params["lam"] == pytest.approx(1000) for t in failed)
    assert all(t.value is None and t.user_attrs["diverged_seeds"] for t in failed)
    grid = pd.read_parquet(tmp_path / "weight-decay" / "grid.parquet")
    assert (grid.loc[grid["lam"] == grid["lam"].max(), "status"] == "diverged").all()


def test_grid_sampler_enqueues_each_point_once(tmp_path: Path) -> None:
    args = ["--sampler", "grid", "--penalties", "l2,l1"]  # l2, l1 × 2 rules: 2 λ each
    assert run(tmp_path, *args, n_trials=6) == 0
    assert run(tmp_path, *args, n_trials=6) == 0
    study = journal_study(tmp_path)
    keys = [(t.params["penalty"], t.params.get("rule"), t.params["lam"]) for t in study.trials]
    assert len(keys) == 6 and len(set(keys)) == 6
    assert sorted({k[2] for k in keys}) == pytest.approx([1e-5, 1e2])  # the range's ends


def test_hostile_study_name_stays_inside_out(tmp_path: Path) -> None:
    out = tmp_path / "out"
    name = "../../<script>alert('x')</script>"
    assert run(out, "--study-name", name, "--penalties", "l2", n_trials=2) == 0
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    (run_dir,) = list(out.iterdir())
    assert re.fullmatch(r"[a-z0-9][a-z0-9._-]*", run_dir.name)
    assert all(p.resolve().is_relative_to(out.resolve()) for p in out.rglob("*"))
    assert json.loads((run_dir / "run.json").read_text())["study_name"] == name
    assert len(journal_study(out, name).trials) == 2


def test_toml_config_is_read_and_flags_win(tmp_path: Path) -> None:
    config = tmp_path / "study.toml"
    config.write_text('n-trials = 2\nseeds = 3\npenalties = ["l2", "none"]\nstudy_name = "cfg"\n')
    out = tmp_path / "out"
    argv = [
        "--config",
        str(config),
        "--out",
        str(out),
        "--n-trials",
        "3",
        "--epochs",
        "3",
        "--grid-points",
        "2",
        "--no-report",
    ]
    assert main(argv) == 0
    info = json.loads((out / "cfg" / "run.json").read_text())
    assert info["settings"]["n_trials"] == 3  # the flag
    assert info["settings"]["seeds"] == 3  # the file
    assert info["settings"]["penalties"] == ["none", "l2"]  # a set, in the registry's order
    assert {t.params["penalty"] for t in journal_study(out, "cfg").trials} <= {"l2", "none"}


def test_sqlite_storage_is_readable_by_optuna(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    assert run(tmp_path / "out", "--storage", url, "--penalties", "l2", n_trials=2) == 0
    assert not (tmp_path / "out" / "weight-decay" / "study.log").exists()
    study = optuna.load_study(study_name="weight-decay", storage=url)
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 2


@pytest.mark.slow
def test_module_runs_as_a_command(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "studies.search",
            "--out",
            str(tmp_path),
            "--n-trials",
            "2",
            "--penalties",
            "l2",
            *SMALL,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "best" in proc.stdout and "regret vs dense grid" in proc.stdout
    assert (tmp_path / "weight-decay" / "study.log").is_file()


DIVERGING = ["--lr", "1", "--penalties", "none,l2"]


def test_a_study_whose_trials_all_diverge_says_so_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(tmp_path, *DIVERGING, n_trials=3) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert re.match(r"error: 0 of 3 trials completed; \d+ FAIL \(\d+ diverged", err), err


@pytest.mark.slow
def test_two_workers_whose_trials_all_diverge_exit_like_one(tmp_path: Path) -> None:
    command = [
        sys.executable, "-m", "studies.search", "--out", str(tmp_path), "--n-trials", "3",
        *SMALL, *DIVERGING, "--workers", "2",
    ]  # fmt: skip
    proc = subprocess.run(
        command,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr.strip()
    assert len(err.splitlines()) == 1, err
    assert re.match(r"error: 0 of 3 trials completed; \d+ FAIL \(\d+ diverged", err), err
