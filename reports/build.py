"""Build the static report of one study: ``python -m reports.build RUN_DIR [--benchmarks DIR]``.

Reads only exported files (``docs/outputs.md``) and writes ``RUN_DIR/report/``: ``index.html``
(no scripts, no network; figures are PNG files beside it), ``summary.md`` and the figures. The new
report is assembled in a temporary folder and then replaces the old one, so a rebuild never leaves
stale figures behind and the same inputs give the same files.
"""

from __future__ import annotations

import argparse
import os
import pickle
import shutil
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

import pandas as pd

from reports.bench_results import BenchData, default_benchmarks_dir, load_benchmarks
from reports.conclusions import problem_name
from reports.document import Document, Figure
from reports.load import ReportInputError, RunData, load_run
from reports.lr_lambda import reference_slice
from reports.plotting import Missing
from reports.render import render_html, render_markdown
from reports.sections import (
    ACCURACY_FIGURE,
    STUDY_FIGURES,
    bench_section,
    environment_section,
    study_figures,
    study_sections,
)
from reports.stats import grid_summary, oracle_summary

__all__ = ["ReportInputError", "StagedReport", "build_report", "main", "serve"]

#: The grid's summary, the slice the figures against λ show, and the oracle's summary.
Summaries = tuple[pd.DataFrame | None, pd.DataFrame | None, pd.DataFrame | None]


def build_report(run_dir: Path, benchmarks_dir: Path | None = None) -> Path:
    """Write ``run_dir/report/`` and return the path of its ``index.html``.

    ``benchmarks_dir`` defaults to ``run_dir/../benchmarks``; when it holds no results the report
    says how to produce them. Raises ``ReportInputError`` for a missing or empty study, or for an
    explicitly named benchmarks folder that does not exist.
    """
    return StagedReport(run_dir, benchmarks_dir).finish()


class StagedReport:
    """A report built in steps: ``read_tables`` (optional) once the search's tables are
    exported, ``draw_figures`` once the selection is exported (figures 1–4 read nothing the
    replication writes), ``finish`` once every file is written — so a study can draw its figures
    while its replication runs; each step reads only the files written since the last.
    ``build_report`` is all steps at once; they give the same files. ``discard`` drops a report
    that will not be finished."""

    def __init__(self, run_dir: Path, benchmarks_dir: Path | None = None) -> None:
        self.run_dir = Path(run_dir)
        if benchmarks_dir is not None and not Path(benchmarks_dir).is_dir():
            raise ReportInputError(f"no benchmarks directory at {benchmarks_dir}")
        self.bench_dir = (
            Path(benchmarks_dir)
            if benchmarks_dir is not None
            else default_benchmarks_dir(self.run_dir)
        )
        self._staging: Path | None = None
        self._figures: dict[str, Figure | Missing] | None = None
        self._run: RunData | None = None  # the files as last read (unchanged ones are reused)
        self._grid: tuple[pd.DataFrame, pd.DataFrame] | None = None  # (table, its summary)
        self._oracle: tuple[pd.DataFrame, pd.DataFrame] | None = None

    def _stage(self) -> Path:
        if self._staging is None:
            try:
                # mkdir, not mkdtemp: the report gets the umask's permissions, not mkdtemp's 0700
                staging = self.run_dir / f".report-{uuid.uuid4().hex}"
                staging.mkdir()
            except OSError as exc:
                raise ReportInputError(
                    f"cannot write a report into {self.run_dir}: {exc.strerror}"
                ) from None
            self._staging = staging
        return self._staging

    def read_tables(self) -> None:
        """Read the search's tables (trials, grid, oracle) and ``run.json`` and summarize the
        grid and the oracle now, before the selection is exported: ``draw_figures`` and
        ``finish`` read only the files written since, or changed."""
        self._run = load_run(self.run_dir, tables=("grid", "oracle"))
        self._summaries(self._run)

    def _load(self) -> tuple[RunData, Summaries]:
        """The files now (those unchanged since the last read taken over) and their summaries."""
        self._run = load_run(self.run_dir, self._run)
        return self._run, self._summaries(self._run)

    def _summaries(self, run: RunData) -> Summaries:
        """The grid's summary, the slice the figures against λ show (the chosen optimizer at the
        grid lr nearest the chosen one) and the oracle's summary; a table summarized before (the
        same object: its file unchanged) is not summarized again."""
        grid = lam_grid = oracle = None
        if run.grid is not None:
            if self._grid is None or self._grid[0] is not run.grid:
                self._grid = (run.grid, grid_summary(run.grid))
            grid = self._grid[1]
            part = reference_slice(run.grid, run.selected)
            lam_grid = grid if part is run.grid else grid_summary(part)  # the whole grid: same
        if run.oracle is not None:
            if self._oracle is None or self._oracle[0] is not run.oracle:
                self._oracle = (run.oracle, oracle_summary(run.oracle))
            oracle = self._oracle[1]
        return grid, lam_grid, oracle

    def draw_figures(self, split: bool = False) -> None:
        """Draw the study figures 1–4 (``reports.sections.study_figures``) from the files now.

        ``split``: draw ``FORKED_FIGURES`` in a forked copy of this process at the same time
        (``_forked``): for a process that only reads files and draws (``serve``), never one that
        trains (torch's threads)."""
        run, (grid, lam_grid, oracle) = self._load()
        staging = self._stage()
        try:
            if split and hasattr(os, "fork"):
                theirs = _forked(
                    lambda: study_figures(run, grid, oracle, staging, lam_grid, FORKED_FIGURES)
                )
                rest = [n for n in STUDY_FIGURES if n not in FORKED_FIGURES]
                try:
                    mine = study_figures(run, grid, oracle, staging, lam_grid, rest)
                finally:
                    drawn = theirs.result()  # waited for even when drawing here failed
                drawn = {**mine, **drawn}
                order = (*STUDY_FIGURES, ACCURACY_FIGURE)
                self._figures = {name: drawn[name] for name in order if name in drawn}
            else:
                self._figures = study_figures(run, grid, oracle, staging, lam_grid)
        except BaseException:
            self.discard()
            raise

    def finish(self) -> Path:
        """Write ``run_dir/report/`` from the files now (figures 1–4 drawn before, if they were);
        returns the path of its ``index.html``."""
        run, summaries = self._load()
        bench = load_benchmarks(self.bench_dir)
        target = self.run_dir / "report"
        staging = self._stage()
        try:
            document = _document(run, summaries, bench, self.bench_dir, staging, self._figures)
            (staging / "index.html").write_text(render_html(document), encoding="utf-8")
            (staging / "summary.md").write_text(render_markdown(document), encoding="utf-8")
            if target.exists():
                shutil.rmtree(target)
            staging.rename(target)
        finally:
            self.discard()
        return target / "index.html"

    def discard(self) -> None:
        """Remove the staging folder, if any (a finished report has already left it)."""
        if self._staging is not None and self._staging.exists():
            shutil.rmtree(self._staging)
        self._staging = None
        self._figures = None
        self._run = self._grid = self._oracle = None


