"""``TrainConfig``: one frozen, validated description of a training run.

Two questions are kept apart: the update **rule** (which math: ``wdbench.rules``) and the **impl**
(which code path computes it: ``wdbench.loops``). ``COMBOS`` lists the valid (impl, rule) pairs
and the penalties each applies. Old run files and callers name a single ``loop``; ``LEGACY_LOOPS``
maps each to its (rule, impl), ``split_loop`` converts a name and ``loop_name`` goes back. The
**optimizer** (``wdbench.optimizers``: sgd, momentum, adam) is a third question: ``IMPL_OPTIMIZERS``
lists which (impl, rule) pairs run which optimizers.
"""

from __future__ import annotations

import math
from dataclasses import InitVar, dataclass
from typing import TYPE_CHECKING, Literal

import torch

from wdbench.optimizers import OPTIMIZERS, Optimizer
from wdbench.penalties import PENALTIES
from wdbench.rules import RULES

__all__ = [
    "COMBOS",
    "DTYPES",
    "IMPLS",
    "IMPL_OPTIMIZERS",
    "LEGACY_LOOPS",
    "LOOPS",
    "MODELS",
    "OPTIM_IMPLS",
    "LoopName",
    "TrainConfig",
    "loop_name",
    "split_loop",
]

#: Code paths (``wdbench.loops``) and the rules each computes.
IMPLS: dict[str, tuple[str, ...]] = {
    "scratch": ("coupled",),
    "optim": ("coupled", "decoupled"),
    "concise": ("coupled",),
    "functional": tuple(RULES),
}
#: (impl, rule) → the penalties that path applies under that rule.
COMBOS: dict[tuple[str, str], tuple[str, ...]] = {
    (impl, rule): RULES[rule].penalties for impl, rules in IMPLS.items() for rule in rules
}
COMBOS["concise", "coupled"] = ("none", "l2")  # nn.Linear + torch.optim.SGD(weight_decay)
#: (impl, rule) → the optimizers that path runs: ``optim`` decoupled is ``torch.optim.AdamW`` or,
#: for plain SGD, ``torch.optim.SGD`` (the same update; torch has no SGDW), ``concise`` is the
#: lesson's plain SGD.
IMPL_OPTIMIZERS: dict[tuple[str, str], tuple[str, ...]] = {
    pair: tuple(OPTIMIZERS) for pair in COMBOS
}
IMPL_OPTIMIZERS["optim", "decoupled"] = ("sgd", "adam")
IMPL_OPTIMIZERS["concise", "coupled"] = ("sgd",)
#: The single ``loop`` names of earlier versions (and of old run files) → (rule, impl).
LEGACY_LOOPS: dict[str, tuple[str, str]] = {
    "scratch": ("coupled", "scratch"),
    "optim": ("coupled", "optim"),
    "decoupled": ("decoupled", "functional"),
    "proximal": ("proximal", "functional"),
    "concise": ("coupled", "concise"),
}
#: Legacy loop names and the penalties each applies.
LOOPS: dict[str, tuple[str, ...]] = {
    name: COMBOS[impl, rule] for name, (rule, impl) in LEGACY_LOOPS.items()
}
#: ``torch.optim.SGD`` implementations: torch's default choice, or a forced one.
OPTIM_IMPLS = ("default", "for-loop", "foreach", "fused")
DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "float64": torch.float64}
#: Model families: the lesson's linear model, or a ReLU network (``wdbench.networks``).
MODELS = ("linear", "mlp")

Dtype = Literal["float32", "float64"]


class LoopName(str):
    """``config.loop`` read back: the legacy name, for information. Passed back as ``loop=`` (as
    ``dataclasses.replace`` does with every field) it sets nothing, so ``replace(config,
    rule=...)`` keeps the new rule; to copy a config's path, copy ``rule`` and ``impl``."""

    __slots__ = ()


def split_loop(name: str) -> tuple[str, str]:
    """``(rule, impl)`` of a legacy ``loop`` name (e.g. an old run file's ``loop`` column)."""
    try:
        return LEGACY_LOOPS[name]
    except KeyError:
        raise ValueError(f"loop must be one of {sorted(LEGACY_LOOPS)}, got {name!r}") from None


def loop_name(rule: str, impl: str) -> str:
    """The legacy ``loop`` name of (rule, impl), or ``"<rule>-<impl>"`` for a new pair."""
    for name, pair in LEGACY_LOOPS.items():
        if pair == (rule, impl):
            return name
    return f"{rule}-{impl}"


