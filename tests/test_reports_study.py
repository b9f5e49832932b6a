"""A report built from a tiny real study (``python -m studies.search ... --no-report``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from test_reports import parse_html

from reports.build import build_report

pytestmark = pytest.mark.slow  # a real study end to end

ROOT = Path(__file__).resolve().parents[1]
NAME = 'tiny <b>bold</b> & "quoted"'


@pytest.fixture(scope="module")
def study_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs")
    command = [
        sys.executable,
        "-m",
        "studies.search",
        "--penalties",
        "none,l2,l1",
        "--n-trials",
        "4",
        "--seeds",
        "2",
        "--epochs",
        "3",
        "--grid-points",
        "3",
        "--batch",
        "4",
        "--device",
        "cpu",
        "--study-name",
        NAME,
        "--out",
        str(out),
        "--no-report",
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    (run_dir,) = [p for p in out.iterdir() if (p / "trials.parquet").is_file()]
    assert not (run_dir / "report").exists()
    return build_report(run_dir)


def test_real_study_report_parses_and_images_decode(study_report: Path) -> None:
    checker = parse_html(study_report)
    assert checker.errors == [] and checker.stack == []
    assert len(checker.images) >= 5
    for src in checker.images:
        with Image.open(study_report.parent / src) as image:
            image.load()
    assert (study_report.parent / "summary.md").is_file()


def test_real_study_name_is_escaped(study_report: Path) -> None:
    html = study_report.read_text(encoding="utf-8")
    assert "<b>bold</b>" not in html
    assert "tiny &lt;b&gt;bold&lt;/b&gt; &amp; &quot;quoted&quot;" in html


def test_real_study_report_answers_the_question(study_report: Path) -> None:
    html = study_report.read_text(encoding="utf-8")
    assert "Null baseline (w = 0, b = mean of y_train)" in html
    assert "Holm-adjusted" in html and "fresh data draws" in html
    assert "No benchmark results were found" in html


def test_study_tables_name_rule_and_impl_beside_the_legacy_loop(study_report: Path) -> None:
    """New run files carry ``rule`` and ``impl``; ``loop`` stays their legacy single name."""
    import pandas as pd

    legacy = {"scratch": ("coupled", "scratch"), "proximal": ("proximal", "functional")}
    run_dir = study_report.parent.parent
    for name in ("trials", "grid", "selected", "curves", "replication"):
        table = pd.read_parquet(run_dir / f"{name}.parquet")
        table = table.dropna(subset=["penalty"])
        table = table[table["penalty"] != "null"]  # the null model is trained by no rule
        if "regime" in table.columns:  # converged rows are exact oracles (rule exact)
            table = table[table["regime"] == "budget"]
        assert {"rule", "impl", "loop"} <= set(table.columns), name
        pairs = set(zip(table["rule"], table["impl"], strict=True))
        assert pairs == {legacy[loop] for loop in set(table["loop"])}, name


def test_console_run_json_and_report_give_the_same_verdicts(study_report: Path) -> None:
    """One source: the verdicts run.json recorded (what the console printed) are the report's."""
    import html as html_lib
    import json

    run_dir = study_report.parent.parent
    lines = json.loads((run_dir / "run.json").read_text())["verdicts"]["lines"]
    assert lines
    page = html_lib.unescape(study_report.read_text(encoding="utf-8"))
    summary = (study_report.parent / "summary.md").read_text(encoding="utf-8")
    for line in lines:
        assert line in page
        assert line.replace("[", "\\[").replace("]", "\\]").replace("_", "\\_") in summary
