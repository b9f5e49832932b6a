"""The report built beside the study: ``reports.build.serve`` in steps, ``studies.reporter``."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest

from reports.build import build_report, serve
from studies.reporter import Reporter, beside_possible
from studies.search import main
from tests.test_reports import write_study

SMALL = ["--seeds", "2", "--epochs", "4", "--grid-points", "3", "--batch", "3"]


def files(report: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(report.iterdir())}


@pytest.mark.slow
def test_figures_then_finish_writes_what_build_report_writes(tmp_path: Path) -> None:
    run_dir = write_study(tmp_path / "study", hostile=False)
    expected = files(build_report(run_dir).parent)
    shutil.rmtree(run_dir / "report")
    out = io.StringIO()
    steps = io.StringIO(f"figures {run_dir}\nfinish {run_dir}\n")
    assert serve(steps, out) == 0
    figures, index = out.getvalue().splitlines()
    assert figures.startswith("figures ") and float(figures.split()[1]) > 0
    assert Path(index) == run_dir / "report" / "index.html"
    assert files(run_dir / "report") == expected
    assert not list(run_dir.glob(".report-*"))


@pytest.mark.slow
def test_a_study_that_stops_before_finish_leaves_nothing(tmp_path: Path) -> None:
    run_dir = write_study(tmp_path / "study", hostile=False)
    assert serve(io.StringIO(f"figures {run_dir}\n"), io.StringIO()) == 0
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
