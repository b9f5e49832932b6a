"""The replication stage: the chosen configurations retrained on fresh draws, and their comparisons.

After selection, every chosen configuration (``best``, ``best-<penalty>``, ``no-decay``) and the
null model (``null``: w = 0, b = mean of y_train) are evaluated on R fresh data draws, each with
a fresh train seed; both are derived by name from ``--seed`` and disjoint from the search's. Two
regimes, on the same draws:

* ``budget``: SGD at the study's budget (epochs, lr, init scale) through
  ``wdbench.train_population``, one call per draw (the draw's train seed is shared by its
  configurations: one batch order, the fast kernels);
* ``converged``: the exact oracles (ridge, lasso, elastic net at ``l1_ratio`` 0.5) at the λ each
  oracle path chose on the search's validation split, and no decay as the minimum-norm
  least-squares solution (ridge at λ = 0).

Every comparison (``comparison_pairs``) is paired over the draws, on the test split, with Holm's
adjustment across the whole family (``reports.stats.compare``): on the test loss, or on the test
accuracy for classification. A network (``--model mlp``, or a classification problem) has no exact
oracle, so only the budget regime is replicated; its null model predicts the majority class of the
training rows (``studies.exports.null_scores``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd
import torch

from reports.stats import compare
from studies.cli import Settings
from studies.crn import StudySeeds
from studies.exports import NULL_LABEL, null_scores
from studies.grid import ORACLE_CD_TOL, ORACLE_L1_RATIO, oracle_best
from studies.names import OPTIMIZERS, PENALTIES
from studies.problem import StudyProblem
from studies.space import POINT_COLUMNS, SearchPoint
from studies.train_batch import ACCURACIES, evaluate
from wdbench import Problem, oracle
from wdbench.seeding import derive_seed
from wdbench.threads import run_parallel

__all__ = [
    "NULL",
    "REGIMES",
    "REPLICATION_COLUMNS",
    "Replication",
    "ReplicationSeeds",
    "comparison_pairs",
    "replicate",
]

NULL = NULL_LABEL
NO_DECAY = "no-decay"
REGIMES = ("budget", "converged")
REPLICATION_COLUMNS = [
    "regime",
    "label",
    *POINT_COLUMNS,
    "data_seed",
    "train_seed",
    "val_loss",
    "test_loss",
    "w_norm",
    "zero_fraction",
]
_SEED_SPACE = 2**31
_ORACLE_RULE = {"rule": "exact", "impl": "oracle", "loop": "oracle"}
_NULL_RULE = {"rule": "", "impl": "", "loop": ""}


@dataclass(frozen=True)
class ReplicationSeeds:
    """R fresh ``data_seeds`` and one fresh ``train_seeds`` entry per draw, none the search's."""

    data_seeds: tuple[int, ...]
    train_seeds: tuple[int, ...]

    @classmethod
    def derive(cls, seeds: StudySeeds, replications: int) -> ReplicationSeeds:
        """Seeds named ``replication/data/r`` and ``replication/train/r`` from ``--seed``."""
        data = _fresh(seeds.seed, "data", replications, set(seeds.data_seeds))
        train = _fresh(seeds.seed, "train", replications, {seeds.train_seed})
        return cls(data, train)


def _fresh(seed: int, kind: str, count: int, taken: set[int]) -> tuple[int, ...]:
    out: list[int] = []
    r = 0
    while len(out) < count:
        value = derive_seed(seed, "replication", kind, r) % _SEED_SPACE
        if value not in taken and value not in out:
            out.append(value)
        r += 1
    return tuple(out)


@dataclass(frozen=True, eq=False)
class Replication:
    """``rows`` (``replication.parquet``) and ``comparisons`` (``comparisons.parquet``)."""

    seeds: ReplicationSeeds
    rows: pd.DataFrame
    comparisons: pd.DataFrame


