"""The search space in Optuna terms, the samplers, and the map from a trial to a ``TrainConfig``.

Conditional space::

    penalty   categorical over --penalties
    lam       log-uniform in --lam-range            (penalty ≠ none; λ = 0 for none)
    rule      subgradient | proximal                (l1, elastic) → TrainConfig rule, impl:
                                                    coupled/scratch | proximal/functional
    l1_ratio  uniform in [0.05, 0.95]               (elastic)

none and l2 train with the lesson's rule and code path (coupled, scratch). Subgradient L1 and
elastic train in float64 (``SUBGRADIENT_DTYPE``): in float32 they are chaotic. TPE runs
multivariate with ``group=True`` so it models each branch of the conditional space jointly
instead of falling back to independent sampling.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import optuna

from studies.cli import DEFAULTS, Settings
from studies.names import PENALTIES
from wdbench import TrainConfig, get_penalty
from wdbench.config import Dtype, loop_name
from wdbench.seeding import derive_seed

__all__ = [
    "BUDGET",
    "L1_RATIO_RANGE",
    "RULES",
    "SUBGRADIENT_DTYPE",
    "SearchPoint",
    "enqueue_grid",
    "grid_branches",
    "lam_grid",
    "make_sampler",
    "penalty_order",
    "point_from_params",
    "rules_for",
    "sample_configs",
    "suggest",
    "with_train_defaults",
]

#: ``Settings`` fields that are ``TrainConfig`` fields: the training budget of every trial.
BUDGET = ("lr", "epochs", "init_scale")
_DEFAULTS: dict[str, Any] = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
#: Update rule name in the study → ``(TrainConfig.rule, TrainConfig.impl)``.
RULES: dict[str, tuple[str, str]] = {
    "subgradient": ("coupled", "scratch"),
    "proximal": ("proximal", "functional"),
}
L1_RATIO_RANGE = (0.05, 0.95)
#: dtype of subgradient L1 / elastic trials. Weights hovering within ≈ηλ of zero flip sign on a
#: rounding-level difference, and in float32 that chaos moves a trial's validation loss by up to
#: ~30 % between kernels or batch compositions once λ ≳ 1; in float64 every path agrees to
#: ~1e-12, so a trial's value is reproducible.
SUBGRADIENT_DTYPE: Dtype = "float64"
#: l1_ratio of the elastic branch when the sampler is the λ grid.
GRID_L1_RATIO = 0.5


@dataclass(frozen=True)
class SearchPoint:
    """One point of the space: ``lam`` is 0 for none; ``l1_ratio`` is None unless elastic."""

    penalty: str
    rule: str
    impl: str
    lam: float
    l1_ratio: float | None = None

    @classmethod
    def of(
        cls, penalty: str, study_rule: str, lam: float, l1_ratio: float | None = None
    ) -> SearchPoint:
        """The point named by the study's own rule name (``subgradient`` or ``proximal``)."""
        rule, impl = RULES[study_rule]
        return cls(penalty, rule, impl, lam, l1_ratio)

    @property
    def dtype(self) -> Dtype:
        """float64 for the subgradient rule with an L1 part, else ``TrainConfig``'s default."""
        chaotic = self.rule == "coupled" and get_penalty(self.penalty).has_l1
        return SUBGRADIENT_DTYPE if chaotic else cast(Dtype, _DEFAULTS["dtype"])

    @property
    def loop(self) -> str:
        """The single legacy ``loop`` name of (rule, impl): what old run files called it."""
        return loop_name(self.rule, self.impl)

    def config(self, settings: Settings, train_seed: int) -> TrainConfig:
        """The ``TrainConfig`` of this point under the study's budget and train seed.

        A budget setting left unset (None) keeps ``TrainConfig``'s default. The subgradient
        rule of a penalty with an L1 part trains in float64 (``SUBGRADIENT_DTYPE``).
        """
        config = TrainConfig(
            penalty=self.penalty,
            lam=self.lam,
            l1_ratio=_DEFAULTS["l1_ratio"] if self.l1_ratio is None else self.l1_ratio,
            rule=self.rule,
            impl=self.impl,
            seed=train_seed,
            dtype=self.dtype,
        )
        given = {k: getattr(settings, k) for k in BUDGET if getattr(settings, k) is not None}
        return dataclasses.replace(config, **given)

    def row(self) -> dict[str, Any]:
        """Flat columns ``penalty, rule, impl, loop, lam, l1_ratio`` (NaN l1_ratio unless
        elastic; ``loop`` is the legacy single name, kept so old and new run files read alike)."""
        l1 = math.nan if self.l1_ratio is None else self.l1_ratio
        return {
            "penalty": self.penalty,
            "rule": self.rule,
            "impl": self.impl,
            "loop": self.loop,
            "lam": self.lam,
            "l1_ratio": l1,
        }


def with_train_defaults(settings: Settings) -> Settings:
    """``settings`` with each unset budget field (None) set to ``TrainConfig``'s default."""
    unset = {k: _DEFAULTS[k] for k in BUDGET if getattr(settings, k) is None}
    return dataclasses.replace(settings, **unset)


