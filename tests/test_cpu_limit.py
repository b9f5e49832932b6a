"""``python -m benchmarks.tools.cpu_limit``: the compute limit and each path's share of it."""

from __future__ import annotations

import contextlib
import io
import re

import pytest

from wdbench.population.native import native_available


@pytest.mark.skipif(not native_available(), reason="the native kernel is not built here")
def test_prints_the_peak_and_a_row_per_path() -> None:
    from benchmarks.tools.cpu_limit import PATHS, main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["--k", "16"]) == 0
    text = out.getvalue()
    peak = re.search(r"fp32 FMA peak ([0-9.]+) GFLOP/s per core", text)
    assert peak is not None and float(peak.group(1)) > 1.0
    rows = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    assert [row.split(" | ")[0][2:] for row in rows[1:]] == [*PATHS, "search-space mix"]
    for row in rows[1:-1]:  # the limit of a known path is a positive number, its share a percent
        cells = row.strip("| ").split(" | ")
        assert float(cells[1].replace(",", "")) > 0 and cells[4].endswith("%")
