"""The report built beside the study: ``reports.build.serve`` in steps, ``studies.reporter``."""

from __future__ import annotations

import io
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import reports.load
from reports.build import StagedReport, build_report, serve
from reports.load import load_run
from studies.reporter import Reporter, beside_possible
from studies.search import main
from tests.test_reports import write_study

SMALL = ["--seeds", "2", "--epochs", "4", "--grid-points", "3", "--batch", "3"]


def files(report: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(report.iterdir())}


@pytest.mark.slow
@pytest.mark.parametrize("first", [(), ("tables",)], ids=["figures-first", "tables-first"])
def test_steps_write_what_build_report_writes(tmp_path: Path, first: tuple[str, ...]) -> None:
    run_dir = write_study(tmp_path / "study", hostile=False)
    expected = files(build_report(run_dir).parent)
    shutil.rmtree(run_dir / "report")
    out = io.StringIO()
    steps = io.StringIO("".join(f"{step} {run_dir}\n" for step in (*first, "figures", "finish")))
    assert serve(steps, out) == 0
    figures, index = out.getvalue().splitlines()
    assert figures.startswith("figures ") and float(figures.split()[1]) > 0
    assert Path(index) == run_dir / "report" / "index.html"
    assert files(run_dir / "report") == expected
    assert not list(run_dir.glob(".report-*"))


def _rewrite(path: Path, table: pd.DataFrame) -> None:
    """Replace ``path`` the way a study's exports do: a new file renamed over the old one."""
    table.to_parquet(path.with_suffix(".tmp"))
    path.with_suffix(".tmp").replace(path)


