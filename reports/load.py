"""Read the files a study exported (``docs/outputs.md``) into one ``RunData``.

Only files are read — never a database — so a study on any Optuna storage reports the same way.
``trials.parquet`` is required; the dense grid, the oracle, the selection, the curves, the
replication, its comparisons and ``run.json`` are optional, and each missing one is recorded in
``RunData.notes`` so the report can say which section it cost.
Tables written before optimizers and learning-rate search existed have no ``optimizer``,
``decay`` or ``lr`` column: they are read as plain SGD (``decay`` from the rule: coupled, or
decoupled for the decoupled and proximal rules) at the run's lr.
"""

from __future__ import annotations

import json
import math
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from reports.stats import COMPARISON_COLUMNS

__all__ = [
    "OPTIONAL_TABLES",
    "REQUIRED_COLUMNS",
    "ReportInputError",
    "RunData",
    "Stamp",
    "load_run",
]

#: Columns the report reads from each table (the contract in ``docs/outputs.md``).
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "trials": (
        "number",
        "state",
        "penalty",
        "loop",
        "lam",
        "l1_ratio",
        "value",
        "val_ci95",
        "w_norm",
        "zero_fraction",
        "fail_reason",
    ),
    "grid": (
        "penalty",
        "loop",
        "lam",
        "l1_ratio",
        "data_seed",
        "val_loss",
        "train_loss",
        "w_norm",
        "zero_fraction",
        "status",
    ),
    "oracle": (
        "penalty",
        "lam",
        "l1_ratio",
        "data_seed",
        "train_loss",
        "val_loss",
        "test_loss",
        "w_norm",
        "zero_fraction",
    ),
    "selected": (
        "label",
        "penalty",
        "loop",
        "lam",
        "l1_ratio",
        "val_mean",
        "val_ci95",
        "test_mean",
        "test_ci95",
        "is_best",
    ),
    "curves": (
        "label",
        "penalty",
        "loop",
        "lam",
        "l1_ratio",
        "data_seed",
        "epoch",
        "split",
        "loss",
    ),
    "replication": (
        "regime",
        "label",
        "penalty",
        "loop",
        "lam",
        "l1_ratio",
        "data_seed",
        "train_seed",
        "val_loss",
        "test_loss",
        "w_norm",
        "zero_fraction",
    ),
    "comparisons": tuple(COMPARISON_COLUMNS),
}
_TEXT_COLUMNS = (
    "state",
    "penalty",
    "loop",
    "fail_reason",
    "status",
    "label",
    "split",
    "regime",
    "a",
    "b",
    "penalty_a",
    "penalty_b",
    "optimizer",
    "decay",
)
#: Tables whose rows name a configuration (they get the optimizer columns when old).
_CONFIG_TABLES = ("trials", "grid", "selected", "curves", "replication")
#: Legacy loop names whose rule is not the coupled one.
_DECOUPLED_LOOPS = ("decoupled", "proximal")


class ReportInputError(Exception):
    """A problem with the files a user pointed the report at (said in one line, exit code 2)."""


#: The optional tables of a study directory, in the order ``load_run`` reads them.
OPTIONAL_TABLES = ("grid", "oracle", "selected", "curves", "replication", "comparisons")


@dataclass(frozen=True)
class Stamp:
    """What identifies the file a table was read from (``os.stat``: inode, size, modification
    time), and whether reading it used the run's lr (a table without a complete ``lr``
    column)."""

    inode: int
    size: int
    mtime_ns: int
    uses_lr: bool


