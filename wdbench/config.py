"""``TrainConfig``: one frozen, validated description of a training run.

Two questions are kept apart: the update **rule** (which math: ``wdbench.rules``) and the **impl**
(which code path computes it: ``wdbench.loops``). ``COMBOS`` lists the valid (impl, rule) pairs
and the penalties each applies. Old run files and callers name a single ``loop``; ``LEGACY_LOOPS``
maps each to its (rule, impl), ``split_loop`` converts a name and ``loop_name`` goes back.
"""

from __future__ import annotations

import math
from dataclasses import InitVar, dataclass
from typing import TYPE_CHECKING, Literal

import torch

from wdbench.penalties import PENALTIES
from wdbench.rules import RULES

__all__ = [
    "COMBOS",
    "DTYPES",
    "IMPLS",
    "LEGACY_LOOPS",
    "LOOPS",
    "OPTIM_IMPLS",
    "LoopName",
    "TrainConfig",
    "loop_name",
    "split_loop",
]

#: Code paths (``wdbench.loops``) and the rules each computes.
IMPLS: dict[str, tuple[str, ...]] = {
    "scratch": ("coupled",),
    "optim": ("coupled",),
    "concise": ("coupled",),
    "functional": tuple(RULES),
}
#: (impl, rule) → the penalties that path applies under that rule.
COMBOS: dict[tuple[str, str], tuple[str, ...]] = {
    (impl, rule): RULES[rule].penalties for impl, rules in IMPLS.items() for rule in rules
}
COMBOS["concise", "coupled"] = ("none", "l2")  # nn.Linear + torch.optim.SGD(weight_decay)
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
    optim       coupled    none, l2, l1, elastic     ``SGD([{w, weight_decay=c}, {b}])`` (+ a‖w‖₁
                                                     in the loss): coupled ≡ SGD(weight_decay=λ)
    concise     coupled    none, l2                  the lesson's nn.Linear + MSELoss + SGD(wd)
    functional  coupled    none, l2, l1, elastic     analytic ∇ℓ, then ``wdbench.rules`` step
    functional  decoupled  none, l2                  SGDW / AdamW's decay: w −= ηλw outside
    functional  proximal   none, l2, l1, elastic     proximal gradient (ISTA); no torch.optim class
    ==========  =========  ========================  ==========================================

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
