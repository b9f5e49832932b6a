"""The search space in Optuna terms, the samplers, and the map from a trial to a ``TrainConfig``.

Conditional space::

    optimizer categorical over --optimizers         (only when it is not plain SGD alone)
    lr        log-uniform in --lr-range             (only with --lr-range; else --lr)
    penalty   categorical over --penalties
    lam       log-uniform in --lam-range            (penalty ≠ none; λ = 0 for none)
    rule      subgradient | proximal                (l1, elastic; the --decay choices: coupled →
                                                    subgradient = coupled/scratch, decoupled →
                                                    proximal = proximal/functional)
    decay     coupled | decoupled                   (l2 with momentum or adam; the --decay
                                                    choices: coupled/scratch | decoupled/functional)
    l1_ratio  uniform in [0.05, 0.95]               (elastic)

none and l2 with plain SGD train with the lesson's rule and code path (coupled, scratch): for
plain SGD coupled and decoupled L2 are one update, searched once. A parameter with a single
choice is not asked, so the default study (plain SGD, a fixed lr) is the space it always was.
Subgradient L1 and elastic train in float64 (``SUBGRADIENT_DTYPE``): in float32 they are
chaotic. TPE runs multivariate with ``group=True`` so it models each branch of the conditional
space jointly
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
from studies.defaults import problem_default
from studies.names import DECAYS, OPTIMIZERS, PENALTIES
from wdbench import TrainConfig, get_penalty
from wdbench.config import Dtype, loop_name
from wdbench.seeding import derive_seed

__all__ = [
    "BUDGET",
    "L1_RATIO_RANGE",
    "MODEL",
    "POINT_COLUMNS",
    "RULES",
    "SUBGRADIENT_DTYPE",
    "SearchPoint",
    "axis_points",
    "decay_of",
    "enqueue_grid",
    "grid_branches",
    "lam_grid",
    "lattice",
    "lr_grid",
    "make_sampler",
    "params_of",
    "penalty_order",
    "point_from_params",
    "rules_for",
    "sample_configs",
    "suggest",
    "with_train_defaults",
]

#: The columns of one configuration (``SearchPoint.row``) in every exported table.
POINT_COLUMNS = (
    "penalty",
    "rule",
    "impl",
    "loop",
    "optimizer",
    "decay",
    "lr",
    "lam",
    "l1_ratio",
)
#: ``Settings`` fields that are ``TrainConfig`` fields: the training budget of every trial.
BUDGET = ("lr", "epochs", "init_scale", "batch_size")
#: ``Settings`` fields that are ``TrainConfig`` fields: the model every trial trains.
MODEL = ("model", "hidden", "layers")
_DEFAULTS: dict[str, Any] = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
#: Update rule name in the study → ``(TrainConfig.rule, TrainConfig.impl)``.
RULES: dict[str, tuple[str, str]] = {
    "subgradient": ("coupled", "scratch"),
    "proximal": ("proximal", "functional"),
    "decoupled": ("decoupled", "functional"),
}
#: The study rule of each --decay choice: for penalties with an L1 part, and for l2.
L1_RULES = {"coupled": "subgradient", "decoupled": "proximal"}
L2_RULES = {"coupled": "subgradient", "decoupled": "decoupled"}
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
    optimizer: str = "sgd"
    lr: float | None = None

    @classmethod
    def of(
        cls,
        penalty: str,
        study_rule: str,
        lam: float,
        l1_ratio: float | None = None,
        optimizer: str = "sgd",
        lr: float | None = None,
    ) -> SearchPoint:
        """The point named by the study's own rule name (``RULES``); ``lr`` None: the study's."""
        rule, impl = RULES[study_rule]
        return cls(penalty, rule, impl, lam, l1_ratio, optimizer, lr)

    @property
    def decay(self) -> str:
        """``coupled`` or ``decoupled``: where the penalty goes (``decay_of``)."""
        return decay_of(self.rule)

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
        given = {
            k: getattr(settings, k) for k in (*BUDGET, *MODEL) if getattr(settings, k) is not None
        }
        if self.lr is not None:
            given["lr"] = self.lr
        return TrainConfig(
            penalty=self.penalty,
            lam=self.lam,
            l1_ratio=_DEFAULTS["l1_ratio"] if self.l1_ratio is None else self.l1_ratio,
            rule=self.rule,
            impl=self.impl,
            seed=train_seed,
            dtype=self.dtype,
            optimizer=self.optimizer,
            **given,
        )

    def row(self) -> dict[str, Any]:
        """Flat columns ``POINT_COLUMNS``, in that order (NaN l1_ratio unless elastic, NaN lr
        when it is the study's fixed one; ``loop`` is the legacy single name, kept so old and new
        run files read alike)."""
        l1 = math.nan if self.l1_ratio is None else self.l1_ratio
        return {
            "penalty": self.penalty,
            "rule": self.rule,
            "impl": self.impl,
            "loop": self.loop,
            "optimizer": self.optimizer,
            "decay": self.decay,
            "lr": math.nan if self.lr is None else self.lr,
            "lam": self.lam,
            "l1_ratio": l1,
        }


def decay_of(rule: str) -> str:
    """``coupled`` for the coupled rule; ``decoupled`` for decoupled and proximal (the
    decoupled form of l1 and elastic)."""
    return "coupled" if rule == "coupled" else "decoupled"


def with_train_defaults(settings: Settings) -> Settings:
    """``settings`` with each unset budget field (None) set to the problem's study default
    (``studies.defaults``) or ``TrainConfig``'s, and for ``--model mlp`` unset ``hidden`` and
    ``layers`` set to ``TrainConfig``'s."""
    unset: dict[str, Any] = {
        k: _DEFAULTS[k] if (value := problem_default(settings.problem, k)) is None else value
        for k in BUDGET
        if getattr(settings, k) is None
    }
    if settings.model == "mlp":
        unset.update(
            {k: _DEFAULTS[k] for k in ("hidden", "layers") if getattr(settings, k) is None}
        )
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


