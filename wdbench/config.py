"""``TrainConfig``: one frozen, validated description of a training run."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

from wdbench.penalties import PENALTIES

__all__ = ["DTYPES", "LOOPS", "OPTIM_IMPLS", "TrainConfig"]

#: Update loops and the penalties each can apply.
LOOPS: dict[str, tuple[str, ...]] = {
    "scratch": ("none", "l2", "l1", "elastic"),
    "optim": ("none", "l2", "l1", "elastic"),
    "decoupled": ("none", "l2"),
    "proximal": ("none", "l2", "l1", "elastic"),
    "concise": ("none", "l2"),
}
#: ``torch.optim.SGD`` implementations: torch's default choice, or a forced one.
OPTIM_IMPLS = ("default", "for-loop", "foreach", "fused")
DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "float64": torch.float64}

Dtype = Literal["float32", "float64"]


@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters of one run; invalid values raise ``ValueError`` naming the field.

    ``lam`` is λ of the penalty (see ``wdbench.penalties``); ``lr`` is η. ``seed`` is the train
    seed: it fixes the initial weights (w₀ ~ N(0, init_scale²), b₀ = 0) and the batch order, the
    same in every loop. ``optim_impl`` picks ``torch.optim.SGD``'s implementation (``optim`` loop).
    """

    penalty: str = "l2"
    lam: float = 0.0
    l1_ratio: float = 0.5
    loop: str = "scratch"
    lr: float = 0.003
    epochs: int = 100
    batch_size: int = 5
    init_scale: float = 1.0
    seed: int = 0
    dtype: Dtype = "float32"
    optim_impl: str = "default"

    def __post_init__(self) -> None:
        if self.penalty not in PENALTIES:
            raise ValueError(f"penalty must be one of {sorted(PENALTIES)}, got {self.penalty!r}")
        if self.loop not in LOOPS:
            raise ValueError(f"loop must be one of {sorted(LOOPS)}, got {self.loop!r}")
        if self.penalty not in LOOPS[self.loop]:
            raise ValueError(
                f"penalty {self.penalty!r} cannot be applied by loop {self.loop!r} "
                f"(it takes {', '.join(LOOPS[self.loop])})"
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