@dataclass(frozen=True)
class RunData:
    """Everything the report knows about one study; optional tables are ``None`` when absent."""

    run_dir: Path
    run: dict[str, Any]
    trials: pd.DataFrame
    grid: pd.DataFrame | None
    oracle: pd.DataFrame | None
    selected: pd.DataFrame | None
    curves: pd.DataFrame | None
    replication: pd.DataFrame | None = None
    comparisons: pd.DataFrame | None = None
    notes: tuple[str, ...] = field(default=())
    #: table name → the file it was read from (``load_run(before=...)`` reuses unchanged ones)
    stamps: dict[str, Stamp] = field(default_factory=dict, compare=False)

    @property
    def name(self) -> str:
        """The study name from ``run.json``, or the directory name when it is not recorded."""
        name = self.run.get("study_name")
        return str(name) if name else self.run_dir.name

    @property
    def classification(self) -> bool:
        """Whether the study classified (run.json's ``data.task``; else accuracies in the
        selection): its losses are cross-entropies and its comparisons test accuracies."""
        data = self.run.get("data")
        if isinstance(data, dict) and "task" in data:
            return bool(data["task"] == "classification")
        return self.selected is not None and "val_acc_mean" in self.selected.columns

    @property
    def network(self) -> bool:
        """Whether the study trained a network (an MLP, or softmax regression on a
        classification problem): then there is no closed-form oracle."""
        settings = self.run.get("settings")
        mlp = isinstance(settings, dict) and settings.get("model") == "mlp"
        return mlp or self.classification

    @property
    def complete(self) -> pd.DataFrame:
        """COMPLETE trials with a finite value: the only ones any fit or figure uses."""
        t = self.trials
        values = pd.to_numeric(t["value"], errors="coerce").to_numpy(dtype=float)
        keep = (t["state"] == "COMPLETE").to_numpy() & np.isfinite(values)
        kept: pd.DataFrame = t[keep]
        return kept.reset_index(drop=True)


def load_run(
    run_dir: Path,
    before: RunData | None = None,
    tables: tuple[str, ...] = OPTIONAL_TABLES,
) -> RunData:
    """Load a study directory; raise ``ReportInputError`` for a missing or empty study.

    ``before``: a ``RunData`` loaded from ``run_dir`` earlier; a table whose file has not
    changed since (``Stamp``), and whose reading did not use the run's lr or used the same, is
    taken from it (the same object) instead of read again. ``tables``: the optional tables to
    read (the others are ``None``, without a note: a study that is still running writes them
    later).
    """
    if not run_dir.is_dir():
        raise ReportInputError(f"no study directory at {run_dir}")
    trials_path = run_dir / "trials.parquet"
    if not trials_path.is_file():
        raise ReportInputError(f"{run_dir} holds no trials.parquet: not a study directory")
    run_notes: list[str] = []  # after the tables' notes
    run = _read_run_json(run_dir / "run.json", run_notes)
    reader = _Reader(run_dir, _run_lr(run), before)
    trials = reader.table("trials", required=True)
    if trials is None or trials.empty:
        raise ReportInputError(f"study in {run_dir} has no trials")
    notes: list[str] = []
    loaded = {name: reader.table(name, notes=notes) for name in tables}
    notes += run_notes
    return RunData(
        run_dir=run_dir,
        run=run,
        trials=trials,
        grid=loaded.get("grid"),
        oracle=loaded.get("oracle"),
        selected=loaded.get("selected"),
        curves=loaded.get("curves"),
        replication=loaded.get("replication"),
        comparisons=loaded.get("comparisons"),
        notes=tuple(notes),
        stamps=reader.stamps,
    )