def penalty_order(settings: Settings, study: optuna.Study) -> Settings:
    """``settings`` with its penalties in the order of the study's ``penalty`` categorical.

    Optuna refuses one categorical parameter with its choices in two orders, and ``--penalties``
    is a set: an existing study keeps the order its trials hold, a new one takes the registry's.
    """
    wanted = set(settings.penalties)
    for trial in study.get_trials(deepcopy=False):
        dist = trial.distributions.get("penalty")
        if isinstance(dist, optuna.distributions.CategoricalDistribution):
            if set(dist.choices) == wanted:
                return dataclasses.replace(settings, penalties=tuple(map(str, dist.choices)))
            break
    return dataclasses.replace(settings, penalties=tuple(p for p in PENALTIES if p in wanted))


def rules_for(penalty: str) -> tuple[str, ...]:
    """Update rules searched for ``penalty`` (a choice only where the penalty has an L1 part)."""
    return tuple(RULES) if get_penalty(penalty).has_l1 else ("subgradient",)


def suggest(trial: optuna.trial.BaseTrial, settings: Settings) -> SearchPoint:
    """Draw one point of the conditional space from ``trial``."""
    penalty = str(trial.suggest_categorical("penalty", list(settings.penalties)))
    params: dict[str, Any] = {"penalty": penalty}
    if penalty != "none":
        params["lam"] = trial.suggest_float("lam", *settings.lam_range, log=True)
    if len(rules_for(penalty)) > 1:
        params["rule"] = trial.suggest_categorical("rule", list(RULES))
    if penalty == "elastic":
        params["l1_ratio"] = trial.suggest_float("l1_ratio", *L1_RATIO_RANGE)
    return point_from_params(params)


def point_from_params(params: Mapping[str, Any]) -> SearchPoint:
    """A trial's ``params`` dict → ``SearchPoint`` (inverse of ``suggest``)."""
    penalty = str(params["penalty"])
    l1_ratio = params.get("l1_ratio")
    return SearchPoint.of(
        penalty,
        str(params.get("rule", "subgradient")),
        float(params.get("lam", 0.0)),
        None if l1_ratio is None else float(l1_ratio),
    )


def make_sampler(settings: Settings, worker_index: int = 0) -> optuna.samplers.BaseSampler:
    """The seeded sampler of one worker (worker 0 of a one-worker run is the reference).

    ``grid`` samples its enqueued λ grid first (every sampler serves enqueued trials), then
    falls back to random sampling once the grid is used up.
    """
    seed = derive_seed(settings.seed, "sampler", worker_index) % 2**32
    if settings.sampler == "tpe":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True)
    return optuna.samplers.RandomSampler(seed=seed)


def lam_grid(settings: Settings, points: int) -> list[float]:
    """``points`` log-spaced λ values covering ``--lam-range`` (endpoints included)."""
    low, high = settings.lam_range
    grid = np.geomspace(low, high, points)
    return [float(v) for v in np.clip(grid, low, high)]


def grid_branches(
    settings: Settings, l1_ratios: tuple[float, ...]
) -> list[tuple[str, str, float | None]]:
    """Every (penalty, rule, l1_ratio) branch with λ > 0 of the chosen penalties."""
    out: list[tuple[str, str, float | None]] = []
    for penalty in settings.penalties:
        if penalty == "none":
            continue
        ratios: tuple[float | None, ...] = l1_ratios if penalty == "elastic" else (None,)
        out += [(penalty, rule, r) for rule in rules_for(penalty) for r in ratios]
    return out


def enqueue_grid(study: optuna.Study, settings: Settings) -> int:
    """Enqueue a log-spaced λ grid per penalty and rule, sized to ``--n-trials`` in total.

    Existing points are skipped (``skip_if_exists``), so a rerun adds no duplicates.
    Returns the number of grid points the study was asked to hold.
    """
    branches = grid_branches(settings, (GRID_L1_RATIO,))
    points: list[dict[str, Any]] = [{"penalty": "none"}] if "none" in settings.penalties else []
    if branches:
        per_branch = max(1, (settings.n_trials - len(points)) // len(branches))
        lams = lam_grid(settings, per_branch) if per_branch > 1 else [settings.lam_range[0]]
        for penalty, rule, ratio in branches:
            for lam in lams:
                params: dict[str, Any] = {"penalty": penalty, "lam": lam}
                if len(rules_for(penalty)) > 1:
                    params["rule"] = rule
                if ratio is not None:
                    params["l1_ratio"] = ratio
                points.append(params)
    for params in points:
        study.enqueue_trial(params, skip_if_exists=True)
    return len(points)


def sample_configs(
    k: int, epochs: int | None = None, seed: int = 0, settings: Settings = DEFAULTS
) -> list[TrainConfig]:
    """``k`` configurations drawn at random from the space of ``settings`` (all its penalties).

    The same branches and ranges as ``suggest``: penalty uniform, λ log-uniform in
    ``--lam-range``, an even choice of rule where there is one, l1_ratio uniform in
    ``L1_RATIO_RANGE``. Every configuration gets train seed ``seed`` (one w₀, one batch order),
    as the configurations of one study batch do. Drawn through ``suggest`` itself (Optuna's
    seeded ``RandomSampler`` on an in-memory study), so the benchmarks measure this very space.
    """
    budget = dataclasses.replace(settings, epochs=epochs if epochs is not None else settings.epochs)
    sampler = optuna.samplers.RandomSampler(seed=derive_seed(seed, "sample-configs", k) % 2**32)
    study = optuna.create_study(sampler=sampler)
    return [suggest(study.ask(), budget).config(budget, seed) for _ in range(k)]
