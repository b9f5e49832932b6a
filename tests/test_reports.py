"""Reports built from synthetic files that follow docs/outputs.md exactly.

The HTML must parse, every image it references must exist and decode, user strings must be
escaped, rebuilding must give identical files, and partial inputs must degrade as documented.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from reports.build import build_report, main
from tests.python_child import run_python

HOSTILE = "<script>alert(\"x\")</script> & $\\alpha$ </td> 'q'"
SECRET = "s3cretPW"
SEEDS = (0, 1, 2)
EPOCHS = 6
LAMS = np.logspace(-3, 1, 9)


def _val_curve(penalty: str, lam: np.ndarray, seed: int) -> np.ndarray:
    """A U-shaped validation loss in log λ (L1 best on this made-up problem), seed-jittered."""
    centre = {"l2": 0.3, "l1": 0.05, "elastic": 0.1, "none": 1.0}[penalty]
    floor = {"l2": 0.012, "l1": 0.008, "elastic": 0.010, "none": 0.4}[penalty]
    shape = floor * (1 + 0.5 * np.log10(np.maximum(lam, 1e-9) / centre) ** 2)
    return np.asarray(shape * (1 + 0.03 * (seed - 1)), dtype=float)


def _configs() -> list[tuple[str, str, float]]:
    """(penalty, loop, l1_ratio) of every searched family."""
    return [
        ("l2", "scratch", math.nan),
        ("l1", "scratch", math.nan),
        ("l1", "proximal", math.nan),
        ("elastic", "proximal", 0.5),
    ]


def _grid() -> pd.DataFrame:
    rows = []
    for penalty, loop, ratio in [("none", "scratch", math.nan), *_configs()]:
        lams = np.array([0.0]) if penalty == "none" else LAMS
        for seed in SEEDS:
            val = _val_curve(penalty, lams, seed)
            zeros = (
                np.clip(np.log10(lams) + 2.5, 0, 3) / 3
                if loop == "proximal"
                else np.zeros_like(lams)
            )
            for lam, v, z in zip(lams, val, zeros, strict=True):
                rows.append(
                    dict(
                        penalty=penalty,
                        loop=loop,
                        lam=lam,
                        l1_ratio=ratio,
                        data_seed=seed,
                        val_loss=v,
                        train_loss=v / 3,
                        w_norm=14.0 / (1 + lam * 10),
                        zero_fraction=z,
                        status="ok",
                    )
                )
    rows.append({**rows[-1], "lam": 100.0, "val_loss": math.inf, "status": "diverged"})
    return pd.DataFrame(rows)


def _trials(n: int, hostile: bool) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for number in range(n):
        penalty, loop, ratio = _configs()[number % 4]
        lam = float(10 ** rng.uniform(-3, 1))
        val = float(_val_curve(penalty, np.array([lam]), 1)[0])
        state, reason = "COMPLETE", ""
        if number in (3, 7):
            state, val = "FAIL", math.nan
            reason = "Traceback ...\nValueError: loss diverged " + (HOSTILE if hostile else "")
        elif number == 5:
            state, val = "PRUNED", math.nan
        rows.append(
            dict(
                number=number,
                state=state,
                penalty=penalty,
                loop=loop,
                lam=lam,
                l1_ratio=ratio,
                value=val,
                val_std=val * 0.03,
                val_ci95=val * 0.07,
                w_norm=14.0 / (1 + lam * 10),
                zero_fraction=0.0,
                fail_reason=reason,
                datetime_start=pd.Timestamp("2024-01-01"),
                datetime_complete=pd.Timestamp("2024-01-01"),
            )
        )
    return pd.DataFrame(rows)


def _oracle() -> pd.DataFrame:
    rows = []
    for penalty in ("l2", "l1"):
        for seed in SEEDS:
            val = _val_curve(penalty, LAMS, seed) * 0.8
            for lam, v in zip(LAMS, val, strict=True):
                rows.append(
                    dict(
                        penalty=penalty,
                        lam=lam,
                        l1_ratio=math.nan,
                        data_seed=seed,
                        train_loss=v / 3,
                        val_loss=v,
                        test_loss=v * 1.1,
                        w_norm=1.4 / (1 + lam),
                        zero_fraction=0.9 if penalty == "l1" else 0.0,
                    )
                )
    return pd.DataFrame(rows)


_SELECTED = [  # label, penalty, loop, lam, l1_ratio, val_mean, is_best
    ("best", "l1", "proximal", 0.05, math.nan, 0.0081, True),
    ("best-l1", "l1", "proximal", 0.05, math.nan, 0.0081, True),
    ("best-l2", "l2", "scratch", 0.3, math.nan, 0.0121, False),
    ("best-elastic", "elastic", "proximal", 0.1, 0.5, 0.0101, False),
    ("no-decay", "none", "scratch", 0.0, math.nan, 0.40, False),
]


def _selected() -> pd.DataFrame:
    return pd.DataFrame(
        [
            dict(
                label=lb,
                penalty=p,
                loop=lo,
                lam=lam,
                l1_ratio=r,
                val_mean=v,
                val_ci95=v * 0.07,
                test_mean=v * 1.05,
                test_ci95=v * 0.08,
                is_best=b,
            )
            for lb, p, lo, lam, r, v, b in _SELECTED
        ]
    )


def _curves() -> pd.DataFrame:
    rows = []
    for label, penalty, loop, lam, ratio, val, _ in _SELECTED:
        for seed in SEEDS:
            for epoch in range(1, EPOCHS + 1):
                for split, end in (("train", val / 3), ("val", val)):
                    loss = end * (1 + 20 * 0.5**epoch) * (1 + 0.03 * (seed - 1))
                    rows.append(
                        dict(
                            label=label,
                            penalty=penalty,
                            loop=loop,
                            lam=lam,
                            l1_ratio=ratio,
                            data_seed=seed,
                            epoch=epoch,
                            split=split,
                            loss=loss,
                        )
                    )
    return pd.DataFrame(rows)


#: Fresh draws of the synthetic replication, and its family of comparisons.
DRAWS = tuple(range(100, 108))
PAIRS = [
    ("budget", "best-l1", "no-decay"),
    ("budget", "best-l2", "best"),
    ("budget", "best-elastic", "best"),
    ("budget", "best", "null"),
]


def _replication() -> pd.DataFrame:
    """Test losses per label and draw: L1 best, elastic within noise of it, null ≈ 0.0125."""
    rng = np.random.default_rng(7)
    rows = []
    labels = [*_SELECTED, ("null", "null", "", math.inf, math.nan, 0.0125, False)]
    for draw in DRAWS:
        shared = rng.normal(0, 0.02)
        for label, penalty, loop, lam, ratio, val, _ in labels:
            loss = val * 1.05 * (1 + shared + rng.normal(0, 0.01))
            rows.append(
                dict(
                    regime="budget",
                    label=label,
                    penalty=penalty,
                    rule="",
                    impl="",
                    loop=loop,
                    lam=lam,
                    l1_ratio=ratio,
                    data_seed=draw,
                    train_seed=draw + 1000 if label != "null" else -1,
                    val_loss=loss,
                    test_loss=loss,
                    w_norm=0.0 if label == "null" else 1.0,
                    zero_fraction=1.0 if label == "null" else 0.2,
                )
            )
    return pd.DataFrame(rows)


def _comparisons() -> pd.DataFrame:
    from reports.stats import compare

    return compare(_replication(), PAIRS)


def write_study(
    run_dir: Path, n_trials: int = 24, hostile: bool = True, skip: tuple[str, ...] = ()
) -> Path:
    """Write a synthetic study directory (tables named in ``skip`` are left out)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    tables: dict[str, Callable[[], pd.DataFrame]] = {
        "grid": _grid,
        "oracle": _oracle,
        "selected": _selected,
        "curves": _curves,
        "replication": _replication,
        "comparisons": _comparisons,
    }
    _trials(n_trials, hostile).to_parquet(run_dir / "trials.parquet")
    for name, make in tables.items():
        if name not in skip:
            make().to_parquet(run_dir / f"{name}.parquet")
    if "run" not in skip:
        run = {
            "command": [
                "python",
                "-m",
                "studies.search",
                "--study-name",
                HOSTILE,
                "--storage",
                f"postgresql://alice:{SECRET}@db:5432/wd",
            ],
            "study_name": HOSTILE if hostile else "plain-study",
            "storage": f"postgresql://alice:{SECRET}@db:5432/wd",
            "problem": "synthetic",
            "settings": {
                "n_trials": n_trials,
                "epochs": EPOCHS,
                "lr": 0.003,
                "init_scale": 1.0,
                "note": HOSTILE,
            },
            "versions": {"python": "3.11", "torch": "2.x", "optuna": "5.0", "wdbench": "0.1.0"},
            "device": "cpu",
            "seeds": {"seed": 0, "data_seeds": list(SEEDS), "train_seed": 0},
            "started": "2024-01-01T00:00:00",
            "finished": "2024-01-01T00:01:00",
        }
        (run_dir / "run.json").write_text(json.dumps(run), encoding="utf-8")
    return run_dir