class _Reader:
    """Reads the tables of one ``load_run``, reusing ``before``'s unchanged ones."""

    def __init__(self, run_dir: Path, lr: float, before: RunData | None) -> None:
        self.run_dir, self.lr, self.before = run_dir, lr, before
        self.stamps: dict[str, Stamp] = {}

    def table(
        self, name: str, required: bool = False, notes: list[str] | None = None
    ) -> pd.DataFrame | None:
        path = self.run_dir / f"{name}.parquet"
        try:
            st: os.stat_result | None = path.stat()
        except OSError:
            st = None
        if st is None or not stat.S_ISREG(st.st_mode):
            if required:
                raise ReportInputError(f"cannot read {path}: it is missing")
            if notes is not None:
                notes.append(f"{path.name} is missing")
            return None
        old = self._unchanged(name, st)
        if old is not None:
            table, stamp = old
        else:
            table = _read_table(path, name)
            uses_lr = False
            if name in _CONFIG_TABLES and not table.empty:
                uses_lr = _uses_lr(table)
                table = _with_optimizer_columns(table, self.lr)
            stamp = Stamp(st.st_ino, st.st_size, st.st_mtime_ns, uses_lr)
        self.stamps[name] = stamp
        if table.empty and not required:
            if notes is not None:
                notes.append(f"{path.name} is empty")
            return None
        return table

    def _unchanged(self, name: str, st: os.stat_result) -> tuple[pd.DataFrame, Stamp] | None:
        """``before``'s table ``name`` and its stamp, when its file and lr are the same."""
        before = self.before
        if before is None or before.run_dir != self.run_dir or name not in before.stamps:
            return None
        stamp = before.stamps[name]
        if (stamp.inode, stamp.size, stamp.mtime_ns) != (st.st_ino, st.st_size, st.st_mtime_ns):
            return None
        if stamp.uses_lr and not _same(_run_lr(before.run), self.lr):
            return None
        table = before.trials if name == "trials" else getattr(before, name)
        if table is None:  # read empty before: read again (an empty table becomes None)
            return None
        return table, stamp


def _same(a: float, b: float) -> bool:
    """Equal lr values (two unrecorded ones, NaN, count as equal)."""
    return a == b or (math.isnan(a) and math.isnan(b))


def _uses_lr(table: pd.DataFrame) -> bool:
    """Whether ``_with_optimizer_columns`` fills anything in ``table`` from the run's lr."""
    if "lr" not in table.columns:
        return True
    return bool(pd.to_numeric(table["lr"], errors="coerce").isna().any())


def _run_lr(run: dict[str, Any]) -> float:
    """The study's fixed lr from ``run.json`` (NaN when not recorded)."""
    settings = run.get("settings")
    value = settings.get("lr") if isinstance(settings, dict) else None
    return float(value) if isinstance(value, int | float) else float("nan")


def _with_optimizer_columns(table: pd.DataFrame, lr: float) -> pd.DataFrame:
    """``optimizer``, ``decay`` and ``lr`` for tables written before they existed; a missing lr
    value is the run's fixed one."""
    out = table.copy()
    if "optimizer" not in out.columns:
        out["optimizer"] = "sgd"
    if "decay" not in out.columns:
        rules = out["rule"] if "rule" in out.columns else out["loop"]
        decoupled = rules.isin(("decoupled", "proximal", *_DECOUPLED_LOOPS))
        out["decay"] = np.where(decoupled, "decoupled", "coupled")
    if "lr" not in out.columns:
        out["lr"] = lr
    out["lr"] = pd.to_numeric(out["lr"], errors="coerce").fillna(lr)
    return out


def _read_table(path: Path, name: str) -> pd.DataFrame:
    """Read one parquet table and check it carries the contract's columns."""
    try:
        table = pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise ReportInputError(f"cannot read {path}: {exc}") from None
    if table.empty:
        return table
    missing = [c for c in REQUIRED_COLUMNS[name] if c not in table.columns]
    if missing:
        raise ReportInputError(f"{path} lacks the columns {missing} (see docs/outputs.md)")
    for column in _TEXT_COLUMNS:
        if column in table.columns:
            table[column] = table[column].fillna("").astype(str)
    if "state" in table.columns:
        table["state"] = table["state"].str.upper()
    return table


def _read_run_json(path: Path, notes: list[str]) -> dict[str, Any]:
    """Read ``run.json``; a missing file is a note, a malformed one a user error."""
    if not path.is_file():
        notes.append("run.json is missing")
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ReportInputError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ReportInputError(f"{path} must hold a JSON object")
    return data