def rules_for(
    penalty: str, optimizer: str = "sgd", decay: tuple[str, ...] = DECAYS
) -> tuple[str, ...]:
    """Study rules searched for ``penalty`` under ``optimizer`` and the ``--decay`` choices: a
    choice for penalties with an L1 part (subgradient | proximal) and for l2 with an optimizer
    that keeps state (subgradient | decoupled); none, and l2 with plain SGD, have one update."""
    if get_penalty(penalty).has_l1:
        return tuple(L1_RULES[d] for d in decay)
    if penalty == "l2" and optimizer != "sgd":
        return tuple(L2_RULES[d] for d in decay)
    return ("subgradient",)


def _param(penalty: str) -> str:
    """The Optuna parameter naming the coupling: ``rule`` with an L1 part, else ``decay``."""
    return "rule" if get_penalty(penalty).has_l1 else "decay"


def suggest(trial: optuna.trial.BaseTrial, settings: Settings) -> SearchPoint:
    """Draw one point of the conditional space from ``trial``."""
    params: dict[str, Any] = {}
    if settings.optimizers != ("sgd",):  # registry order: a rerun's order cannot differ
        choices = [o for o in OPTIMIZERS if o in settings.optimizers]
        params["optimizer"] = trial.suggest_categorical("optimizer", choices)
    if settings.lr_range is not None:
        params["lr"] = trial.suggest_float("lr", *settings.lr_range, log=True)
    penalty = str(trial.suggest_categorical("penalty", list(settings.penalties)))
    params["penalty"] = penalty
    if penalty != "none":
        params["lam"] = trial.suggest_float("lam", *settings.lam_range, log=True)
    rules = rules_for(penalty, params.get("optimizer", "sgd"), settings.decay)
    if rules != ("subgradient",):  # a choice, or one that is not the lesson's: recorded
        name = _param(penalty)
        decays = [d for d in DECAYS if d in settings.decay]
        choices = [L1_RULES[d] for d in decays] if name == "rule" else decays
        params[name] = trial.suggest_categorical(name, choices)
    if penalty == "elastic":
        params["l1_ratio"] = trial.suggest_float("l1_ratio", *L1_RATIO_RANGE)
    return point_from_params(params)


