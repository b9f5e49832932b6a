"""Unit checks of the report: statistics, loaders, escaping, generated conclusions (no plots)."""

from __future__ import annotations

import json
import math
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reports.bench_results import load_benchmarks
from reports.document import Bullets, Code, Document, Figure, Paragraph, Section, Table
from reports.load import ReportInputError, load_run
from reports.redact import mask
from reports.render import md_escape, render_html, render_markdown
from reports.stats import (
    ci_half_width,
    final_losses,
    grid_summary,
    paired_difference,
    paired_t,
    t_quantile,
)
from tests.python_child import run_python

HOSTILE = '<img src=x onerror="alert(1)"> </td></table> & *bold* | `code` [a](b)'


def test_ci_half_width_is_student_t() -> None:
    assert ci_half_width(1.0, 2) == pytest.approx(12.7062047 / math.sqrt(2), rel=1e-6)
    assert ci_half_width(2.0, 5) == pytest.approx(2.7764451 * 2.0 / math.sqrt(5), rel=1e-6)
    assert math.isnan(ci_half_width(1.0, 1))


def test_paired_t_is_scipys_one_sample_t_test_to_the_bit() -> None:
    """The p-value, computed without importing ``scipy.stats``, is ``ttest_1samp``'s exactly,
    over sizes and scales from tiny differences to large ones."""
    from scipy import stats

    rng = np.random.default_rng(7)
    for _ in range(2000):
        n = int(rng.integers(2, 40))
        x = rng.standard_normal(n) * 10 ** rng.uniform(-8, 3) + rng.standard_normal() * 10 ** (
            rng.uniform(-8, 3)
        )
        mean, sd, p = paired_t(x)
        assert p == float(stats.ttest_1samp(x, 0.0).pvalue)
        assert (mean, sd) == (float(x.mean()), float(x.std(ddof=1)))


def test_t_quantile_is_scipys_t_ppf_to_the_bit() -> None:
    from scipy import stats

    for df in (1, 2, 4, 19, 199):
        for q in (0.975, 1 - 0.025 / 8, 1 - 0.05 / 3, 0.5):
            assert float(t_quantile(q, df)) == float(stats.t.ppf(q, df))


def test_tabulated_t_quantiles_are_scipys_to_the_bit() -> None:
    """Every entry of the 97.5 % table, and arrays within it, beyond it or between whole df."""
    from scipy import special

    for df in range(1, 70):
        assert float(t_quantile(0.975, df)) == float(special.stdtrit(df, 0.975))
    for dfs in ([4.0, 19.0, 1.0], [4.0, 65.0], [2.5, 4.0], [4.0, math.nan]):
        got, want = t_quantile(0.975, np.asarray(dfs)), special.stdtrit(np.asarray(dfs), 0.975)
        assert np.array_equal(got, want, equal_nan=True)


def test_a_trials_interval_needs_no_scipy() -> None:
    """The search tells every trial's interval: with the table, scipy is not imported for it."""
    code = (
        "import sys; from reports.stats import summarize; s = summarize([1.0, 2.0, 4.0, 3.0]); "
        "assert 'scipy' not in sys.modules, 'scipy imported'; print(repr(s.ci95))"
    )
    done = run_python(code)
    assert done.returncode == 0, done.stderr[-2000:]
    from scipy import stats

    x = np.array([1.0, 2.0, 4.0, 3.0])
    assert float(done.stdout) == float(stats.t.ppf(0.975, 3)) * float(x.std(ddof=1)) / 2.0


