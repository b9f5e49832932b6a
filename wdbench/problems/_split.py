"""A draw of a table's rows: disjoint splits by the seed, scaled with training statistics only.

The seed decides one permutation of the rows: its first rows are the test split, the next the
validation split, the next ``n_train`` the training split (so changing ``n_train`` never moves a
held-out row). Features are standardized and the target centred and scaled with the mean and
standard deviation (n − 1) of the training rows, in float64; a feature constant on the training
rows is only centred. Validation and test rows are never looked at before they are scaled.

A classification table (a categorical target) keeps its class indices as ``torch.long`` labels,
unscaled, with the table's classes (``n_classes`` is the same for every draw); a draw whose
training rows hold one class, or miss a class, is refused: the model could not learn it.
"""

from __future__ import annotations

from typing import Any

import torch

from wdbench.problems._problem import Problem
from wdbench.problems._tabular import Table, split_sizes
from wdbench.seeding import generator

__all__ = ["feature_scale", "table_problem"]


def feature_scale(X_train: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, standard deviation (n − 1)) of each feature over the training rows; a feature
    constant there gets 1, so scaling only centres it. Every built-in problem scales with these."""
    mean, std = X_train.mean(0), X_train.std(0)
    return mean, torch.where(std > 0, std, torch.ones_like(std))


def table_problem(
    table: Table,
    *,
    seed: int,
    n_train: int | None,
    val_fraction: float,
    test_fraction: float,
    dtype: torch.dtype,
) -> Problem:
    """Problem of ``table`` drawn by ``seed`` (``Problem.from_table`` documents it)."""
    n_tr, n_val, n_test = split_sizes(
        table.n_rows, n_train, val_fraction, test_fraction, source=table.source
    )
    perm = torch.randperm(table.n_rows, generator=generator(seed, "table", "split"))
    rows = {
        "test": perm[:n_test],
        "val": perm[n_test : n_test + n_val],
        "train": perm[n_test + n_val : n_test + n_val + n_tr],
    }
    X_all = torch.from_numpy(table.X)
    y_all = torch.from_numpy(table.y)
    X_tr, y_tr = X_all[rows["train"]], y_all[rows["train"]]
    x_mean, x_std = feature_scale(X_tr)
    meta: dict[str, Any] = {
        "source": table.source,
        "sha256": table.sha256,
        "target": table.target,
        "features": table.features,
        "seed": seed,
        "rows": {s: idx.tolist() for s, idx in rows.items()},
        "x_mean": x_mean,
        "x_std": x_std,
    }
    if table.classes:
        _check_classes(table, y_tr, seed)
        labels = {s: ((X_all[rows[s]] - x_mean) / x_std, y_all[rows[s]]) for s in rows}
        meta["classes"] = table.classes
        problem = Problem._from_splits("table", labels, meta, n_classes=len(table.classes))
        return problem.to(dtype=dtype)
    y_mean, y_std = y_tr.mean(), y_tr.std()
    if not float(y_std) > 0:
        raise ValueError(
            f"{table.source}: the target {table.target!r} is constant on the {n_tr} training "
            f"rows of data seed {seed}"
        )
    splits = {
        s: ((X_all[rows[s]] - x_mean) / x_std, (y_all[rows[s]] - y_mean) / y_std)
        for s in ("train", "val", "test")
    }
    meta.update(y_mean=float(y_mean), y_std=float(y_std))
    return Problem._from_splits("table", splits, meta).to(dtype=dtype)


def _check_classes(table: Table, y_train: torch.Tensor, seed: int) -> None:
    """Refuse a draw whose training rows hold one class, or miss a class of the table."""
    counts = torch.bincount(y_train, minlength=len(table.classes)).tolist()
    present = [name for name, n in zip(table.classes, counts, strict=True) if n]
    where = f"the {len(y_train)} training rows of data seed {seed}"
    if len(present) == 1:
        raise ValueError(
            f"{table.source}: the target {table.target!r} has one class ({present[0]!r}) on {where}"
        )
    absent = [name for name, n in zip(table.classes, counts, strict=True) if not n]
    if absent:
        total = dict(zip(table.classes, table.class_counts(), strict=True))
        shown = ", ".join(f"{name!r} ({total[name]} rows)" for name in absent[:8])
        raise ValueError(
            f"{table.source}: class{'es' * (len(absent) > 1)} {shown} of the target "
            f"{table.target!r} too rare: none on {where} (more rows of "
            f"{'them' if len(absent) > 1 else 'it'}, more training rows, or leave "
            f"{'their' if len(absent) > 1 else 'its'} rows out)"
        )