#: The figures a forked process draws while this one draws the others (about half the time).
FORKED_FIGURES = ("fig2_val_vs_lambda.png",)


class _Forked:
    """The result of a function run in a forked process, read back through a pipe."""

    def __init__(self, pid: int, fd: int) -> None:
        self.pid, self.fd = pid, fd

    def result(self) -> dict[str, Figure | Missing]:
        with os.fdopen(self.fd, "rb") as pipe:
            data = pipe.read()
        _, status = os.waitpid(self.pid, 0)
        if status != 0 or not data:
            raise RuntimeError(f"the process drawing {', '.join(FORKED_FIGURES)} failed")
        drawn: dict[str, Figure | Missing] = pickle.loads(data)
        return drawn


def _forked(draw: Callable[[], dict[str, Figure | Missing]]) -> _Forked:
    """Run ``draw`` in a forked copy of this process (its traceback, if any, on stderr)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the copy: draw, send the captions back, and leave without cleanup handlers
        os.close(read)
        code = 1
        try:
            with os.fdopen(write, "wb") as pipe:
                pipe.write(pickle.dumps(draw()))
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stderr.flush()
            os._exit(code)
    os.close(write)
    return _Forked(pid, read)


def _document(
    run: RunData,
    summaries: Summaries,
    bench: BenchData,
    bench_dir: Path,
    out: Path,
    figures: dict[str, Figure | Missing] | None = None,
) -> Document:
    """Assemble every section; figures not drawn before are written into ``out``."""
    grid, lam_grid, oracle = summaries
    sections = [
        *study_sections(run, grid, oracle, bench, out, lam_grid, figures),
        bench_section(bench, bench_dir, out),
        environment_section(run, bench_dir),
    ]
    problem = problem_name(run) or "unknown problem"
    subtitle = (
        f"Which weight-decay penalty, how strong, how sure, and at what cost — "
        f"problem {problem}, {len(run.trials)} trials."
    )
    return Document(f"Weight-decay study: {run.name}", subtitle, tuple(sections))


def serve(steps: TextIO | None = None, out: TextIO | None = None) -> int:
    """Build one report in the steps read from ``steps`` (default stdin), one per line, each
    naming the study directory: ``tables RUN_DIR`` reads the search's tables (optional, before
    the selection is exported); ``figures RUN_DIR`` draws figures 1–4; ``finish RUN_DIR`` writes
    the report, prints ``figures SECONDS`` (the time the figures took, when drawn before) and the
    path of its ``index.html`` on ``out`` (default stdout) and returns 0.
    The end of ``steps`` before ``finish`` writes nothing and returns 0 (the study stopped).
    Unusable inputs: one line on stderr, 2; a bug raises (its traceback, exit 1).

    ``studies.search`` runs this in a process of its own, started before it imports torch, so the
    report's imports and its figures run beside the study (``studies.reporter``)."""
    steps = sys.stdin if steps is None else steps
    out = sys.stdout if out is None else out
    report: StagedReport | None = None
    try:
        for line in steps:
            step, _, run_dir = line.rstrip("\n").partition(" ")
            if report is None:
                report = StagedReport(Path(run_dir))
            elif Path(run_dir) != report.run_dir:
                raise ValueError(f"one report per process: {run_dir} after {report.run_dir}")
            if step == "tables":
                report.read_tables()
            elif step == "figures":
                start = time.perf_counter()
                report.draw_figures(split=True)
                drawn = time.perf_counter() - start
                print(f"figures {drawn:.3f}", file=out)
            elif step == "finish":
                print(report.finish(), file=out, flush=True)
                return 0
            else:
                raise ValueError(f"unknown report step {step!r}")
    except ReportInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        if report is not None:
            report.discard()
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m reports.build",
        description="Build RUN_DIR/report/index.html (static HTML, PNG figures, summary.md) "
        "from the files a study exported.",
    )
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a study directory")
    parser.add_argument(
        "--benchmarks",
        type=Path,
        default=None,
        metavar="DIR",
        help="pytest-benchmark JSON folder (default: RUN_DIR/../benchmarks)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point: 0 on success, 2 (one line on stderr) when the inputs are unusable."""
    args = _parser().parse_args(argv)
    try:
        index = build_report(args.run_dir, args.benchmarks)
    except ReportInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(index)
    return 0


if __name__ == "__main__":
    sys.exit(main())