def replicate(
    settings: Settings,
    labelled: Mapping[str, SearchPoint],
    search_val: Mapping[str, float],
    oracle_table: pd.DataFrame,
    seeds: StudySeeds,
    device: torch.device,
) -> Replication:
    """Evaluate the chosen configurations and the null model on fresh draws; compare them.

    ``search_val`` maps each label to its mean validation loss on the search's draws (what
    chose it): it names the best decayed configuration of the budget regime.
    """
    rseeds = ReplicationSeeds.derive(seeds, settings.replications)
    problems = StudyProblem.from_settings(settings).draws(rseeds.data_seeds)
    budget = budget_rows(settings, labelled, problems, rseeds, device)
    converged = converged_rows(oracle_table, problems, rseeds)
    nulls = null_rows(problems, rseeds)
    parts = [budget, nulls.assign(regime="budget")]
    if not converged.empty:
        parts += [converged, nulls.assign(regime="converged")]
    rows = pd.concat(parts, ignore_index=True)
    for column in ("optimizer", "decay"):  # the oracles and the null model have none
        rows[column] = rows[column].fillna("") if column in rows else ""
    accuracy = "test_acc" in rows
    rows = rows.reindex(columns=[*REPLICATION_COLUMNS, *(ACCURACIES if accuracy else ())])
    ranking = {"budget": dict(search_val), "converged": converged_val(oracle_table)}
    pairs = comparison_pairs(rows, ranking)
    metric = "accuracy" if accuracy else "loss"
    return Replication(rseeds, rows, compare(rows, pairs, metric=metric))


def budget_rows(
    settings: Settings,
    labelled: Mapping[str, SearchPoint],
    problems: Sequence[Problem],
    rseeds: ReplicationSeeds,
    device: torch.device,
) -> pd.DataFrame:
    """Each labelled point trained at the study's budget on every fresh draw (its own seed);
    one task per draw on the thread pool."""
    unique = list(dict.fromkeys(labelled.values()))

    def on_draw(problem: Problem, data_seed: int, train_seed: int) -> pd.DataFrame:
        configs = [p.config(settings, train_seed) for p in unique]
        ev = evaluate([problem], configs, device=device)
        by_point = {
            point: {
                "val_loss": ev.val_loss[0, k],
                "test_loss": ev.test_loss[0, k],
                "w_norm": ev.w_norm[0, k],
                "zero_fraction": ev.zero_fraction[0, k],
                **{
                    name: values[0, k]
                    for name in ACCURACIES
                    if (values := getattr(ev, name)) is not None
                },
            }
            for k, point in enumerate(unique)
        }
        rows = [
            {"label": label, **point.row(), **by_point[point]} for label, point in labelled.items()
        ]
        return pd.DataFrame(rows).assign(data_seed=data_seed, train_seed=train_seed)

    frames = run_parallel(
        [
            partial(on_draw, problem, data_seed, train_seed)
            for problem, data_seed, train_seed in zip(
                problems, rseeds.data_seeds, rseeds.train_seeds, strict=True
            )
        ]
    )
    return pd.concat(frames, ignore_index=True).assign(regime="budget")


def converged_val(oracle_table: pd.DataFrame) -> dict[str, float]:
    """Label → mean validation loss on the search's draws of each converged choice."""
    best = oracle_best(oracle_table)
    if best.empty:
        return {}
    values = {f"best-{r['penalty']}": float(r["val_mean"]) for _, r in best.iterrows()}
    return {"best": min(values.values()), **values}


def converged_choices(oracle_table: pd.DataFrame) -> dict[str, tuple[str, float]]:
    """Label → (penalty, λ) at convergence: each oracle's best λ (search draws, validation),
    ``best`` the lowest of them, and no decay (minimum-norm least squares, λ = 0)."""
    best = oracle_best(oracle_table)
    if best.empty:
        return {}
    choices = {
        f"best-{r['penalty']}": (str(r["penalty"]), float(r["lam"])) for _, r in best.iterrows()
    }
    top = best.iloc[int(np.argmin(best["val_mean"].to_numpy(dtype=float)))]
    return {"best": (str(top["penalty"]), float(top["lam"])), **choices, NO_DECAY: ("none", 0.0)}


def converged_rows(
    oracle_table: pd.DataFrame, problems: Sequence[Problem], rseeds: ReplicationSeeds
) -> pd.DataFrame:
    """The exact solution of each converged choice on every fresh draw; one task per draw on
    the thread pool (coordinate descent runs without the GIL)."""
    choices = converged_choices(oracle_table)

    def on_draw(problem: Problem, data_seed: int) -> list[dict[str, object]]:
        rows: list[dict[str, object]] = []
        for label, (penalty, lam) in choices.items():
            path = _oracle_path(problem, penalty, lam)
            rows.append(
                {
                    "label": label,
                    "penalty": penalty,
                    **_ORACLE_RULE,
                    "lam": lam,
                    "l1_ratio": ORACLE_L1_RATIO if penalty == "elastic" else math.nan,
                    "data_seed": data_seed,
                    "train_seed": -1,
                    **_path_stats(path),
                }
            )
        return rows

    parts = run_parallel(
        [
            partial(on_draw, problem, data_seed)
            for problem, data_seed in zip(problems, rseeds.data_seeds, strict=True)
        ]
    )
    rows = [row for part in parts for row in part]
    frame = pd.DataFrame(rows, columns=[c for c in REPLICATION_COLUMNS if c != "regime"])
    return frame.assign(regime="converged")