def test_grid_summary_intervals_are_ci_half_width_to_the_bit() -> None:
    """The grid's intervals, computed for all groups at once, equal ``ci_half_width`` per group
    exactly (one seed, a zero spread and a non-finite loss included)."""
    rng = np.random.default_rng(3)
    rows = []
    for i in range(300):
        for seed in range(int(rng.integers(1, 9))):
            loss = float(rng.lognormal()) * 10.0 ** int(rng.integers(-9, 4))
            rows.append(
                {
                    "penalty": "l2",
                    "loop": "proximal",
                    "lam": float(i),
                    "l1_ratio": 0.0,
                    "data_seed": seed,
                    "status": "ok",
                    "val_loss": loss,
                    "train_loss": loss,
                    "w_norm": 1.0,
                    "zero_fraction": 0.0,
                }
            )
    rows += [{**rows[0], "lam": -1.0, "data_seed": s, "val_loss": 2.0} for s in range(3)]
    summary = grid_summary(pd.DataFrame(rows))
    spread = pd.DataFrame(rows).groupby("lam")["val_loss"].agg(["std", "count"])
    assert len(summary) == len(spread)
    for row in summary.itertuples():
        expected = ci_half_width(
            float(spread.loc[row.lam, "std"]), int(spread.loc[row.lam, "count"])
        )
        assert (math.isnan(row.val_ci95) and math.isnan(expected)) or row.val_ci95 == expected


def test_grid_summary_averages_seeds_and_drops_diverged() -> None:
    rows = [
        dict(
            penalty="l2",
            loop="scratch",
            lam=0.1,
            l1_ratio=math.nan,
            data_seed=s,
            val_loss=v,
            train_loss=1.0,
            w_norm=2.0,
            zero_fraction=0.0,
            status=st,
        )
        for s, v, st in ((0, 1.0, "ok"), (1, 3.0, "ok"), (2, math.inf, "diverged"))
    ]
    summary = grid_summary(pd.DataFrame(rows))
    assert len(summary) == 1
    row = summary.iloc[0]
    assert row["val_mean"] == 2.0 and row["n"] == 2
    assert row["val_ci95"] == pytest.approx(ci_half_width(math.sqrt(2.0), 2))


def _curves(finals: dict[str, list[float]]) -> pd.DataFrame:
    rows = [
        dict(
            label=label,
            penalty=label.removeprefix("best-"),
            loop="scratch",
            lam=0.1,
            l1_ratio=math.nan,
            data_seed=s,
            epoch=e,
            split="val",
            loss=v * (3 - e),
        )
        for label, values in finals.items()
        for s, v in enumerate(values)
        for e in (1, 2)
    ]
    return pd.DataFrame(rows)


def test_paired_difference_uses_last_epoch_and_common_seeds() -> None:
    final = final_losses(_curves({"a": [1.0, 2.0, 3.0], "b": [0.5, 1.0, 2.5]}), "val")
    d = paired_difference(final, "a", "b")
    assert d is not None and d.n == 3
    assert d.mean == pytest.approx(2.0 / 3.0)
    assert d.ci95 == pytest.approx(ci_half_width(float(pd.Series([0.5, 1.0, 0.5]).std()), 3))
    assert paired_difference(final, "a", "missing") is None


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)


def test_every_block_escapes_user_text() -> None:
    doc = Document(
        HOSTILE,
        HOSTILE,
        (
            Section(
                HOSTILE,
                "s",
                (
                    Paragraph(HOSTILE),
                    Bullets((HOSTILE,)),
                    Code(HOSTILE),
                    Table((HOSTILE,), ((HOSTILE,),), HOSTILE),
                    Figure("f.png", HOSTILE, HOSTILE),
                ),
            ),
        ),
    )
    parser = _Tags()
    parser.feed(render_html(doc))
    assert parser.tags.count("img") == 1 and "table" in parser.tags
    assert parser.tags.count("table") == 1
    markdown = render_markdown(doc)
    assert "<img" not in markdown.replace("```\n" + HOSTILE + "\n```", "")


def test_md_escape_neutralises_markdown_and_html() -> None:
    assert md_escape("*a* | <b> [x](y) `c`") == r"\*a\* \| &lt;b&gt; \[x\](y) \`c\`"
    assert md_escape("1. item") == r"1\. item" and md_escape("0.25") == "0.25"


def test_mask_hides_url_and_query_passwords() -> None:
    masked = mask("postgresql://bob:pa55@host/db?password=pa55&x=1")
    assert "pa55" not in masked and "bob:***@host" in masked


