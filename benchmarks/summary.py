"""Markdown tables of one pytest-benchmark JSON file, a table per group (as in docs/benchmarks.md).

    python -m benchmarks.summary [FILE.json | DIR]    (default DIR: runs/benchmarks; newest file)

Times are medians over the recorded rounds. ``× scratch`` is the seed-faithful scratch loop's
median (same group, device and penalty, same file) divided by the row's median, so above 1 is
faster than the lesson's loop; population rows use their ``speedup_vs_scratch`` (one scratch run
timed in the same session), study rows their ``ratio`` (naive seconds / the row's seconds).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["group_tables", "main", "newest_json"]

Bench = dict[str, Any]


def newest_json(path: Path) -> Path:
    """``path`` itself, or the most recently modified ``*.json`` below it."""
    if path.is_file():
        return path
    files = sorted(path.rglob("*.json"), key=lambda p: p.stat().st_mtime) if path.is_dir() else []
    if not files:
        raise FileNotFoundError(f"no benchmark JSON under {path}")
    return files[-1]


def _row(cells: Sequence[object]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _table(header: Sequence[str], rows: list[list[object]]) -> list[str]:
    return [_row(header), _row(["---"] * len(header)), *(_row(r) for r in rows)]


def _scratch_ratio(bench: Bench, benches: list[Bench]) -> str:
    info = bench["extra_info"]
    for other in benches:
        o = other["extra_info"]
        same = (other["group"], o["device"], o["penalty"]) == (
            bench["group"],
            info["device"],
            info["penalty"],
        )
        if same and o.get("variant") == "scratch":
            return f"{other['stats']['median'] / bench['stats']['median']:.2f}"
    return "–"


def _loops(benches: list[Bench], unit: float, label: str) -> list[str]:
    rows = [
        [
            b["extra_info"]["variant"],
            b["extra_info"]["penalty"],
            b["extra_info"]["device"],
            f"{b['stats']['median'] * unit:.1f}",
            _scratch_ratio(b, benches),
        ]
        for b in benches
    ]
    return _table(["variant", "penalty", "device", label, "× scratch"], rows)


def _population(benches: list[Bench]) -> list[str]:
    def key(b: Bench) -> tuple[str, str, str, int]:
        i = b["extra_info"]
        return i["device"], str(i.get("variant", "")), str(i.get("penalty", "")), i["K"]

    rows = [
        [
            b["extra_info"]["device"],
            b["extra_info"].get("variant", "–"),
            b["extra_info"].get("penalty", "–"),
            b["extra_info"]["K"],
            f"{b['stats']['median']:.3f}",
            f"{b['extra_info']['trajectories_per_s']:,.0f}",
            f"{b['extra_info']['speedup_vs_scratch']:,.1f}",
        ]
        for b in sorted(benches, key=key)
    ]
    return _table(
        ["device", "variant", "configs", "K", "median s", "trajectories/s", "× scratch"], rows
    )


def _scaling(benches: list[Bench]) -> list[str]:
    def key(b: Bench) -> tuple[str, str, int, int]:
        i = b["extra_info"]
        return i["kind"], i["device"], i["n_train"], i["d"]

    rows = []
    for b in sorted(benches, key=key):
        i, median = b["extra_info"], b["stats"]["median"]
        per_work = median / i["K"] / i["work"] * 1e9
        rows.append(
            [
                i["kind"],
                i["device"],
                i["d"],
                i["n_train"],
                i["K"],
                f"{median:.3f}",
                f"{median / i['K'] * 1e3:.2f}",
                f"{per_work:.2f}",
            ]
        )
    header = [
        "kind",
        "device",
        "d",
        "n_train",
        "K",
        "median s",
        "ms / trajectory",
        "ns / (row·feature) per trajectory",
    ]
    return _table(header, rows)


def _study(benches: list[Bench]) -> list[str]:
    rows = []
    for b in benches:
        info = b["extra_info"]
        reach = (
            f"{info['reach_trials']} trials, {info['reach_s']:.1f} s"
            if info.get("reach_trials") is not None
            else ""
        )
        rows.append(
            [
                info["variant"],
                info["device"],
                info["trials"],
                f"{b['stats']['median']:.1f}",
                f"{b['stats']['median'] / info['trials']:.3f}",
                f"{info['ratio']:.1f}",
                reach,
            ]
        )
    header = ["variant", "device", "trials", "seconds", "s / trial",
              "ratio (per trial, naive / row)", "time to ≤1% regret"]  # fmt: skip
    return _table(header, rows)


def _threads(benches: list[Bench]) -> list[str]:
    """Trajectories/s per thread setting, idle and busy, with the default's shortfall against the
    best of 1 and 2 threads (pool-1, pool-2)."""
    rate: dict[tuple[str, str, str], float] = {}
    load: dict[str, list[float]] = {}
    turns: list[list[object]] = []
    for b in benches:
        info = b["extra_info"]
        if info["policy"] == "interleaved":  # default, pool-1 and pool-2 call by call
            r = info["rates"]
            turns.append([info["penalty"], info["load"], *(f"{r[p]:,.0f}" for p in r),
                          f"{info['default_vs_best']:+.0%}"])  # fmt: skip
            continue
        rate[(info["penalty"], info["load"], info["policy"])] = info["K"] / b["stats"]["median"]
        load.setdefault(info["load"], []).append(float(info.get("loadavg_1min") or 0.0))
    rows: list[list[object]] = []
    for penalty, state, policy in sorted(rate):
        best = max(rate.get((penalty, state, p), 0.0) for p in ("pool-1", "pool-2"))
        shortfall = f"{1 - rate[(penalty, state, policy)] / best:+.0%}" if best else ""
        rows.append([penalty, state, policy, f"{rate[(penalty, state, policy)]:,.0f}",
                     shortfall if policy == "default" else ""])  # fmt: skip
    header = ["penalty", "load", "policy", "trajectories/s", "default vs best of 1, 2 threads"]
    notes = [f"load average (1 min) during the {state} cases: "
             f"{min(v):.1f}–{max(v):.1f}" for state, v in sorted(load.items())]  # fmt: skip
    if turns:
        notes += ["", "The same settings call by call, in turn (`interleaved`: same load):", ""]
        notes += _table(["penalty", "load", "default", "pool-1", "pool-2",
                         "default vs best of 1, 2 threads"], sorted(turns))  # fmt: skip
    return [*_table(header, rows), "", *notes]


def _networks(benches: list[Bench]) -> list[str]:
    """Seconds per network and the ratio to the single torch.nn loop, per variant."""
    rows = [
        [
            b["extra_info"]["variant"],
            b["extra_info"]["K"],
            f"{b['stats']['median']:.4g}",
            f"{b['extra_info']['seconds_per_network'] * 1e3:.4g}",
            f"{b['extra_info']['ratio_vs_torch_nn']:.1f}",
        ]
        for b in benches
    ]
    header = ["variant", "K", "median s / call", "ms / network", "× torch.nn loop"]
    return _table(header, rows)


def group_tables(doc: dict[str, Any]) -> list[str]:
    """Markdown lines: a heading and a table for each group present in ``doc``."""
    groups: dict[str, list[Bench]] = {}
    for bench in doc["benchmarks"]:
        groups.setdefault(bench["group"], []).append(bench)
    makers = {
        "update-loops-run": lambda b: _loops(b, 1e3, "median ms / run"),
        "update-loops-step": lambda b: _loops(b, 1e6, "median µs / step"),
        "population": _population,
        "scaling": _scaling,
        "study": _study,
        "threads": _threads,
        "networks-step": _networks,
        "networks-run": _networks,
    }
    lines: list[str] = []
    for name, make in makers.items():
        if name in groups:
            lines += [f"### {name}", "", *make(groups[name]), ""]
    return lines


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.summary",
        description="Markdown tables (one per group) of one pytest-benchmark JSON file.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "path",
        nargs="?",
        type=Path,
        default=Path("runs") / "benchmarks",
        metavar="FILE.json | DIR",
        help="a benchmark JSON file, or a folder whose newest *.json is read",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """0 with the tables on stdout; 2 (one line on stderr) when the file is unusable."""
    target = _parser().parse_args(argv).path
    try:
        path = newest_json(target)
        doc = json.loads(path.read_text(encoding="utf-8"))
        lines = group_tables(doc)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"<!-- {path}, {doc.get('datetime', '')} -->")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