@pytest.mark.slow
def test_each_step_reads_only_the_files_written_since(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As in a study: trials, grid and oracle before ``tables``; the selection and the curves
    (after a stale, unreadable selection) before ``figures``; the replication, its comparisons
    and run.json before ``finish``. The report equals the one built from the files at once."""
    whole = write_study(tmp_path / "whole", hostile=False)
    expected = files(build_report(whole).parent)
    run_dir = tmp_path / "study"
    run_dir.mkdir()
    (run_dir / "selected.parquet").write_bytes(b"a stale file from an older run")
    for name in ("trials", "grid", "oracle"):
        shutil.copy(whole / f"{name}.parquet", run_dir)
    reads: list[str] = []
    read_table = reports.load._read_table
    monkeypatch.setattr(
        reports.load, "_read_table", lambda p, n: (reads.append(n), read_table(p, n))[1]
    )
    report = StagedReport(run_dir)
    report.read_tables()
    assert reads == ["trials", "grid", "oracle"]
    for name in ("selected", "curves"):
        _rewrite(run_dir / f"{name}.parquet", pd.read_parquet(whole / f"{name}.parquet"))
    reads.clear()
    report.draw_figures(split=True)
    # the grid of write_study has no lr column: read at the run's lr, which run.json gives later
    assert reads == ["selected", "curves"]
    for name in ("replication", "comparisons"):
        shutil.copy(whole / f"{name}.parquet", run_dir)
    shutil.copy(whole / "run.json", run_dir)
    reads.clear()
    index = report.finish()
    assert sorted(reads) == sorted(["replication", "comparisons", *_lr_read(whole)])
    assert files(index.parent) == expected


def _figure_blocks(index: Path) -> list[str]:
    return re.findall(r"<figure>.*?</figure>", index.read_text(encoding="utf-8"), flags=re.S)


@pytest.mark.slow
def test_a_networks_report_built_beside_says_what_its_rebuild_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the report process is told to read the search's tables, run.json already names the
    model (``finished`` still null): an MLP's figures say it has no oracle line, as
    ``python -m reports.build`` says from the finished files."""
    seen: list[dict[str, Any]] = []
    tables = Reporter.tables

    def record(self: Reporter, run_dir: Path) -> None:
        seen.append(json.loads((run_dir / "run.json").read_text()))
        tables(self, run_dir)

    monkeypatch.setattr(Reporter, "tables", record)
    out = tmp_path / "out"
    assert main(["--out", str(out), "--model", "mlp", "--n-trials", "6", *SMALL]) == 0
    assert [(r["settings"]["model"], r["finished"]) for r in seen] == [("mlp", None)]
    run_dir = out / "weight-decay"
    beside = _figure_blocks(run_dir / "report" / "index.html")
    assert any("No oracle line: a network" in block for block in beside)
    assert beside == _figure_blocks(build_report(run_dir))


def _lr_read(run_dir: Path) -> list[str]:
    """The tables read before ``finish`` that take the run's lr (no complete lr column): read
    again once run.json records it."""
    out = []
    for name in ("trials", "grid", "selected", "curves"):
        table = pd.read_parquet(run_dir / f"{name}.parquet")
        if "lr" not in table or table["lr"].isna().any():
            out.append(name)
    return out


def test_load_run_takes_over_only_unchanged_files(tmp_path: Path) -> None:
    run_dir = write_study(tmp_path / "study", hostile=False)
    grid = pd.read_parquet(run_dir / "grid.parquet").assign(lr=0.003)
    _rewrite(run_dir / "grid.parquet", grid)
    first = load_run(run_dir)
    again = load_run(run_dir, first)
    assert again.grid is first.grid and again.oracle is first.oracle
    changed = pd.read_parquet(run_dir / "oracle.parquet")
    changed["val_loss"] = changed["val_loss"] * 2.0
    _rewrite(run_dir / "oracle.parquet", changed)
    third = load_run(run_dir, again)
    assert third.grid is first.grid
    assert third.oracle is not first.oracle
    pd.testing.assert_frame_equal(third.oracle, load_run(run_dir).oracle)
    assert third.oracle is not None and first.oracle is not None
    assert (third.oracle["val_loss"] == 2.0 * first.oracle["val_loss"]).all()


def test_a_table_read_at_an_unknown_lr_is_read_again_at_the_recorded_one(tmp_path: Path) -> None:
    run_dir = write_study(tmp_path / "study", hostile=False)
    assert "lr" not in pd.read_parquet(run_dir / "selected.parquet")
    (run_dir / "run.json").rename(tmp_path / "run.json")  # not written yet
    early = load_run(run_dir, tables=("selected",))
    assert early.run == {} and early.grid is None and early.notes == ("run.json is missing",)
    assert early.selected is not None and early.selected["lr"].isna().all()
    (tmp_path / "run.json").rename(run_dir / "run.json")
    late = load_run(run_dir, early)
    assert late.selected is not None and (late.selected["lr"] == 0.003).all()
    pd.testing.assert_frame_equal(late.selected, load_run(run_dir).selected)


@pytest.mark.slow
@pytest.mark.parametrize("steps", [("figures",), ("tables",), ("tables", "figures")])
def test_a_study_that_stops_before_finish_leaves_nothing(
    tmp_path: Path, steps: tuple[str, ...]
) -> None:
    run_dir = write_study(tmp_path / "study", hostile=False)
    sent = "".join(f"{step} {run_dir}\n" for step in steps)
    assert serve(io.StringIO(sent), io.StringIO()) == 0
    assert not (run_dir / "report").exists() and not list(run_dir.glob(".report-*"))
    assert serve(io.StringIO(f"finish {tmp_path / 'nowhere'}\n"), io.StringIO()) == 2


@pytest.mark.slow
def test_a_report_process_that_fails_says_so_and_finish_returns_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reporter = Reporter(beside=True)
    assert reporter.beside
    reporter.figures(tmp_path)  # not a study directory: the process prints why and exits 2
    assert reporter.finish(tmp_path) == 1
    err = capsys.readouterr().err
    assert f"report failed; the study and its exports are saved in {tmp_path}" in err


@pytest.mark.slow
def test_stop_ends_the_process_without_a_report(tmp_path: Path) -> None:
    run_dir = write_study(tmp_path / "study", hostile=False)
    reporter = Reporter(beside=True)
    process = reporter._process
    assert process is not None
    reporter.stop()  # before figures: killed at once
    assert process.poll() is not None
    reporter = Reporter(beside=True)
    process = reporter._process
    reporter.figures(run_dir)
    reporter.stop()  # after figures: told to stop, waited for, nothing staged is left
    assert process is not None and process.returncode == 0
    assert not (run_dir / "report").exists() and not list(run_dir.glob(".report-*"))


def test_beside_needs_two_cores_and_more_than_one_thread() -> None:
    assert not beside_possible(1)
    assert beside_possible(None) == beside_possible(2)


@pytest.mark.slow
def test_a_study_reports_beside_and_in_process_alike(tmp_path: Path) -> None:
    """``--threads 1``: the report is built in this process at the end; else beside it. The
    files are the same, and the closing line says what ran beside the replication."""
    assert main(["--out", str(tmp_path / "a"), "--n-trials", "6", *SMALL, "--threads", "1"]) == 0
    assert main(["--out", str(tmp_path / "b"), "--n-trials", "6", *SMALL, "--threads", "2"]) == 0
    a, b = (tmp_path / d / "weight-decay" / "report" for d in "ab")
    pngs = [p.name for p in a.iterdir() if p.suffix == ".png"]
    assert len(pngs) >= 4
    assert {n: files(a)[n] for n in pngs} == {n: files(b)[n] for n in pngs}
    info = (tmp_path / "b" / "weight-decay" / "run.json").read_text()
    assert '"report figures"' in info
