"""Tables: a user's data as a float64 feature matrix and target, checked once, before any split.

A numeric target is regressed on; a categorical one (strings, a pandas ``category``, booleans) makes
a classification table: its classes in sorted order, the target as class indices. NumPy and the
standard library only (pandas is imported when a file is read), so a command line can check a file
before it imports torch. Every mistake a user can make in a file raises ``ValueError`` with one
line that starts with the file (or ``data frame`` / ``arrays``) and says what is wrong.
"""

from __future__ import annotations

import csv
import hashlib
import math
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "MIN_CLASS_ROWS",
    "TABLE_SUFFIXES",
    "TEST_FRACTION",
    "VAL_FRACTION",
    "Table",
    "array_table",
    "available_memory",
    "file_sha256",
    "frame_table",
    "is_table_path",
    "read_table",
    "split_sizes",
]

#: File suffixes read as tables (``--problem PATH``).
TABLE_SUFFIXES = (".csv", ".parquet", ".pq")
#: Default fractions of the rows held out for validation and test.
VAL_FRACTION = 0.2
TEST_FRACTION = 0.2
#: Rows a class of a categorical target needs at least: one for each split.
MIN_CLASS_ROWS = 3


@dataclass(frozen=True, eq=False)
class Table:
    """Rows of a data set: ``X`` ``[rows, features]`` (float64) and ``y`` ``[rows]``.

    Regression (``classes == ()``): ``y`` is float64. Classification: ``classes`` names the
    target's classes in sorted order and ``y`` holds each row's class index (int64).
    ``source`` names where the rows came from (a file path, ``data frame`` or ``arrays``);
    ``sha256`` and ``n_columns`` describe the file (``None`` / the used columns otherwise).
    """

    source: str
    X: np.ndarray
    y: np.ndarray
    target: str
    features: tuple[str, ...]
    n_columns: int
    sha256: str | None = None
    classes: tuple[str, ...] = ()

    @property
    def n_rows(self) -> int:
        return int(self.X.shape[0])

    @property
    def task(self) -> str:
        """``"classification"`` for a categorical target, else ``"regression"``."""
        return "classification" if self.classes else "regression"

    def class_counts(self) -> list[int]:
        """Rows of each class, in ``classes`` order (empty for regression)."""
        if not self.classes:
            return []
        return [int(n) for n in np.bincount(self.y, minlength=len(self.classes))]

    def provenance(self) -> dict[str, Any]:
        """What a run records about its data: path, hash, row and column counts, columns used;
        for a categorical target the task and each class with its rows."""
        record: dict[str, Any] = {
            "path": self.source,
            "sha256": self.sha256,
            "rows": self.n_rows,
            "columns": self.n_columns,
            "target": self.target,
            "features": list(self.features),
        }
        if self.classes:
            record["task"] = self.task
            record["classes"] = [
                {"name": name, "rows": rows}
                for name, rows in zip(self.classes, self.class_counts(), strict=True)
            ]
        return record


def is_table_path(text: str) -> bool:
    """Whether ``--problem`` names a file to read as a table (by its suffix)."""
    return Path(text).suffix.lower() in TABLE_SUFFIXES


def split_sizes(
    n_rows: int,
    n_train: int | None = None,
    val_fraction: float = VAL_FRACTION,
    test_fraction: float = TEST_FRACTION,
    source: str = "data",
) -> tuple[int, int, int]:
    """``(n_train, n_val, n_test)`` for ``n_rows`` rows: validation and test take their fractions
    (at least one row each), training takes ``n_train`` rows (default: all the rest, at least 2)."""
    for name, f in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0 < f < 1:
            raise ValueError(f"{source}: {name} must be in (0, 1), got {f}")
    if val_fraction + test_fraction >= 1:
        raise ValueError(f"{source}: val_fraction + test_fraction must be < 1")
    n_val = max(1, round(val_fraction * n_rows))
    n_test = max(1, round(test_fraction * n_rows))
    rest = n_rows - n_val - n_test
    n = rest if n_train is None else n_train
    if n_train is not None and n_train < 2:
        raise ValueError(f"{source}: n_train must be >= 2, got {n_train}")
    if n < 2 or n > rest:
        raise ValueError(
            f"{source}: {n_rows} rows are fewer than the splits need "
            f"({max(n, 2)} train + {n_val} validation + {n_test} test)"
        )
    return n, n_val, n_test


