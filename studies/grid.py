"""Dense-grid and closed-form references for the search's regret.

The dense grid trains ``--grid-points`` log-spaced λ per optimizer, penalty and update rule
(elastic at a few l1_ratio values; none once per optimizer) through the same kernel, data seeds,
train seed and budget as the trials; with ``--lr-range`` each branch is a √G × √G lattice of
lr × λ instead (G = ``--grid-points``), the lr × λ picture of the report. The oracle solves
each penalized objective to convergence (ridge exactly, lasso and elastic net by coordinate
descent) on the same draws — for the linear model on regression only: a network (``--model mlp``,
or any model on a classification problem) has no closed form, and there the dense grid alone is
the reference (``has_oracle``). Relative regret of the search:

    regret = (best trial's mean val − best grid point's mean val) / best grid point's mean val

(negative when the search found a point between the grid's, e.g. a better l1_ratio).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from studies.cli import FILE_FLAGS, Settings
from studies.crn import StudySeeds
from studies.space import SearchPoint, lam_grid, lattice
from studies.train_batch import evaluate
from wdbench import Problem, TrainConfig, oracle
from wdbench.networks import uses_network
from wdbench.threads import run_parallel

__all__ = [
    "GRID_L1_RATIOS",
    "best_grid_point",
    "cached_dense_grid",
    "dense_grid",
    "grid_key",
    "grid_points",
    "has_oracle",
    "oracle_best",
    "oracle_table",
    "steps_per_epoch",
]

#: l1_ratio values of the elastic branch of the dense grid.
GRID_L1_RATIOS = (0.2, 0.5, 0.8)
#: λ points of the coordinate-descent oracles (lasso, elastic net) and their tolerance: at
#: 1e-6 the validation losses of the default study agree with a 1e-15 solve to ~1e-8 at the
#: best λ (the same best λ) and to ~1.5 % at the smallest (n < d: coordinate descent crawls
#: there), scikit-learn's solver and the compiled one alike; 1e-8 costs ~16× the sweeps.
ORACLE_CD_POINTS = 32
ORACLE_CD_TOL = 1e-6
ORACLE_L1_RATIO = 0.5
#: ``DataFrame.attrs`` key (kept in the Parquet metadata) of the settings a grid was run with.
GRID_KEY_ATTR = "wdbench_grid_key"


def grid_points(settings: Settings) -> list[SearchPoint]:
    """Every point of the dense grid for the chosen options."""
    return lattice(settings, settings.grid_points, GRID_L1_RATIOS)


def dense_grid(
    settings: Settings, problems: Sequence[Problem], seeds: StudySeeds, device: torch.device
) -> pd.DataFrame:
    """One row per grid point × data seed (columns of ``grid.parquet``).

    One kernel call: it groups the points by penalty and rule and bounds memory itself.
    """
    points = grid_points(settings)
    configs = [p.config(settings, seeds.train_seed) for p in points]
    ev = evaluate(problems, configs, device=device)
    base = pd.DataFrame([p.row() for p in points]).assign(
        lr=[c.lr for c in configs], steps_per_epoch=steps_per_epoch(settings, problems)
    )
    frames = []
    for s, data_seed in enumerate(seeds.data_seeds):
        frame = base.assign(
            data_seed=data_seed,
            val_loss=ev.val_loss[s],
            train_loss=ev.train_loss[s],
            w_norm=ev.w_norm[s],
            zero_fraction=ev.zero_fraction[s],
        )
        if ev.val_acc is not None and ev.train_acc is not None:
            frame = frame.assign(val_acc=ev.val_acc[s], train_acc=ev.train_acc[s])
        frame["status"] = np.where(ev.diverged[s], "diverged", "ok")
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def steps_per_epoch(settings: Settings, problems: Sequence[Problem]) -> int:
    """Optimizer steps per epoch: ⌈n_train / batch size⌉ (τ_epoch = τ_iter / this)."""
    batch_size = TrainConfig().batch_size if settings.batch_size is None else settings.batch_size
    return -(-problems[0].n_train // batch_size)


def grid_key(settings: Settings, device: torch.device) -> str:
    """Everything the dense grid's numbers depend on, as canonical JSON."""
    fields = (
        "problem",
        "penalties",
        "lam_range",
        "seeds",
        "seed",
        "lr",
        "epochs",
        "init_scale",
        "grid_points",
        "optimizers",
        "decay",
        "lr_range",
        "batch_size",
        "model",
        "hidden",
        "layers",
    )
    key = {name: getattr(settings, name) for name in fields}
    key.update({name: getattr(settings, name) for name in FILE_FLAGS if getattr(settings, name)})
    key.update(l1_ratios=GRID_L1_RATIOS, device=device.type, torch=torch.__version__)
    return json.dumps(key, sort_keys=True)