def _bench_entry(
    group: str, name: str, median: float, extra: dict[str, object]
) -> dict[str, object]:
    stats = {
        "min": median * 0.9,
        "max": median * 1.3,
        "mean": median * 1.05,
        "median": median,
        "stddev": median * 0.1,
        "rounds": 5,
        "iterations": 1,
    }
    return {
        "group": group,
        "name": name,
        "fullname": f"benchmarks/test_x.py::{name}",
        "params": None,
        "stats": stats,
        "extra_info": extra,
    }


def write_benchmarks(directory: Path) -> Path:
    """A small pytest-benchmark JSON with every group the report draws."""
    directory.mkdir(parents=True, exist_ok=True)
    benches = [
        _bench_entry(
            "update-loops-run",
            f"test_run[{variant}-{pen}-{dev}]",
            t * scale,
            {
                "device": dev,
                "device_name": name,
                "dtype": "float32",
                "loop": loop,
                "penalty": pen,
                "variant": variant,
            },
        )
        for variant, loop, pen, t in (
            ("scratch", "scratch", "l2", 0.9),
            ("optim-fused", "optim", "l2", 0.3),
            ("proximal", "proximal", "l1", 0.35),
        )
        for dev, name, scale in (("cpu", "Test CPU", 1.0), ("cuda", "Test GPU", 2.0))
    ]
    benches += [
        _bench_entry(
            "population",
            f"test_population[{dev}-K{k}]",
            k / rate,
            {
                "device": dev,
                "device_name": name,
                "dtype": "float32",
                "K": k,
                "trajectories_per_s": rate,
                "speedup_vs_scratch": rate * 0.9,
                "scratch_s": 0.9,
                "scratch_device": "cpu",
            },
        )
        for dev, name, top in (("cpu", "Test CPU", 800.0), ("cuda", "Test GPU", 4e6))
        for k in (1, 16, 256)
        for rate in (top * k / (k + 16),)
    ]
    benches.append(
        _bench_entry(
            "study",
            "test_study[inline]",
            2.0,
            {"device": "cpu", "dtype": "float32", "variant": "inline", "trials": 64, "ratio": 0.4},
        )
    )
    doc = {
        "machine_info": {"python_version": "3.11.9", "cpu": {"brand_raw": "Test CPU"}},
        "commit_info": {"id": "0123456789abcdef", "dirty": False},
        "benchmarks": benches,
        "datetime": "2024-01-01T00:00:00",
        "version": "5.1.0",
    }
    (directory / "cpu.json").write_text(json.dumps(doc), encoding="utf-8")
    return directory


