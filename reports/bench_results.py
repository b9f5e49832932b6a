"""Read pytest-benchmark JSON files into one flat table (one row per benchmark and machine).

Files are found recursively (``--benchmark-json`` files and ``--benchmark-autosave`` folders alike).
When the same benchmark was saved more than once for the same device (type and name), the newest
file wins. A file
that is not pytest-benchmark JSON is skipped and named in the report, never fatal.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = [
    "EXTRA_KEYS",
    "PRODUCE_HINT",
    "STAT_KEYS",
    "BenchData",
    "default_benchmarks_dir",
    "load_benchmarks",
]

#: ``extra_info`` keys the report understands (``docs/outputs.md``).
EXTRA_KEYS = (
    "device",
    "device_name",
    "dtype",
    "loop",
    "penalty",
    "K",
    "trajectories_per_s",
    "speedup_vs_scratch",
    "scratch_s",
    "scratch_device",
    "d",
    "n_train",
    "kind",
    "variant",
    "trials",
    "ratio",
)
#: Timing statistics kept from ``stats`` (seconds, except ``rounds``).
STAT_KEYS = ("min", "median", "mean", "stddev", "max", "rounds")
#: How to produce the files, said wherever they are missing.
PRODUCE_HINT = "python -m pytest benchmarks --benchmark-only   # saves under runs/benchmarks/"


@dataclass(frozen=True)
class BenchData:
    """All benchmark rows, the files they came from, and the files that were skipped (with why)."""

    table: pd.DataFrame
    files: tuple[Path, ...]
    skipped: tuple[str, ...]
    machines: tuple[str, ...]

    def group(self, name: str) -> pd.DataFrame:
        """Rows of one pytest-benchmark group (possibly empty)."""
        return self.table[self.table["group"] == name].reset_index(drop=True)


def default_benchmarks_dir(run_dir: Path) -> Path:
    """``RUN_DIR/../benchmarks``: ``runs/benchmarks`` beside ``runs/<study>``."""
    return run_dir.resolve().parent / "benchmarks"


def load_benchmarks(directory: Path) -> BenchData:
    """Read every ``*.json`` under ``directory`` (an absent directory gives an empty table)."""
    files = sorted(directory.rglob("*.json")) if directory.is_dir() else []
    rows: list[dict[str, Any]] = []
    used: list[Path] = []
    skipped: list[str] = []
    machines: list[str] = []
    for path in files:
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            file_rows = _rows(doc, path)
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            skipped.append(f"{path.name}: {type(exc).__name__}: {exc}")
            continue
        used.append(path)
        rows.extend(file_rows)
        machine = _machine(doc)
        if machine not in machines:
            machines.append(machine)
    return BenchData(_table(rows), tuple(used), tuple(skipped), tuple(machines))


def _rows(doc: Any, path: Path) -> list[dict[str, Any]]:
    """Flatten one pytest-benchmark document; raise on anything that is not one."""
    if not isinstance(doc, dict) or not isinstance(doc.get("benchmarks"), list):
        raise ValueError("not a pytest-benchmark file (no 'benchmarks' list)")
    machine = _machine(doc)
    rows = []
    for bench in doc["benchmarks"]:
        extra = bench.get("extra_info") or {}
        row: dict[str, Any] = {
            "group": str(bench.get("group") or ""),
            "name": str(bench["name"]),
            "fullname": str(bench.get("fullname") or bench["name"]),
            "datetime": str(doc.get("datetime") or ""),
            "file": path.name,
            "machine": machine,
        }
        row.update({key: extra.get(key) for key in EXTRA_KEYS})
        row.update({key: float(bench["stats"][key]) for key in STAT_KEYS})
        rows.append(row)
    return rows


def _machine(doc: dict[str, Any]) -> str:
    """One line describing the machine and commit a benchmark file was made on."""
    info = doc.get("machine_info") or {}
    cpu = info.get("cpu") or {}
    brand = cpu.get("brand_raw") or info.get("processor") or info.get("machine") or "unknown CPU"
    python = info.get("python_version") or "?"
    commit = doc.get("commit_info") or {}
    rev = str(commit.get("id") or "")[:10] or "no commit"
    dirty = " (dirty)" if commit.get("dirty") else ""
    return f"{brand}, Python {python}, commit {rev}{dirty}"


def _config(variant: object, loop: object, penalty: object) -> str:
    """``variant · penalty`` (the variant names the implementation, e.g. ``optim-fused``)."""
    name = variant if isinstance(variant, str) and variant else loop
    return f"{name} · {penalty}"


def _table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows as a DataFrame with ``device_label`` and ``config`` columns; newest duplicate wins."""
    columns = ["group", "name", "fullname", "datetime", "file", "machine", *EXTRA_KEYS, *STAT_KEYS]
    table = pd.DataFrame(rows, columns=columns)
    if table.empty:
        table["device_label"] = pd.Series(dtype=str)
        table["config"] = pd.Series(dtype=str)
        return table
    table["device"] = table["device"].fillna("unknown").astype(str)
    table["config"] = [
        _config(v, lo, pe)
        for v, lo, pe in zip(table["variant"], table["loop"], table["penalty"], strict=True)
    ]
    named = table["device_name"].notna() & (table["device_name"].astype(str) != "")
    table["device_label"] = table["device"]
    table.loc[named, "device_label"] = (
        table.loc[named, "device"] + " (" + table.loc[named, "device_name"].astype(str) + ")"
    )
    table = table.sort_values(["datetime", "file"], kind="stable")
    table = table.drop_duplicates(["fullname", "device_label"], keep="last")
    order = sorted(
        range(len(table)),
        key=lambda i: (
            str(table["group"].iloc[i]),
            _natural(str(table["fullname"].iloc[i])),
            str(table["device_label"].iloc[i]),
        ),
    )
    return table.iloc[order].reset_index(drop=True)


def _natural(text: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key that orders embedded numbers by value (K2 before K16)."""
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"(\d+)", text) if p)
