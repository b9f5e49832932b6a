"""``train_population``: K configurations × S problems in one batched computation.

Entry ``[s, k]`` of the result equals ``wdbench.train(problems[s], configs[k])``: the same w₀ and
batch order (from ``configs[k].seed``, the same for every problem), the same update rule
(``configs[k].rule``, ``wdbench.rules``; the population computes the rule's math whatever the
``impl``, which only says how the single run gets its gradients). Configurations are split into
homogeneous groups (epochs, batch size, dtype, penalty, rule, and train seed when it is shared by
enough of them), each group into chunks of K that fit in memory (``_plan``), and each chunk is
trained by one kernel call (``_kernels`` picks it; ``_group`` defines the contract).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import partial

import numpy as np
import torch

from wdbench.config import DTYPES, TrainConfig
from wdbench.networks import uses_network
from wdbench.networks._population import train_networks
from wdbench.population._group import Group, GroupOutput
from wdbench.population._kernels import BACKENDS, cache_block, select_kernel
from wdbench.population._plan import Data, GroupPlan, auto_chunk, make_group, plan_groups, stack
from wdbench.population._result import PopulationResult, config_columns
from wdbench.population._rowspace import rowspace_applies
from wdbench.population.native import train_group_native
from wdbench.population.triton import triton_applies
from wdbench.problems import Problem
from wdbench.result import weight_stats
from wdbench.threads import cpu_threads, one_op_thread, planned_workers, run_parallel
from wdbench.training import SPLITS, check_batch_size, curve_splits, resolve_device

__all__ = ["train_population"]

#: Fewest configurations a block of the loss computation carries on the thread pool.
LOSS_BLOCK = 256


def train_population(
    problem_or_problems: Problem | Sequence[Problem],
    configs: Sequence[TrainConfig],
    device: str | torch.device = "cpu",
    curves: bool | Sequence[str] = False,
    keep_weights: bool = True,
    chunk_size: int | None = None,
    backend: str = "auto",
) -> PopulationResult:
    """Train every configuration on every problem: ``[s, k] ≡ train(problems[s], configs[k])``.

    ``curves`` records the three losses after every epoch (costly at large K), or those of the
    splits it names: ``("train", "val")`` leaves out the test set's, most of the cost at the
    lesson's 1000 test rows.
    ``keep_weights=False`` drops the final ``w`` (``[S, K, d]``) to save memory. ``chunk_size``
    bounds how many configurations one kernel call carries (``None``: picked from the problem
    size, the free memory of the device and, on the CPU, the cache). ``backend`` is ``"auto"``
    (the fastest exact kernel for each group), ``"reference"`` (the plain batched form) or
    ``"torch"`` (the torch kernels only) or ``"triton"`` (the fused kernel of
    ``wdbench.population.triton`` wherever it applies). On the CPU the work follows the thread
    policy of ``wdbench.threads`` (independent chunks on a pool, torch at one intra-op thread).
    The ``concise`` impl optimizes a different objective and is rejected. Networks
    (``model="mlp"``, or a classification problem) are trained by ``wdbench.networks``, one
    architecture per call: ``"auto"`` runs the compiled kernel of ``wdbench.networks`` where it
    applies (the stacked torch kernel elsewhere), ``"torch"`` the stacked torch kernel and
    ``"reference"`` the ``torch.func.vmap`` form.
    """
    problems = _as_problems(problem_or_problems)
    configs = _check_configs(configs)
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if chunk_size is not None and (isinstance(chunk_size, bool) or chunk_size < 1):
        raise ValueError(f"chunk_size must be an integer >= 1, got {chunk_size!r}")
    dev = resolve_device(device)
    splits = curve_splits(curves)
    networks = {uses_network(c.model, problems[0].task) for c in configs}
    if networks == {True}:
        if backend == "triton":
            raise ValueError("backend 'triton' trains linear models only, not networks")
        gradients = {"reference": "vmap", "torch": "stacked"}.get(backend, "auto")
        with one_op_thread():
            return train_networks(
                problems, configs, dev, splits, keep_weights, chunk_size, gradients
            )
    if len(networks) > 1:
        raise ValueError("train_population trains linear models and networks in separate calls")
    with one_op_thread():
        return _train(problems, configs, dev, splits, keep_weights, chunk_size, backend)


def _train(
    problems: tuple[Problem, ...],
    configs: tuple[TrainConfig, ...],
    dev: torch.device,
    curves: tuple[str, ...],
    keep_weights: bool,
    chunk_size: int | None,
    backend: str,
) -> PopulationResult:
    columns = config_columns(configs)
    out = _Outputs(problems, configs, columns, keep_weights, curves)
    stacked: dict[torch.dtype, Data] = {}
    units: list[tuple[float, Callable[[], None]]] = []
    alone: list[tuple[float, Callable[[], None]]] = []
    for plan in plan_groups(columns):
        check_batch_size(plan.batch_size, problems[0].n_train)
        dtype = DTYPES[plan.dtype]
        if dtype not in stacked:
            stacked[dtype] = stack(problems, dev, dtype)
        data = stacked[dtype]
        probe = make_group(data, plan, plan.index[:1], columns)
        kernel = select_kernel(probe, backend)
        size = chunk_size or auto_chunk(data, plan, dev, cache_block(kernel, probe))
        if chunk_size is None and kernel is train_group_native:
            size = min(size, _unit_size(len(plan.index)))
        cost = _unit_cost(probe)
        # Triton's interpreter (the CPU's Triton path, for tests) is not for two threads at once
        pooled = dev.type == "cpu" and not triton_applies(probe, forced=backend == "triton")
        for start in range(0, len(plan.index), size):
            index = plan.index[start : start + size]
            task = partial(_train_unit, out, data, plan, index, columns, backend, curves)
            (units if pooled else alone).append((cost * len(index), task))
    # independent units on the pool, the costliest first (each one's own kernel calls, losses
    # and set-up run in its worker)
    units.sort(key=lambda unit: -unit[0])
    run_parallel([task for _, task in units])
    for _, alone_task in alone:
        alone_task()
    return out.finish()


#: Fewest configurations a unit of the compiled kernel carries when a group is split across the
#: pool (its fixed cost — the row space, the batch order, the losses' set-up — stays small).
MIN_UNIT = 256


def _unit_size(K: int) -> int:
    """Configurations per unit of a compiled-kernel group: two units per worker of the batch
    (whole groups and units of other groups fill the gaps), at least ``MIN_UNIT``."""
    return max(MIN_UNIT, math.ceil(K / (2 * planned_workers())))


def _unit_cost(probe: Group) -> float:
    """A configuration's relative cost in ``probe``'s group: the width of the space it runs in
    (the row space's n, or d) × bytes per value (× 3 with optimizer state)."""
    n, d = int(probe.X.shape[1]), int(probe.X.shape[2])
    width = n if rowspace_applies(probe) and not probe.optimizer.stateful else d
    return width * probe.X.element_size() * (3 if probe.optimizer.stateful else 1)


def _train_unit(
    out: _Outputs,
    data: Data,
    plan: GroupPlan,
    index: np.ndarray,
    columns: dict[str, np.ndarray],
    backend: str,
    curves: tuple[str, ...],
) -> None:
    """Train the configurations ``index`` of ``plan`` and store their results in ``out``."""
    group = make_group(data, plan, index, columns)
    hook = out.curve_hook(data, index, plan.epochs) if curves else None
    output = select_kernel(group, backend)(group, hook)
    if hook is not None:
        hook.flush()
    out.store(data, index, output, plan.epochs)


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
    if any(config.impl == "concise" for config in configs):
        raise ValueError(
            "train_population cannot batch impl 'concise' (it optimizes a different objective: "
            "use wdbench.train)"
        )
    return configs


@torch.no_grad()
def _losses(
    data: Data, w: torch.Tensor, b: torch.Tensor, splits: tuple[str, ...] = SPLITS
) -> dict[str, torch.Tensor]:
    """Mean half squared error of every split, ``[S, K]`` float64; non-finite → inf.

    ``rules.half_mse`` with the same operations in the same order, done in place on one
    ``[S, K, m]`` buffer per split (at n_test = 1000 the temporaries dominate its cost); blocks
    of configurations run on the thread pool (``wdbench.threads``).
    """
    if _in_one_block(w):
        return _block_losses(data, w, b, splits)
    size = max(LOSS_BLOCK, math.ceil(int(w.shape[1]) / (2 * cpu_threads())))
    parts = run_parallel(
        [
            partial(_block_losses, data, w[:, k : k + size], b[:, k : k + size], splits)
            for k in range(0, int(w.shape[1]), size)
        ]
    )
    return {split: torch.cat([part[split] for part in parts], dim=1) for split in splits}


def _in_one_block(w: torch.Tensor) -> bool:
    """Whether ``_losses`` computes the losses of ``w [S, K, d]`` in one block."""
    return int(w.shape[1]) < 2 * LOSS_BLOCK or w.device.type != "cpu"


def _block_losses(
    data: Data, w: torch.Tensor, b: torch.Tensor, splits: tuple[str, ...] = SPLITS
) -> dict[str, torch.Tensor]:
    return {
        split: _loss_of(torch.bmm(w, data.splits[split][0].mT), b, data.splits[split][1])
        for split in splits
    }


def _loss_of(products: torch.Tensor, b: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``[S, K]`` losses from the products ``X·w`` ``[S, K, m]`` (overwritten), ``b [S, K]``
    and ``y [S, m]``. Row by row, so the rows of several epochs stacked give each its own."""
    r = products.add_(b.unsqueeze(-1)).sub_(y.unsqueeze(1))
    loss = (r.square_().mean(-1) / 2).to("cpu", torch.float64)
    return torch.where(torch.isfinite(loss), loss, math.inf)


#: Bytes of products ``X·w`` a unit's epoch hook keeps, to finish the losses of every epoch at
#: once after training; past it, each epoch's losses are computed when the epoch ends.
CURVE_COPIES = 64 << 20


class _CurveRecorder:
    """The epoch hook (``EpochHook``) of one unit that records its curves: after each epoch the
    products ``X·w`` of every split (computed as ``_losses`` computes them) and a copy of ``b``;
    ``flush`` finishes the losses of all epochs at once into ``curves`` (``{split: [S, K, E]}``):
    the same numbers with a third of the small torch calls of one loss pass per epoch. Past
    ``CURVE_COPIES`` bytes, or where ``_losses`` splits the configurations into blocks, each
    epoch's losses are computed as it ends."""

    def __init__(
        self, curves: dict[str, torch.Tensor], data: Data, idx: torch.Tensor, epochs: int
    ) -> None:
        self.curves, self.data, self.idx, self.epochs = curves, data, idx, epochs
        self.splits = tuple(curves)
        self.epochs_kept: list[int] = []
        self.b: list[torch.Tensor] = []
        self.products: dict[str, list[torch.Tensor]] = {split: [] for split in self.splits}

    def __call__(self, epoch: int, w: torch.Tensor, b: torch.Tensor) -> None:
        rows = sum(int(self.data.splits[split][0].shape[1]) for split in self.splits)
        kept = w.shape[0] * w.shape[1] * rows * w.element_size() * self.epochs
        if not (_in_one_block(w) and kept <= CURVE_COPIES):
            for split, loss in _losses(self.data, w, b.squeeze(-1), self.splits).items():
                self.curves[split][:, self.idx, epoch] = loss
            return
        self.epochs_kept.append(epoch)
        self.b.append(b.squeeze(-1).clone())
        for split in self.splits:
            self.products[split].append(torch.bmm(w, self.data.splits[split][0].mT))

    def flush(self) -> None:
        """The losses of the epochs kept, into ``curves``."""
        if not self.epochs_kept:
            return
        S, K = self.b[0].shape
        epochs = torch.tensor(self.epochs_kept)
        b = torch.cat(self.b, dim=1)  # [S, E·K], epoch-major
        at = (slice(None), self.idx.unsqueeze(1), epochs.unsqueeze(0))  # [S, K, E]
        for split in self.splits:
            products = torch.cat(self.products[split], dim=1)
            loss = _loss_of(products, b, self.data.splits[split][1])
            self.curves[split][at] = loss.view(S, len(epochs), K).transpose(1, 2)
        self.epochs_kept, self.b = [], []
        self.products = {split: [] for split in self.splits}


class _Outputs:
    """Preallocated ``[S, K]`` result tensors, filled chunk by chunk."""

    def __init__(
        self,
        problems: tuple[Problem, ...],
        configs: tuple[TrainConfig, ...],
        columns: dict[str, np.ndarray],
        keep_weights: bool,
        curves: tuple[str, ...],
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
            {s: torch.full((S, K, max_epochs), math.nan, dtype=f64) for s in curves}
            if curves
            else None
        )

    def curve_hook(self, data: Data, index: np.ndarray, epochs: int) -> _CurveRecorder:
        assert self.curves is not None
        return _CurveRecorder(self.curves, data, torch.as_tensor(index.copy()), epochs)

    def store(self, data: Data, index: np.ndarray, output: GroupOutput, epochs: int) -> None:
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