def point_from_params(params: Mapping[str, Any]) -> SearchPoint:
    """A trial's ``params`` dict → ``SearchPoint`` (inverse of ``suggest``; a missing
    ``optimizer`` is plain SGD, a missing ``lr`` the study's fixed one)."""
    penalty = str(params["penalty"])
    l1_ratio = params.get("l1_ratio")
    rule = str(params.get("rule", "subgradient"))
    if "decay" in params:
        rule = L2_RULES[str(params["decay"])]
    lr = params.get("lr")
    return SearchPoint.of(
        penalty,
        rule,
        float(params.get("lam", 0.0)),
        None if l1_ratio is None else float(l1_ratio),
        str(params.get("optimizer", "sgd")),
        None if lr is None else float(lr),
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


def lr_grid(settings: Settings, points: int) -> list[float | None]:
    """``points`` log-spaced learning rates covering ``--lr-range``; ``[None]`` (the study's
    fixed lr) without it."""
    if settings.lr_range is None:
        return [None]
    low, high = settings.lr_range
    return [float(v) for v in np.clip(np.geomspace(low, high, points), low, high)]


def axis_points(settings: Settings, total: int) -> tuple[int, int]:
    """``(λ points, lr points)`` of a grid of about ``total`` points per branch: a √total ×
    √total lattice when the lr is searched, else ``total`` λ values."""
    if settings.lr_range is None:
        return total, 1
    side = max(2, round(math.sqrt(total)))
    return side, side


#: One branch of the space with λ > 0: (optimizer, penalty, study rule, l1_ratio).
Branch = tuple[str, str, str, float | None]


def grid_branches(settings: Settings, l1_ratios: tuple[float, ...]) -> list[Branch]:
    """Every (optimizer, penalty, rule, l1_ratio) branch with λ > 0 of the chosen options."""
    out: list[Branch] = []
    for optimizer in settings.optimizers:
        for penalty in settings.penalties:
            if penalty == "none":
                continue
            ratios: tuple[float | None, ...] = l1_ratios if penalty == "elastic" else (None,)
            rules = rules_for(penalty, optimizer, settings.decay)
            out += [(optimizer, penalty, rule, r) for rule in rules for r in ratios]
    return out


def params_of(point: SearchPoint, settings: Settings) -> dict[str, Any]:
    """The Optuna ``params`` that ``suggest`` records for ``point`` (``point_from_params``'s
    inverse), e.g. to enqueue it."""
    params: dict[str, Any] = {}
    if settings.optimizers != ("sgd",):
        params["optimizer"] = point.optimizer
    if settings.lr_range is not None:
        params["lr"] = point.lr
    params["penalty"] = point.penalty
    if point.penalty != "none":
        params["lam"] = point.lam
    if rules_for(point.penalty, point.optimizer, settings.decay) != ("subgradient",):
        name = _param(point.penalty)
        params[name] = L1_RULES[point.decay] if name == "rule" else point.decay
    if point.l1_ratio is not None:
        params["l1_ratio"] = point.l1_ratio
    return params


def lattice(settings: Settings, per_branch: int, l1_ratios: tuple[float, ...]) -> list[SearchPoint]:
    """λ (× lr) lattices of about ``per_branch`` points on every branch, plus no decay once per
    optimizer and lr (when none is among the penalties)."""
    n_lam, n_lr = axis_points(settings, per_branch)
    lams = lam_grid(settings, n_lam) if n_lam > 1 else [settings.lam_range[0]]
    lrs = lr_grid(settings, n_lr)
    points: list[SearchPoint] = []
    if "none" in settings.penalties:
        points += [
            SearchPoint.of("none", "subgradient", 0.0, None, optimizer, lr)
            for optimizer in settings.optimizers
            for lr in lrs
        ]
    for optimizer, penalty, rule, ratio in grid_branches(settings, l1_ratios):
        points += [
            SearchPoint.of(penalty, rule, lam, ratio, optimizer, lr) for lr in lrs for lam in lams
        ]
    return points


def enqueue_grid(study: optuna.Study, settings: Settings) -> int:
    """Enqueue a log-spaced λ grid (× lr with ``--lr-range``) per branch, sized to
    ``--n-trials`` in total.

    Existing points are skipped (``skip_if_exists``), so a rerun adds no duplicates.
    Returns the number of grid points the study was asked to hold.
    """
    branches = grid_branches(settings, (GRID_L1_RATIO,))
    n_none = len(settings.optimizers) if "none" in settings.penalties else 0
    per_branch = max(1, (settings.n_trials - n_none) // max(1, len(branches)))
    points = lattice(settings, per_branch, (GRID_L1_RATIO,))
    for point in points:
        study.enqueue_trial(params_of(point, settings), skip_if_exists=True)
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
