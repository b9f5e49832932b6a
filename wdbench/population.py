"""``train_population``: K configurations × S problems in one batched computation.

Entry ``[s, k]`` of the result equals ``wdbench.train(problems[s], configs[k])``: the same w₀ and
batch order (from ``configs[k].seed``, the same for every problem), the same update rule
(``scratch``, ``optim`` and ``decoupled`` all compute w ← w − η(∇ℓ + ∇pen(w)); ``proximal``
computes w ← prox_{η·pen}(w − η∇ℓ)). Configurations are split into homogeneous groups (epochs,
batch size, dtype, penalty, rule, and train seed when it is shared by enough of them), each group
into chunks of K that fit in memory, and each chunk is trained by one kernel call
(see ``wdbench._group``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from wdbench._group import LOOP_RULES, EpochHook, Group, GroupOutput
from wdbench._kernels import BACKENDS, cache_block, select_kernel
from wdbench.config import DTYPES, TrainConfig
from wdbench.order import batch_order, init_params
from wdbench.penalties import get_penalty
from wdbench.population_result import PopulationResult, config_columns
from wdbench.problems import Problem
from wdbench.result import weight_stats
from wdbench.training import SPLITS, check_batch_size, resolve_device

__all__ = ["train_population"]

#: A train seed gets a group of its own (one shared batch order, the fast kernels) when at least
#: this many configurations use it, or when its bucket has at most ``FEW_SEEDS`` seeds; the other
#: configurations are pooled into one group with a batch order per configuration.
MIN_SHARED = 8
FEW_SEEDS = 4


@dataclass(frozen=True)
class _Plan:
    """Which configurations (``index``) form one homogeneous group, and how it is trained."""

    index: np.ndarray
    epochs: int
    batch_size: int
    dtype: str
    penalty: str
    rule: str
    shared_order: bool


def train_population(
    problem_or_problems: Problem | Sequence[Problem],
    configs: Sequence[TrainConfig],
    device: str | torch.device = "cpu",
    curves: bool = False,
    keep_weights: bool = True,
    chunk_size: int | None = None,
    backend: str = "auto",
) -> PopulationResult:
    """Train every configuration on every problem: ``[s, k] ≡ train(problems[s], configs[k])``.

    ``curves`` records the three losses after every epoch (costly at large K).
    ``keep_weights=False`` drops the final ``w`` (``[S, K, d]``) to save memory. ``chunk_size``
    bounds how many configurations one kernel call carries (``None``: picked from the problem
    size and the free memory of the device). ``backend`` is ``"auto"`` (the fastest exact kernel
    for each group) or ``"reference"`` (the plain batched form). The ``concise`` loop optimizes a
    different objective and is rejected.
    """
    problems = _as_problems(problem_or_problems)
    configs = _check_configs(configs)
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if chunk_size is not None and (isinstance(chunk_size, bool) or chunk_size < 1):
        raise ValueError(f"chunk_size must be an integer >= 1, got {chunk_size!r}")
    dev = resolve_device(device)
    columns = config_columns(configs)
    out = _Outputs(problems, configs, columns, keep_weights, curves)
    for plan in _plan(columns):
        check_batch_size(plan.batch_size, problems[0].n_train)
        data = _stack(problems, dev, DTYPES[plan.dtype])
        probe = _make_group(data, plan, plan.index[:1], columns)
        block = cache_block(select_kernel(probe, backend), probe)
        size = chunk_size or _auto_chunk(data, plan, dev, block)
        for start in range(0, len(plan.index), size):
            index = plan.index[start : start + size]
            group = _make_group(data, plan, index, columns)
            hook = out.curve_hook(data, index) if curves else None
            output = select_kernel(group, backend)(group, hook)
            out.store(data, index, output, plan.epochs)
    return out.finish()


def _as_problems(problem_or_problems: Problem | Sequence[Problem]) -> tuple[Problem, ...]:
    problems = (
        (problem_or_problems,)
        if isinstance(problem_or_problems, Problem)
        else tuple(problem_or_problems)
    )
    if not problems:
        raise ValueError("train_population needs at least one problem")
    shapes = {tuple(tuple(p.split(s)[0].shape) for s in SPLITS) for p in problems}
    if len(shapes) != 1:
        raise ValueError(f"all problems must have the same split shapes, got {sorted(shapes)}")
    return problems


def _check_configs(configs: Sequence[TrainConfig]) -> tuple[TrainConfig, ...]:
    configs = tuple(configs)
    if not configs:
        raise ValueError("train_population needs at least one configuration")
    for config in configs:
        if not isinstance(config, TrainConfig):
            raise TypeError(f"configs must be TrainConfig objects, got {type(config).__name__}")
    loops = {config.loop for config in configs} - set(LOOP_RULES)
    if loops:
        raise ValueError(
            f"train_population runs the loops {sorted(LOOP_RULES)}; {sorted(loops)} cannot be "
            "batched ('concise' optimizes a different objective: use wdbench.train)"
        )
    return configs


def _plan(columns: dict[str, np.ndarray]) -> list[_Plan]:
    """Split the configurations into homogeneous groups; rare train seeds are pooled."""
    frame = pd.DataFrame({k: columns[k] for k in ("epochs", "batch_size", "dtype", "penalty")})
    frame["rule"] = pd.Series(columns["loop"]).map(LOOP_RULES)
    frame["seed"] = columns["seed"]
    keys = ["epochs", "batch_size", "dtype", "penalty", "rule"]
    plans: list[_Plan] = []
    for key, part in frame.groupby(keys, sort=True):
        epochs, batch_size, dtype, penalty, rule = (str(v) for v in key)
        base = _Plan(np.empty(0, np.int64), int(epochs), int(batch_size), dtype, penalty, rule,
                     shared_order=True)
        counts = part["seed"].map(part["seed"].value_counts())
        own = (counts >= MIN_SHARED) | (part["seed"].nunique() <= FEW_SEEDS)
        for _, shared in part[own].groupby("seed", sort=True):
            plans.append(dataclasses.replace(base, index=shared.index.to_numpy(np.int64)))
        pooled = part[~own]
        if len(pooled):
            index = pooled.index.to_numpy(np.int64)
            plans.append(dataclasses.replace(base, index=index, shared_order=False))
    return plans


@dataclass(frozen=True, eq=False)
class _Data:
    """The S problems stacked on one device in one dtype: ``X_<split> [S, m, d]``, ``y [S, m]``."""

    splits: dict[str, tuple[torch.Tensor, torch.Tensor]]

    @property
    def train(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.splits["train"]


def _stack(problems: tuple[Problem, ...], device: torch.device, dtype: torch.dtype) -> _Data:
    moved = [p.to(device, dtype) for p in problems]
    splits = {}
    for split in SPLITS:
        X, y = zip(*(p.split(split) for p in moved), strict=True)
        splits[split] = (torch.stack(X), torch.stack(y))
    return _Data(splits)


def _auto_chunk(data: _Data, plan: _Plan, device: torch.device, block: int | None) -> int:
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


def _make_group(
    data: _Data, plan: _Plan, index: np.ndarray, columns: dict[str, np.ndarray]
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
        X=X, y=y, order=orders.to(X.device), w0=w0.to(X.device, X.dtype), lr=lr, lam=lam,
        l1_ratio=l1_ratio, penalty=get_penalty(plan.penalty), rule=plan.rule,
        batch_size=plan.batch_size,
    )


def _column(columns: dict[str, np.ndarray], name: str, index: np.ndarray) -> torch.Tensor:
    """One config field for the chunk, as a ``[K, 1]`` float64 column."""
    return torch.from_numpy(columns[name][index].astype(np.float64)).unsqueeze(1)


@torch.no_grad()
def _losses(data: _Data, w: torch.Tensor, b: torch.Tensor) -> dict[str, torch.Tensor]:
    """Mean half squared error of every split, ``[S, K]`` float64; non-finite → inf.

    ``updates.half_mse`` with the same operations in the same order, done in place on one
    ``[S, K, m]`` buffer per split (at n_test = 1000 the temporaries dominate its cost).
    """
    out = {}
    for split in SPLITS:
        X, y = data.splits[split]
        r = torch.bmm(w, X.mT).add_(b.unsqueeze(-1)).sub_(y.unsqueeze(1))
        loss = (r.square_().mean(-1) / 2).to("cpu", torch.float64)
        out[split] = torch.where(torch.isfinite(loss), loss, math.inf)
    return out


class _Outputs:
    """Preallocated ``[S, K]`` result tensors, filled chunk by chunk."""

    def __init__(
        self,
        problems: tuple[Problem, ...],
        configs: tuple[TrainConfig, ...],
        columns: dict[str, np.ndarray],
        keep_weights: bool,
        curves: bool,
    ) -> None:
        S, K, d = len(problems), len(configs), problems[0].dim
        f64 = torch.float64
        wide = f64 if "float64" in set(columns["dtype"].tolist()) else torch.float32
        self.configs, self.columns = configs, columns
        self.w = torch.full((S, K, d), math.nan, dtype=wide) if keep_weights else None
        self.scalars = {
            name: torch.full((S, K), math.nan, dtype=f64)
            for name in ("b", "train_loss", "val_loss", "test_loss", "w_norm", "zero_fraction")
        }
        self.diverged = torch.zeros(S, K, dtype=torch.bool)
        self.epochs_run = torch.zeros(S, K, dtype=torch.int64)
        max_epochs = int(columns["epochs"].max())
        self.curves = (
            {s: torch.full((S, K, max_epochs), math.nan, dtype=f64) for s in SPLITS}
            if curves else None
        )

    def curve_hook(self, data: _Data, index: np.ndarray) -> EpochHook:
        idx = torch.as_tensor(index.copy())
        assert self.curves is not None
        curves = self.curves

        def hook(epoch: int, w: torch.Tensor, b: torch.Tensor) -> None:
            for split, loss in _losses(data, w, b.squeeze(-1)).items():
                curves[split][:, idx, epoch] = loss

        return hook

    def store(self, data: _Data, index: np.ndarray, output: GroupOutput, epochs: int) -> None:
        idx = torch.as_tensor(index.copy())
        w, b = output.w, output.b
        bad = output.bad_epoch.cpu()
        final_bad = ~(torch.isfinite(w).all(-1) & torch.isfinite(b)).cpu()
        diverged = (bad > 0) | final_bad
        norm, zeros = weight_stats(w)
        losses = {f"{split}_loss": loss for split, loss in _losses(data, w, b).items()}
        values = {"b": b, "w_norm": norm, "zero_fraction": zeros, **losses}
        for name, value in values.items():
            self.scalars[name][:, idx] = value.to("cpu", torch.float64)
        self.diverged[:, idx] = diverged
        self.epochs_run[:, idx] = torch.where(bad > 0, bad, epochs)
        if self.w is not None:
            self.w[:, idx] = w.to("cpu", self.w.dtype)
        if self.curves is not None:
            self._trim_curves(idx, bad)

    def _trim_curves(self, idx: torch.Tensor, bad: torch.Tensor) -> None:
        """``train`` records no losses from the epoch a run diverges on: blank them."""
        assert self.curves is not None
        epoch = torch.arange(next(iter(self.curves.values())).shape[-1])
        blank = (bad > 0).unsqueeze(-1) & (epoch >= bad.unsqueeze(-1) - 1)
        for curve in self.curves.values():
            curve[:, idx] = curve[:, idx].masked_fill(blank, math.nan)

    def finish(self) -> PopulationResult:
        return PopulationResult(
            configs=self.configs,
            columns=self.columns,
            w=self.w,
            diverged=self.diverged,
            epochs_run=self.epochs_run,
            curves=self.curves,
            **self.scalars,
        )