def cached_dense_grid(
    path: Path,
    settings: Settings,
    problems: Sequence[Problem],
    seeds: StudySeeds,
    device: torch.device,
) -> pd.DataFrame:
    """``dense_grid``, reusing ``path`` when a previous run wrote it with the same key.

    A rerun that only tops the study up then skips the grid, the most expensive step.
    """
    key = grid_key(settings, device)
    if path.is_file():
        try:
            cached = pd.read_parquet(path)
        except (OSError, ValueError):  # unreadable or truncated: recompute
            cached = None
        if cached is not None and cached.attrs.get(GRID_KEY_ATTR) == key:
            return cached
    grid = dense_grid(settings, problems, seeds, device)
    grid.attrs[GRID_KEY_ATTR] = key  # stored in the Parquet metadata by pandas
    return grid


def best_grid_point(grid: pd.DataFrame) -> dict[str, Any] | None:
    """The grid point with the lowest mean validation loss among points ok on every seed.

    Returns its ``penalty, loop, lam, l1_ratio, val_mean`` (and ``optimizer``, ``lr`` when the
    grid searched them; None if every point diverged); ``loop`` (the legacy single name) identifies
    the rule in old and new grid files alike.
    """
    searched = [c for c in ("optimizer", "lr") if c in grid and _varies(grid, c)]
    keys = ["penalty", "loop", *searched, "lam", "l1_ratio"]
    ok = grid.assign(ok=grid["status"] == "ok")
    means = ok.groupby(keys, dropna=False).agg(val_mean=("val_loss", "mean"), ok=("ok", "all"))
    means = means[means["ok"]].reset_index().sort_values("val_mean", kind="stable")
    if means.empty:
        return None
    best = means[[*keys, "val_mean"]].to_dict(orient="records")[0]
    return {str(key): value for key, value in best.items()}


def _varies(grid: pd.DataFrame, column: str) -> bool:
    """Whether the grid searched ``column``: several values, or an optimizer other than SGD."""
    values = set(grid[column])
    return len(values) > 1 or (column == "optimizer" and values != {"sgd"})


def has_oracle(settings: Settings, problems: Sequence[Problem]) -> bool:
    """Whether the study's model has closed-form oracles: the linear model on regression. A
    network (``--model mlp``, or softmax regression on a classification problem) has none."""
    return not uses_network(settings.model, problems[0].task)


def oracle_table(
    settings: Settings, problems: Sequence[Problem], seeds: StudySeeds
) -> pd.DataFrame:
    """Converged solutions per λ and data seed (columns of ``oracle.parquet``); no rows for a
    study without oracles (``has_oracle``)."""
    dense = torch.tensor(lam_grid(settings, settings.grid_points), dtype=torch.float64)
    # large → small, finely spaced whatever --grid-points: each warm start is then close
    sparse = torch.tensor(lam_grid(settings, ORACLE_CD_POINTS), dtype=torch.float64).flip(0)

    def paths_of(problem: Problem, data_seed: int) -> list[pd.DataFrame]:
        paths = []
        if "l2" in settings.penalties:
            paths.append(oracle.ridge_path(problem, dense))
        if "l1" in settings.penalties:
            paths.append(oracle.lasso_path(problem, sparse, tol=ORACLE_CD_TOL))
        if "elastic" in settings.penalties:
            paths.append(
                oracle.elastic_net_path(problem, sparse, ORACLE_L1_RATIO, tol=ORACLE_CD_TOL)
            )
        return [_path_frame(path, data_seed) for path in paths]

    # one task per data draw on the thread pool (coordinate descent runs without the GIL)
    tasks = [
        partial(paths_of, problem, data_seed)
        for problem, data_seed in zip(problems, seeds.data_seeds, strict=True)
        if has_oracle(settings, problems)
    ]
    frames = [frame for part in run_parallel(tasks) for frame in part]
    columns = [
        "penalty",
        "lam",
        "l1_ratio",
        "data_seed",
        "train_loss",
        "val_loss",
        "test_loss",
        "w_norm",
        "zero_fraction",
    ]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in columns})
    return pd.concat(frames, ignore_index=True)[columns].sort_values(
        ["penalty", "data_seed", "lam"], kind="stable", ignore_index=True
    )


def _path_frame(path: oracle.OraclePath, data_seed: int) -> pd.DataFrame:
    w = path.w
    return pd.DataFrame(
        {
            "penalty": path.penalty,
            "lam": path.lams.numpy(),
            "l1_ratio": np.nan if path.l1_ratio is None else path.l1_ratio,
            "data_seed": data_seed,
            "train_loss": path.losses["train"].numpy(),
            "val_loss": path.losses["val"].numpy(),
            "test_loss": path.losses["test"].numpy(),
            "w_norm": torch.linalg.vector_norm(w, dim=-1).numpy(),
            "zero_fraction": (w == 0).to(torch.float64).mean(-1).numpy(),
        }
    )


def oracle_best(table: pd.DataFrame) -> pd.DataFrame:
    """Per oracle penalty: the λ with the lowest mean validation loss over data seeds."""
    if table.empty:
        return table
    means = table.groupby(["penalty", "lam"], as_index=False)["val_loss"].mean()
    best = means.loc[means.groupby("penalty")["val_loss"].idxmin()]
    renamed: pd.DataFrame = best.rename(columns={"val_loss": "val_mean"})
    return renamed.reset_index(drop=True)