def _oracle_path(problem: Problem, penalty: str, lam: float) -> oracle.OraclePath:
    if penalty in ("l2", "none"):
        return oracle.ridge_path(problem, [lam])
    if penalty == "l1":
        return oracle.lasso_path(problem, [lam], tol=ORACLE_CD_TOL)
    return oracle.elastic_net_path(problem, [lam], ORACLE_L1_RATIO, tol=ORACLE_CD_TOL)


def _path_stats(path: oracle.OraclePath) -> dict[str, float]:
    w = path.w[0]
    return {
        "val_loss": float(path.losses["val"][0]),
        "test_loss": float(path.losses["test"][0]),
        "w_norm": float(torch.linalg.vector_norm(w)),
        "zero_fraction": float((w == 0).to(torch.float64).mean()),
    }


def null_rows(problems: Sequence[Problem], rseeds: ReplicationSeeds) -> pd.DataFrame:
    """The null model (w = 0, b = mean of y_train; the majority class for classification) on
    every fresh draw."""
    rows = [
        {
            "label": NULL,
            "penalty": NULL,
            **_NULL_RULE,
            "lam": math.inf,
            "l1_ratio": math.nan,
            "data_seed": data_seed,
            "train_seed": -1,
            **null_scores(problem),
        }
        for problem, data_seed in zip(problems, rseeds.data_seeds, strict=True)
    ]
    return pd.DataFrame(rows)


def comparison_pairs(
    rows: pd.DataFrame, ranking: Mapping[str, Mapping[str, float]]
) -> list[tuple[str, str, str]]:
    """The family, per regime: decay vs none, each penalty vs the best, best vs null, and for
    each optimizer searched with both couplings its best decoupled vs its best coupled
    configuration (``best-<optimizer>-decoupled`` vs ``best-<optimizer>-coupled``).

    "Decay" is the decayed configuration (``best-<penalty>``, penalty ≠ none) that ``ranking``
    (per regime: label → mean validation loss on the search's draws) ranks first; a pair of two
    labels for the same configuration, or one already in the family, is left out.
    """
    pairs: list[tuple[str, str, str]] = []
    for regime in REGIMES:
        part = rows[rows["regime"] == regime]
        if part.empty:
            continue
        keys = _config_keys(part)
        means = ranking.get(regime, {})
        penalties = {f"best-{p}" for p in PENALTIES}
        decayed = [x for x in keys if x in penalties and keys[x][0] != "none" and x in means]
        wanted: list[tuple[str, str]] = []
        if decayed and NO_DECAY in keys:
            wanted.append((min(decayed, key=lambda x: (means[x], x)), NO_DECAY))
        wanted += [(x, "best") for x in sorted(decayed, key=_penalty_rank) if "best" in keys]
        if "best" in keys and NULL in keys:
            wanted.append(("best", NULL))
        for optimizer in OPTIMIZERS:
            couplings = (f"best-{optimizer}-decoupled", f"best-{optimizer}-coupled")
            if all(x in keys for x in couplings):
                wanted.append(couplings)
        seen: set[frozenset[tuple[object, ...]]] = set()
        for a, b in wanted:
            pair = frozenset((keys[a], keys[b]))
            if keys[a] != keys[b] and pair not in seen:
                seen.add(pair)
                pairs.append((regime, a, b))
    return pairs


def _config_keys(part: pd.DataFrame) -> dict[str, tuple[object, ...]]:
    first = part.groupby("label").first()
    return {
        str(label): (
            r["penalty"],
            r["rule"],
            float(r["lam"]),
            _nan_none(r["l1_ratio"]),
            str(r.get("optimizer", "")),
            _nan_none(r.get("lr", math.nan)),
        )
        for label, r in first.iterrows()
    }


def _nan_none(x: object) -> float | None:
    value = float(x)  # type: ignore[arg-type]
    return None if np.isnan(value) else value


def _penalty_rank(label: str) -> tuple[int, str]:
    order = ("best-none", "best-l2", "best-l1", "best-elastic")
    return (order.index(label) if label in order else len(order), label)