class _Checker(HTMLParser):
    """Collects image sources and links, and checks that every element is closed in order."""

    VOID = frozenset({"meta", "img", "br", "hr", "link", "input"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.images: list[str] = []
        self.links: list[str] = []
        self.tags: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        values = dict(attrs)
        if tag == "img":
            self.images.append(values.get("src") or "")
        if tag == "a":
            self.links.append(values.get("href") or "")
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}> with open {self.stack[-3:]}")
            return
        self.stack.pop()


def parse_html(index: Path) -> _Checker:
    """Parse a report page with the structural checker."""
    checker = _Checker()
    checker.feed(index.read_text(encoding="utf-8"))
    checker.close()
    return checker


@pytest.fixture(scope="module")
def full_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    write_benchmarks(root / "benchmarks")
    return build_report(write_study(root / "study"))


def test_html_parses_and_every_image_exists_and_decodes(full_report: Path) -> None:
    checker = parse_html(full_report)
    assert checker.errors == [] and checker.stack == []
    assert "script" not in checker.tags
    assert len(checker.images) == 7
    for src in checker.images:
        assert "/" not in src and src.endswith(".png")
        with Image.open(full_report.parent / src) as image:
            image.load()
            assert image.size[0] > 200 and image.size[1] > 200
    assert all(link.startswith("#") for link in checker.links)


def test_report_writes_summary_and_only_referenced_figures(full_report: Path) -> None:
    files = {p.name for p in full_report.parent.iterdir()}
    assert set(parse_html(full_report).images) | {"index.html", "summary.md"} == files


def test_hostile_strings_are_escaped_and_passwords_masked(full_report: Path) -> None:
    html = full_report.read_text(encoding="utf-8")
    summary = (full_report.parent / "summary.md").read_text(encoding="utf-8")
    assert "<script>" not in html
    prose = re.sub(r"(?ms)^(`{3,})\n.*?^\1$", "", summary)  # code blocks show text verbatim
    assert "<script>" not in prose and "&lt;script&gt;" in prose
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert "&lt;/td&gt;" in html
    assert SECRET not in html and SECRET not in summary
    assert "alice:***@db" in html


def test_tables_count_failures_and_exclude_them(full_report: Path) -> None:
    text = (full_report.parent / "summary.md").read_text(encoding="utf-8")
    assert "| FAIL | 2 |" in text and "| PRUNED | 1 |" in text and "| COMPLETE | 21 |" in text
    assert "ValueError: loss diverged" in text
    assert "the 3 not complete are excluded" in text


def test_conclusions_come_from_the_replication_with_holm(full_report: Path) -> None:
    html = full_report.read_text(encoding="utf-8")
    assert "Comparisons: 4 in one family" in html and "8 fresh data draws" in html
    assert "l1 (best) beats l2 (best-l2)" in html and "Holm-adjusted" in html
    assert "better than predicting the mean" in html
    # the lore sentence reads the replication's L1-vs-L2 verdict (both non-empty, separated)
    assert "L1 beats L2 on the fresh draws; this contradicts the common lore" in html
    assert "Population on cuda (Test GPU): up to 3.76e+06 training runs/s at K = 256" in html
    assert "the seed-faithful scratch loop on cpu" in html
    assert "fastest optim-fused · l2 at 0.6 s per training run" in html


@pytest.mark.slow
def test_rebuild_is_idempotent_and_missing_benchmarks_say_how(tmp_path: Path) -> None:
    run_dir = write_study(tmp_path / "study", hostile=False)
    first = build_report(run_dir).parent
    before = {p.name: p.read_bytes() for p in first.iterdir()}
    (first / "stale.png").write_bytes(b"old")
    second = build_report(run_dir).parent
    assert {p.name: p.read_bytes() for p in second.iterdir()} == before
    html = before["index.html"].decode("utf-8")
    assert "No benchmark results were found" in html
    assert "pytest benchmarks --benchmark-only" in html
    assert "fig5a_loops.png" not in html


@pytest.mark.slow
@pytest.mark.parametrize(
    ("skip", "said"),
    [
        (("curves",), "Not drawn: curves.parquet is missing"),
        (("grid", "oracle"), "grid.parquet is missing"),
        (("selected", "run"), "selected.parquet is missing: no configuration was selected"),
    ],
)
def test_partial_study_still_builds(tmp_path: Path, skip: tuple[str, ...], said: str) -> None:
    index = build_report(write_study(tmp_path / "study", n_trials=8, skip=skip))
    checker = parse_html(index)
    assert checker.errors == []
    for src in checker.images:
        assert (index.parent / src).is_file()
    assert said in index.read_text(encoding="utf-8")


def test_missing_study_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ")


def test_empty_study_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = write_study(tmp_path / "study")
    _trials(0, hostile=False).to_parquet(run_dir / "trials.parquet")
    assert main([str(run_dir)]) == 2
    assert "no trials" in capsys.readouterr().err


def test_explicit_missing_benchmarks_dir_exits_2(tmp_path: Path) -> None:
    run_dir = write_study(tmp_path / "study")
    assert main([str(run_dir), "--benchmarks", str(tmp_path / "nowhere")]) == 2


@pytest.mark.slow
def test_command_line_runs_without_torch(tmp_path: Path) -> None:
    run_dir = write_study(
        tmp_path / "study", n_trials=8, hostile=False, skip=("grid", "oracle", "curves")
    )
    code = (
        "import sys; from reports.build import main; rc = main([sys.argv[1]]); "
        "assert 'torch' not in sys.modules, 'torch imported'; sys.exit(rc)"
    )
    done = run_python(code, str(run_dir))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("index.html")


def test_report_directory_gets_the_umask_permissions_not_0700(full_report: Path) -> None:
    umask = os.umask(0o022)
    os.umask(umask)
    if umask & 0o077 == 0o077:
        pytest.skip("under umask 077 the report folder is 0700 either way")
    assert stat.S_IMODE(full_report.parent.stat().st_mode) == 0o777 & ~umask
