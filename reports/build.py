"""Build the static report of one study: ``python -m reports.build RUN_DIR [--benchmarks DIR]``.

Reads only exported files (``docs/outputs.md``) and writes ``RUN_DIR/report/``: ``index.html``
(no scripts, no network; figures are PNG files beside it), ``summary.md`` and the figures. The new
report is assembled in a temporary folder and then replaces the old one, so a rebuild never leaves
stale figures behind and the same inputs give the same files.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path

from reports.bench_results import BenchData, default_benchmarks_dir, load_benchmarks
from reports.conclusions import problem_name
from reports.document import Document
from reports.load import ReportInputError, RunData, load_run
from reports.lr_lambda import reference_slice
from reports.render import render_html, render_markdown
from reports.sections import bench_section, environment_section, study_sections
from reports.stats import grid_summary, oracle_summary

__all__ = ["ReportInputError", "build_report", "main"]


def build_report(run_dir: Path, benchmarks_dir: Path | None = None) -> Path:
    """Write ``run_dir/report/`` and return the path of its ``index.html``.

    ``benchmarks_dir`` defaults to ``run_dir/../benchmarks``; when it holds no results the report
    says how to produce them. Raises ``ReportInputError`` for a missing or empty study, or for an
    explicitly named benchmarks folder that does not exist.
    """
    run_dir = Path(run_dir)
    if benchmarks_dir is not None and not Path(benchmarks_dir).is_dir():
        raise ReportInputError(f"no benchmarks directory at {benchmarks_dir}")
    bench_dir = (
        Path(benchmarks_dir) if benchmarks_dir is not None else default_benchmarks_dir(run_dir)
    )
    run = load_run(run_dir)
    bench = load_benchmarks(bench_dir)
    target = run_dir / "report"
    try:
        # mkdir, not mkdtemp: the report gets the umask's permissions, not mkdtemp's 0700
        staging = run_dir / f".report-{uuid.uuid4().hex}"
        staging.mkdir()
    except OSError as exc:
        raise ReportInputError(f"cannot write a report into {run_dir}: {exc.strerror}") from None
    try:
        document = _document(run, bench, bench_dir, staging)
        (staging / "index.html").write_text(render_html(document), encoding="utf-8")
        (staging / "summary.md").write_text(render_markdown(document), encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return target / "index.html"


def _document(run: RunData, bench: BenchData, bench_dir: Path, out: Path) -> Document:
    """Assemble every section; figures are written into ``out``."""
    grid = grid_summary(run.grid) if run.grid is not None else None
    # the figures against λ: the chosen optimizer at the grid lr nearest the chosen one
    lam_grid = None if run.grid is None else grid_summary(reference_slice(run.grid, run.selected))
    oracle = oracle_summary(run.oracle) if run.oracle is not None else None
    sections = [
        *study_sections(run, grid, oracle, bench, out, lam_grid),
        bench_section(bench, bench_dir, out),
        environment_section(run, bench_dir),
    ]
    problem = problem_name(run) or "unknown problem"
    subtitle = (
        f"Which weight-decay penalty, how strong, how sure, and at what cost — "
        f"problem {problem}, {len(run.trials)} trials."
    )
    return Document(f"Weight-decay study: {run.name}", subtitle, tuple(sections))


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