def _bench_doc(median: float, when: str) -> dict[str, object]:
    stats = {
        "min": median,
        "max": median,
        "mean": median,
        "median": median,
        "stddev": 0.0,
        "rounds": 3,
    }
    return {
        "machine_info": {},
        "commit_info": {},
        "datetime": when,
        "benchmarks": [
            {
                "group": "update-loops-run",
                "name": "t[scratch]",
                "fullname": "b.py::t[scratch]",
                "stats": stats,
                "extra_info": {"device": "cpu", "loop": "scratch", "penalty": "l2"},
            }
        ],
    }


def test_benchmarks_newest_wins_and_bad_files_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "0001.json").write_text(json.dumps(_bench_doc(2.0, "2024-01-01")))
    (tmp_path / "m" / "0002.json").write_text(json.dumps(_bench_doc(1.0, "2024-02-01")))
    (tmp_path / "notes.json").write_text("{not json")
    bench = load_benchmarks(tmp_path)
    assert list(bench.table["median"]) == [1.0]
    assert len(bench.skipped) == 1 and bench.skipped[0].startswith("notes.json")
    assert load_benchmarks(tmp_path / "absent").table.empty


def test_unreadable_or_foreign_trials_are_user_errors(tmp_path: Path) -> None:
    (tmp_path / "trials.parquet").write_bytes(b"not parquet")
    with pytest.raises(ReportInputError, match="cannot read"):
        load_run(tmp_path)
    pd.DataFrame({"number": [0], "state": ["COMPLETE"]}).to_parquet(tmp_path / "trials.parquet")
    with pytest.raises(ReportInputError, match="lacks the columns"):
        load_run(tmp_path)


def test_log_axes_leave_out_finite_blow_ups() -> None:
    """Momentum or Adam at a large lr can end a run at 1e267 without overflowing: a log axis
    keeps to MAX_DECADES above the smallest value, so the figure (and its ticks) still draws."""
    import numpy as np

    from reports.plotting import MAX_DECADES, in_range

    values = np.array([1e-2, 1.0, 1e-2 * 10.0**MAX_DECADES, 1e267, np.inf, 0.0, np.nan])
    assert in_range(values).tolist() == [True, True, True, False, False, False, False]


@pytest.mark.parametrize("scale", ["log", "linear"])
def test_placed_titles_sit_where_the_automatic_position_puts_them(
    scale: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``placed_panels`` fixes each title on its panel's top edge instead of measuring every y
    axis at each save: the same pixels as matplotlib's automatic position, no measuring."""
    import io

    import matplotlib
    from matplotlib.axis import YAxis
    from matplotlib.figure import Figure as MplFigure
    from PIL import Image

    from reports.plotting import place_panel_rows, placed_panels, theme

    measured: list[int] = []
    tight = YAxis.get_tightbbox

    def counted(self: YAxis, *args: object, **kwargs: object) -> object:
        measured.append(1)
        return tight(self, *args, **kwargs)  # type: ignore[arg-type]

    def draw(placed: bool) -> tuple[np.ndarray, int]:
        with theme():
            fig = MplFigure(figsize=(9.0, 6.0))
            if placed:
                rows = placed_panels(fig, 2, 2, sharey="row")
            else:
                with matplotlib.rc_context({"axes.titley": None}):
                    rows = [list(r) for r in fig.subplots(2, 2, sharey="row", squeeze=False)]
            for i, ax in enumerate(ax for row in rows for ax in row):
                ax.plot([1e-3, 1.0, 1e2], [3e-4 * (i + 1), 2e-2, 5.0], label=f"line {i}")
                ax.set(xscale="log", yscale=scale, xlabel="λ", ylabel="loss")
                ax.set_title(f"panel {i}: a title as long as the figures' longest titles")
            place_panel_rows(fig, rows, None)
            buf = io.BytesIO()
            measured.clear()
            monkeypatch.setattr(YAxis, "get_tightbbox", counted)
            fig.savefig(buf, format="png", dpi=60)
            monkeypatch.undo()
        return np.asarray(Image.open(buf)), len(measured)

    (placed, placed_measures), (automatic, automatic_measures) = draw(True), draw(False)
    assert np.array_equal(placed, automatic)
    assert placed_measures == 0 < automatic_measures