@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters of one run; invalid values raise ``ValueError`` naming the field.

    ``lam`` is λ of the penalty (see ``wdbench.penalties``); ``lr`` is η. ``seed`` is the train
    seed: it fixes the initial weights (w₀ ~ N(0, init_scale²), b₀ = 0) and the batch order, the
    same in every path. ``rule`` is the update (``wdbench.rules``), ``impl`` the code computing it:

    ==========  =========  ========================  ==========================================
    impl        rule       penalties                 the same update in torch.optim terms
    ==========  =========  ========================  ==========================================
    scratch     coupled    none, l2, l1, elastic     autograd on Σ(ŷ−y)²/2 + pen, then p −= η·g/B
                                                     (or the optimizer's step on g/B)
    optim       coupled    none, l2, l1, elastic     ``SGD([{w, weight_decay=c}, {b}])`` (+ a‖w‖₁
                                                     in the loss): coupled ≡ SGD(weight_decay=λ);
                                                     momentum: SGD(momentum, nesterov); adam: Adam
    optim       decoupled  none, l2                  sgd, adam: ``AdamW([{w, weight_decay=λ},
                                                     {b, weight_decay=0}])``; SGD for plain SGD
    concise     coupled    none, l2                  the lesson's nn.Linear + MSELoss + SGD(wd)
    functional  coupled    none, l2, l1, elastic     analytic ∇ℓ, then ``wdbench.rules`` step
    functional  decoupled  none, l2                  SGDW / AdamW's decay: w −= ηλw outside
    functional  proximal   none, l2, l1, elastic     proximal gradient (ISTA); with momentum or
                                                     Adam the decoupled form of l1 / elastic
    ==========  =========  ========================  ==========================================

    ``optimizer`` is ``"sgd"`` (the lesson's; the default), ``"momentum"`` (heavy ball with
    ``momentum`` μ, or Nesterov with ``nesterov=True``; dampening 0) or ``"adam"`` (``beta1``,
    ``beta2``, ``eps``); the hyperparameters have torch's defaults and are read only by the
    optimizer that uses them (``momentum = 0.9`` is the coefficient ``"momentum"`` runs with).
    With g the gradient the optimizer sees, the rule says where the penalty goes:

    * coupled: g = ∇ℓ + ∇pen(w) (L2 in the gradient, L1 its subgradient a·sign(w)) ≡
      ``torch.optim.SGD(momentum, nesterov, weight_decay=λ)`` /
      ``torch.optim.Adam(weight_decay=λ)``;
    * decoupled (none, l2): w ← w − ηλw at the old w, then the optimizer's step on g = ∇ℓ ≡
      ``torch.optim.AdamW(weight_decay=λ)`` (which decays first), SGDW with momentum;
    * proximal: the optimizer's step on g = ∇ℓ, then w ← S(w, ηa) / (1 + ηc): the decoupled
      form of l1 and elastic (the proximal operator of the whole penalty, a = λρ, c = λ(1−ρ)).

    With plain SGD coupled ≡ decoupled; the bias is never decayed (it takes the optimizer's step
    with its own state and no penalty).

    ``model`` is ``"linear"`` (the lesson's x·w + b) or ``"mlp"``: ``layers`` hidden layers of
    ``hidden`` ReLU units (``wdbench.networks``; both read only by ``"mlp"``), initialized by
    torch's default ``nn.Linear`` rule from ``seed`` (weights scaled by ``init_scale``), trained
    by the rule and optimizer above on its weight matrices (biases: the optimizer's step, no
    penalty). A linear model on a classification problem is the network without hidden layers
    (multinomial logistic regression). A network computes ``rule`` with autograd whatever the
    ``impl`` (``concise``, a different objective, is rejected).

    ``loop`` (not a field) takes a legacy name instead of ``rule``/``impl`` and, when given, sets
    both (``LEGACY_LOOPS``): ``TrainConfig(loop="proximal")`` ≡ ``TrainConfig(rule="proximal",
    impl="functional")``; read back, ``config.loop`` is the legacy name of (rule, impl), or
    ``"<rule>-<impl>"`` for a pair that had none (a ``LoopName``, which sets nothing if passed
    back: ``replace(config, rule=...)`` keeps the new rule). ``optim_impl`` picks
    ``torch.optim.SGD``'s implementation (``optim``).
    """

    penalty: str = "l2"
    lam: float = 0.0
    l1_ratio: float = 0.5
    rule: str = "coupled"
    impl: str = "scratch"
    lr: float = 0.003
    epochs: int = 100
    batch_size: int = 5
    init_scale: float = 1.0
    seed: int = 0
    dtype: Dtype = "float32"
    optim_impl: str = "default"
    optimizer: str = "sgd"
    momentum: float = 0.9
    nesterov: bool = False
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    model: str = "linear"
    hidden: int = 64
    layers: int = 1
    loop: InitVar[str | None] = None
    if not TYPE_CHECKING:  # read back, ``config.loop`` is the legacy name (``loop_name``)
        loop = property(lambda self: LoopName(loop_name(self.rule, self.impl)))

    def __post_init__(self, loop: str | None) -> None:
        if isinstance(loop, str) and not isinstance(loop, LoopName):
            rule, impl = split_loop(loop)
            object.__setattr__(self, "rule", rule)
            object.__setattr__(self, "impl", impl)
        if self.penalty not in PENALTIES:
            raise ValueError(f"penalty must be one of {sorted(PENALTIES)}, got {self.penalty!r}")
        if self.rule not in RULES:
            raise ValueError(f"rule must be one of {sorted(RULES)}, got {self.rule!r}")
        if self.impl not in IMPLS:
            raise ValueError(f"impl must be one of {sorted(IMPLS)}, got {self.impl!r}")
        if self.rule not in IMPLS[self.impl]:
            raise ValueError(
                f"impl {self.impl!r} cannot compute rule {self.rule!r} "
                f"(it computes {', '.join(IMPLS[self.impl])})"
            )
        allowed = COMBOS[self.impl, self.rule]
        if self.penalty not in allowed:
            raise ValueError(
                f"penalty {self.penalty!r} cannot be applied by rule {self.rule!r} with impl "
                f"{self.impl!r} (it takes {', '.join(allowed)})"
            )
        _check(self.lam, "lam", lambda v: v >= 0, "a finite number >= 0")
        _check(self.l1_ratio, "l1_ratio", lambda v: 0 <= v <= 1, "in [0, 1]")
        _check(self.lr, "lr", lambda v: v > 0, "a finite number > 0")
        _check(self.init_scale, "init_scale", lambda v: v >= 0, "a finite number >= 0")
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {self.dtype!r}")
        if self.optim_impl not in OPTIM_IMPLS:
            raise ValueError(f"optim_impl must be one of {OPTIM_IMPLS}, got {self.optim_impl!r}")
        self._check_optimizer()
        self._check_model()

    def _check_model(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {list(MODELS)}, got {self.model!r}")
        for name in ("hidden", "layers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if self.model == "mlp" and self.impl == "concise":
            raise ValueError(
                "impl 'concise' trains the lesson's linear model only, not model 'mlp'"
            )

    def _check_optimizer(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(
                f"optimizer must be one of {sorted(OPTIMIZERS)}, got {self.optimizer!r}"
            )
        runs = IMPL_OPTIMIZERS[self.impl, self.rule]
        if self.optimizer not in runs:
            raise ValueError(
                f"impl {self.impl!r} with rule {self.rule!r} cannot run optimizer "
                f"{self.optimizer!r} (it runs {', '.join(runs)})"
            )
        _check(self.momentum, "momentum", lambda v: 0 <= v < 1, "in [0, 1)")
        _check(self.beta1, "beta1", lambda v: 0 <= v < 1, "in [0, 1)")
        _check(self.beta2, "beta2", lambda v: 0 <= v < 1, "in [0, 1)")
        _check(self.eps, "eps", lambda v: v >= 0, "a finite number >= 0")
        if not isinstance(self.nesterov, bool):
            raise ValueError(f"nesterov must be True or False, got {self.nesterov!r}")
        if self.nesterov and (self.optimizer != "momentum" or self.momentum == 0):
            raise ValueError("nesterov=True needs optimizer 'momentum' with momentum > 0")

    def optimizer_settings(self) -> Optimizer:
        """The configured optimizer (``wdbench.optimizers``)."""
        return Optimizer(
            self.optimizer, self.momentum, self.nesterov, self.beta1, self.beta2, self.eps
        )

    @property
    def torch_dtype(self) -> torch.dtype:
        return DTYPES[self.dtype]


def _check(value: object, name: str, ok: object, what: str) -> None:
    valid = (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and ok(value)  # type: ignore[operator]
    )
    if not valid:
        raise ValueError(f"{name} must be {what}, got {value!r}")
