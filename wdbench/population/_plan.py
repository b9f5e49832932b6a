"""Planning a population run: homogeneous groups, chunk sizes, and a chunk's tensors.

Configurations are split into groups that share epochs, batch size, dtype, penalty, update rule,
optimizer with its hyperparameters and — when enough of them use it — the train seed (one batch
order); the configurations of rare seeds are pooled into one group with a batch order each. A
group is cut into chunks that fit in memory (and, on the CPU, in cache), and each chunk becomes a
``Group`` (``_group``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import torch

from wdbench.optimizers import Optimizer
from wdbench.order import batch_order, init_params
from wdbench.penalties import get_penalty
from wdbench.population._group import Group
from wdbench.problems import Problem
from wdbench.rules import get_rule
from wdbench.training import SPLITS

__all__ = [
    "FEW_SEEDS",
    "MIN_SHARED",
    "Data",
    "GroupPlan",
    "auto_chunk",
    "make_group",
    "plan_groups",
    "stack",
]

#: A train seed gets a group of its own (one shared batch order, the fast kernels) when at least
#: this many configurations use it, or when its bucket has at most ``FEW_SEEDS`` seeds; the other
#: configurations are pooled into one group with a batch order per configuration.
MIN_SHARED = 8
FEW_SEEDS = 4


@dataclass(frozen=True)
class GroupPlan:
    """Which configurations (``index``) form one homogeneous group, and how it is trained."""

    index: np.ndarray
    epochs: int
    batch_size: int
    dtype: str
    penalty: str
    rule: str
    shared_order: bool
    optimizer: Optimizer = field(default_factory=Optimizer)


#: The optimizer's fields a group shares (``TrainConfig`` field names, in ``Optimizer`` order).
OPTIMIZER_KEYS = ["optimizer", "momentum", "nesterov", "beta1", "beta2", "eps"]


def plan_groups(columns: dict[str, np.ndarray]) -> list[GroupPlan]:
    """Split the configurations into homogeneous groups; rare train seeds are pooled.

    Groups come in the order of their keys (epochs, batch size, dtype, penalty, rule, optimizer
    fields), a group's shared seeds in increasing order, then its pool; every index in the order
    of the configurations."""
    keys = ["epochs", "batch_size", "dtype", "penalty", "rule"]
    values = [columns[k].tolist() for k in (*keys, *OPTIMIZER_KEYS)]
    seeds = columns["seed"].tolist()
    buckets: dict[tuple[object, ...], list[int]] = {}
    for i, key in enumerate(zip(*values, strict=True)):
        buckets.setdefault(key, []).append(i)
    plans: list[GroupPlan] = []
    for key in sorted(buckets):
        members = buckets[key]
        epochs, batch_size, dtype, penalty, rule = key[: len(keys)]
        momentum, nesterov, beta1, beta2, eps = key[len(keys) + 1 :]
        optimizer = Optimizer(
            str(key[len(keys)]),
            float(momentum),  # type: ignore[arg-type]
            bool(nesterov),
            float(beta1),  # type: ignore[arg-type]
            float(beta2),  # type: ignore[arg-type]
            float(eps),  # type: ignore[arg-type]
        )
        base = GroupPlan(
            np.empty(0, np.int64),
            int(epochs),  # type: ignore[call-overload]
            int(batch_size),  # type: ignore[call-overload]
            str(dtype),
            str(penalty),
            str(rule),
            shared_order=True,
            optimizer=optimizer,
        )
        by_seed: dict[int, list[int]] = {}
        for i in members:
            by_seed.setdefault(seeds[i], []).append(i)
        few = len(by_seed) <= FEW_SEEDS
        pooled: list[int] = []
        for seed in sorted(by_seed):
            part = by_seed[seed]
            if few or len(part) >= MIN_SHARED:
                plans.append(dataclasses.replace(base, index=np.asarray(part, np.int64)))
            else:
                pooled.extend(part)
        if pooled:
            index = np.sort(np.asarray(pooled, np.int64))
            plans.append(dataclasses.replace(base, index=index, shared_order=False))
    return plans


@dataclass(frozen=True, eq=False)
class Data:
    """The S problems stacked on one device in one dtype: ``X_<split> [S, m, d]``, ``y [S, m]``."""

    splits: dict[str, tuple[torch.Tensor, torch.Tensor]]

    @property
    def train(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.splits["train"]


def stack(problems: tuple[Problem, ...], device: torch.device, dtype: torch.dtype) -> Data:
    moved = [p.to(device, dtype) for p in problems]
    splits = {}
    for split in SPLITS:
        X, y = zip(*(p.split(split) for p in moved), strict=True)
        splits[split] = (torch.stack(X), torch.stack(y))
    return Data(splits)


def auto_chunk(data: Data, plan: GroupPlan, device: torch.device, block: int | None) -> int:
    """Configurations per kernel call: a quarter of the free memory (at most 2 GiB) divided by
    the bytes one configuration needs (its weight copies, batch rows and loss residuals); on
    the CPU, at most the kernel's cache-friendly ``block``."""
    X, _ = data.train
    S, n, d = (int(v) for v in X.shape)
    itemsize = X.element_size()
    widest = max(int(data.splits[s][0].shape[1]) for s in SPLITS)
    per_config = itemsize * S * (8 * d + 2 * widest)
    if not plan.shared_order:
        per_config += 8 * plan.epochs * n + itemsize * S * 2 * plan.batch_size * d
    size = min(_free_bytes(device) // 4, 2 << 30) // per_config
    if device.type == "cpu" and block is not None:
        size = min(size, block)
    return max(1, size)


def _free_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as f:
            info = dict(line.split(":", 1) for line in f)
        return int(info["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return 4 << 30


def make_group(
    data: Data, plan: GroupPlan, index: np.ndarray, columns: dict[str, np.ndarray]
) -> Group:
    """The chunk ``index`` of a plan as tensors: w₀ = init_params(seed)·init_scale (float64,
    then cast, as ``train`` does), the batch order(s) of the seed(s), and ``[K, 1]`` columns."""
    X, y = data.train
    dim, n = int(X.shape[2]), int(X.shape[1])
    seeds, which = np.unique(columns["seed"][index], return_inverse=True)
    z = torch.stack([init_params(dim, 1.0, int(seed))[0] for seed in seeds])
    w0 = z[torch.from_numpy(which)] * _column(columns, "init_scale", index)
    orders = torch.stack([batch_order(n, plan.epochs, int(seed)) for seed in seeds])
    if not plan.shared_order:
        orders = orders[torch.from_numpy(which)]
    lr, lam, l1_ratio = (
        _column(columns, name, index).to(X.device, X.dtype) for name in ("lr", "lam", "l1_ratio")
    )
    return Group(
        X=X,
        y=y,
        order=orders.to(X.device),
        w0=w0.to(X.device, X.dtype),
        lr=lr,
        lam=lam,
        l1_ratio=l1_ratio,
        penalty=get_penalty(plan.penalty),
        rule=get_rule(plan.rule),
        batch_size=plan.batch_size,
        optimizer=plan.optimizer,
    )


def _column(columns: dict[str, np.ndarray], name: str, index: np.ndarray) -> torch.Tensor:
    """One config field for the chunk, as a ``[K, 1]`` float64 column."""
    return torch.from_numpy(columns[name][index].astype(np.float64)).unsqueeze(1)