def available_memory() -> int:
    """Bytes of memory available now (``MemAvailable``; total physical memory as a fallback)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes, in hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_table(
    path: str | os.PathLike[str],
    target: str | None = None,
    features: Sequence[str] | None = None,
    memory_limit: int | None = None,
) -> Table:
    """Read a ``.csv`` or ``.parquet`` file as a checked ``Table`` (target: the last column unless
    named; features: every other column unless named). ``memory_limit`` defaults to the memory
    available now; a file whose values would not fit is refused before it is read."""
    source = os.fspath(path)
    file = Path(source)
    if not file.exists():
        raise ValueError(f"{source}: no such file")
    if not file.is_file():
        raise ValueError(f"{source}: not a file")
    if file.suffix.lower() not in TABLE_SUFFIXES:
        raise ValueError(f"{source}: unknown file type (expected {', '.join(TABLE_SUFFIXES)})")
    if not os.access(file, os.R_OK):
        raise ValueError(f"{source}: unreadable (permission denied)")
    size = file.stat().st_size
    if size == 0:
        raise ValueError(f"{source}: the file is empty")
    parquet = file.suffix.lower() != ".csv"
    names, needed = _parquet_layout(source) if parquet else (_csv_header(source), size)
    limit = available_memory() if memory_limit is None else memory_limit
    if needed > limit:
        raise ValueError(
            f"{source}: needs about {_gib(needed)} of memory, more than the {_gib(limit)} available"
        )
    _check_unique(names, source)
    frame = _read_frame(source, parquet)
    table = frame_table(frame, target, features, source=source)
    return Table(
        source=source,
        X=table.X,
        y=table.y,
        target=table.target,
        features=table.features,
        n_columns=len(names),
        sha256=file_sha256(source),
        classes=table.classes,
    )


def frame_table(
    frame: pd.DataFrame,
    target: str | None = None,
    features: Sequence[str] | None = None,
    source: str = "data frame",
) -> Table:
    """Check a data frame and take its target (default: last column) and features (default: the
    other columns) as float64 arrays; a categorical target (strings, ``category``, booleans) as
    class indices (``Table.classes``)."""
    columns = [str(c) for c in frame.columns]
    _check_unique(columns, source)
    if len(columns) < 2:
        raise ValueError(f"{source}: only {len(columns)} column (need a target and a feature)")
    if len(frame) == 0:
        raise ValueError(f"{source}: no rows (only a header)")
    if len(frame) < 2:
        raise ValueError(f"{source}: only 1 row")
    target = columns[-1] if target is None else target
    if target not in columns:
        raise ValueError(f"{source}: no target column {target!r} (columns: {_listing(columns)})")
    used = [c for c in columns if c != target] if features is None else list(features)
    _check_features(used, columns, target, source)
    frame = frame.set_axis(columns, axis=1)
    non_numeric = [c for c in used if not _numeric(frame[c])]
    if non_numeric:
        raise ValueError(
            f"{source}: non-numeric column{'s' * (len(non_numeric) > 1)} "
            f"{_listing(non_numeric)} (encode them as numbers, or leave them out of the features)"
        )
    X = frame[used].to_numpy(dtype=np.float64, copy=True, na_value=np.nan)
    column = frame[target]
    if _categorical(column):
        return _classified(X, column, target, tuple(used), source, n_columns=len(columns))
    y = column.to_numpy(dtype=np.float64, copy=True, na_value=np.nan)
    return _checked(X, y, target, tuple(used), source, n_columns=len(columns))


def array_table(
    X: Any, y: Any, features: Sequence[str] | None = None, source: str = "arrays"
) -> Table:
    """Check a feature matrix ``[rows, features]`` and a target ``[rows]`` (NumPy arrays, tensors
    or anything ``numpy.asarray`` takes) and hold them as float64."""
    X_np, y_np = _float64(X, "X", source), _float64(y, "y", source)
    if X_np.ndim != 2 or y_np.ndim != 1 or X_np.shape[0] != y_np.shape[0]:
        raise ValueError(
            f"{source}: X must be [rows, features] and y [rows], got {list(X_np.shape)} and "
            f"{list(y_np.shape)}"
        )
    if X_np.shape[0] < 2:
        raise ValueError(f"{source}: only {X_np.shape[0]} row{'s' * (X_np.shape[0] != 1)}")
    if X_np.shape[1] < 1:
        raise ValueError(f"{source}: X has no feature columns")
    names = tuple(f"x{j}" for j in range(X_np.shape[1])) if features is None else tuple(features)
    if len(names) != X_np.shape[1]:
        raise ValueError(f"{source}: {len(names)} feature names for {X_np.shape[1]} columns")
    _check_unique([*names, "y"], source)
    return _checked(X_np, y_np, "y", names, source, n_columns=len(names) + 1)


def _checked(
    X: np.ndarray,
    y: np.ndarray,
    target: str,
    features: tuple[str, ...],
    source: str,
    n_columns: int,
) -> Table:
    bad = [
        (name, col)
        for name, col in zip((*features, target), (*X.T, y), strict=True)
        if not np.isfinite(col).all()
    ]
    if bad:
        raise ValueError(
            f"{source}: missing or infinite values in "
            + ", ".join(_nonfinite(name, col) for name, col in bad)
        )
    if np.all(y == y[0]):
        raise ValueError(f"{source}: the target {target!r} is constant ({y[0]:g} in every row)")
    return Table(source=source, X=X, y=y, target=target, features=features, n_columns=n_columns)


def _classified(
    X: np.ndarray,
    column: pd.Series,
    target: str,
    features: tuple[str, ...],
    source: str,
    n_columns: int,
) -> Table:
    """A categorical target as class indices: classes sorted (by value; by text when the values
    do not compare), each needing ``MIN_CLASS_ROWS`` rows; a missing target value is refused."""
    bad = [
        _nonfinite(name, col)
        for name, col in zip(features, X.T, strict=True)
        if not np.isfinite(col).all()
    ]
    missing = int(column.isna().sum())
    if missing:
        bad.append(f"{target!r} ({missing} missing)")
    if bad:
        raise ValueError(f"{source}: missing or infinite values in " + ", ".join(bad))
    values = column.astype(object).to_numpy()
    distinct = list(dict.fromkeys(values.tolist()))
    try:
        distinct.sort()
    except TypeError:  # values of several types (a Parquet object column): sort by their text
        distinct.sort(key=str)
    names = tuple(str(v) for v in distinct)
    if len(set(names)) < len(names):
        raise ValueError(f"{source}: the target {target!r} has classes that read alike as text")
    if len(names) == 1:
        raise ValueError(
            f"{source}: the target {target!r} has one class ({names[0]!r} in every row)"
        )
    index = {value: i for i, value in enumerate(distinct)}
    y = np.fromiter((index[v] for v in values.tolist()), dtype=np.int64, count=len(values))
    counts = np.bincount(y, minlength=len(names))
    rare = [(name, int(n)) for name, n in zip(names, counts, strict=True) if n < MIN_CLASS_ROWS]
    if rare:
        shown = ", ".join(f"{name!r} ({n} row{'s' * (n != 1)})" for name, n in rare[:8])
        raise ValueError(
            f"{source}: class{'es' * (len(rare) > 1)} {shown} of the target {target!r} "
            f"too rare: each class needs at least {MIN_CLASS_ROWS} rows (one per split)"
        )
    return Table(
        source=source,
        X=X,
        y=y,
        target=target,
        features=features,
        n_columns=n_columns,
        classes=names,
    )


def _categorical(column: pd.Series) -> bool:
    """A target column to classify: booleans, or anything not numeric (text, ``category``)."""
    import pandas as pd

    return bool(pd.api.types.is_bool_dtype(column) or not _numeric(column))


def _nonfinite(name: str, col: np.ndarray) -> str:
    n_nan, n_inf = int(np.isnan(col).sum()), int(np.isinf(col).sum())
    parts = [f"{n} {kind}" for n, kind in ((n_nan, "missing"), (n_inf, "infinite")) if n]
    return f"{name!r} ({', '.join(parts)})"


def _check_features(used: list[str], columns: list[str], target: str, source: str) -> None:
    if not used:
        raise ValueError(f"{source}: no feature columns")
    unknown = [c for c in used if c not in columns]
    if unknown:
        raise ValueError(
            f"{source}: no feature column{'s' * (len(unknown) > 1)} {_listing(unknown)} "
            f"(columns: {_listing(columns)})"
        )
    if target in used:
        raise ValueError(f"{source}: the target {target!r} is also listed as a feature")
    _check_unique(used, source, what="feature")


def _check_unique(names: Sequence[str], source: str, what: str = "column") -> None:
    dup = sorted(name for name, count in Counter(names).items() if count > 1)
    if dup:
        raise ValueError(f"{source}: duplicate {what} name{'s' * (len(dup) > 1)} {_listing(dup)}")


def _numeric(column: pd.Series) -> bool:
    import pandas as pd

    return bool(pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column))


def _float64(values: Any, name: str, source: str) -> np.ndarray:
    if hasattr(values, "detach"):  # a torch tensor, possibly on an accelerator
        values = values.detach().cpu().numpy()
    try:
        return np.array(values, dtype=np.float64)  # a copy: the table owns its rows
    except (TypeError, ValueError):
        raise ValueError(f"{source}: {name} is not numeric") from None


def _csv_header(source: str) -> list[str]:
    try:
        with open(source, newline="", encoding="utf-8-sig") as f:
            header = next(csv.reader(f), [])
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise ValueError(f"{source}: unreadable ({_reason(e)})") from None
    if not any(h.strip() for h in header):
        raise ValueError(f"{source}: the file is empty (no header row)")
    return header


def _parquet_layout(source: str) -> tuple[list[str], int]:
    import pyarrow.parquet as pq

    try:
        file = pq.ParquetFile(source)
    except Exception as e:  # pyarrow raises ArrowInvalid, OSError, ... for a damaged file
        raise ValueError(f"{source}: unreadable as Parquet ({_reason(e)})") from None
    names = [str(n) for n in file.schema_arrow.names]
    return names, file.metadata.num_rows * max(len(names), 1) * 8


def _read_frame(source: str, parquet: bool) -> pd.DataFrame:
    import warnings

    import pandas as pd

    try:
        if parquet:
            return pd.read_parquet(source)
        with warnings.catch_warnings():  # a row longer than the header: refused, not truncated
            warnings.simplefilter("error", pd.errors.ParserWarning)
            return pd.read_csv(source, encoding="utf-8-sig", index_col=False)
    except pd.errors.EmptyDataError:
        raise ValueError(f"{source}: the file is empty") from None
    except Exception as e:  # parser, decoding and Arrow errors: the file, not the program
        raise ValueError(f"{source}: unreadable ({_reason(e)})") from None


def _reason(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 120 else text[:117] + "..."


def _listing(names: Sequence[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:8])
    return shown + (f", … ({len(names)} in all)" if len(names) > 8 else "")


def _gib(n_bytes: int) -> str:
    return f"{n_bytes / 2**30:.3g} GiB" if n_bytes >= 2**20 else f"{math.ceil(n_bytes / 1024)} KiB"
