"""``train_networks``: what ``wdbench.train_population`` runs for networks.

Entry ``[s, k]`` equals ``wdbench.train(problems[s], configs[k])``: the same start
(``init_network`` of ``configs[k].seed``), batch order and rule. Configurations are planned into
homogeneous groups as the linear population's (``wdbench.population.plan_groups``: epochs,
batch size, dtype, penalty, rule, optimizer, shared train seed); each group is cut into blocks of
networks trained independently on the thread pool of ``wdbench.threads`` (``_batched``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial

import numpy as np
import torch

from wdbench.config import DTYPES, TrainConfig
from wdbench.losses import Loss, get_loss
from wdbench.networks._architecture import Architecture, Params, init_network
from wdbench.networks._batched import Block, BlockOutput, train_block
from wdbench.networks._native import (
    native_block_applies,
    network_kernel_available,
    train_block_native,
)
from wdbench.order import batch_order
from wdbench.penalties import get_penalty
from wdbench.population._plan import Data, GroupPlan, plan_groups, stack
from wdbench.population._result import ACCURACIES, PopulationResult, config_columns
from wdbench.problems import Problem
from wdbench.result import weight_stats
from wdbench.rules import get_rule
from wdbench.threads import cpu_threads, run_parallel
from wdbench.training import SPLITS, check_batch_size

__all__ = ["BLOCK", "make_block", "plan_blocks", "train_networks"]

#: Most networks one block carries (the digits MLP, K = 1024 on 2 cores: blocks of 128–256 were
#: the fastest, 16 about 2× slower, 512 slower again).
BLOCK = 256


def train_networks(
    problems: tuple[Problem, ...],
    configs: tuple[TrainConfig, ...],
    device: torch.device,
    curves: tuple[str, ...] = (),
    keep_weights: bool = True,
    chunk_size: int | None = None,
    gradients: str = "auto",
) -> PopulationResult:
    """K networks × S problems (see the module docstring); ``curves``: the splits whose loss is
    kept after every epoch (``wdbench.training.curve_splits``); ``chunk_size`` bounds a block and
    ``gradients`` picks ``"auto"`` (the compiled kernel of ``_native`` where it applies, else the
    stacked torch kernel), ``"stacked"`` (the torch kernel) or ``"vmap"`` (the reference
    form)."""
    loss = get_loss(problems[0].task)
    arch = _one_architecture(configs, problems[0].dim, loss.outputs(problems[0].n_classes))
    columns = config_columns(configs)
    out = _Outputs(len(problems), configs, columns, arch, loss.has_accuracy, keep_weights, curves)
    wave = 2 * cpu_threads()  # blocks in memory at once: a wave is built, trained, stored
    for plan, data, chunks in _plan_chunks(problems, columns, device, chunk_size):
        for start in range(0, len(chunks), wave):
            indices = chunks[start : start + wave]
            tasks = [
                partial(
                    _train_chunk, data, plan, index, columns, arch, loss, gradients, bool(curves)
                )
                for index in indices
            ]
            for index, output in zip(indices, run_parallel(tasks), strict=True):
                out.store(index, output, plan.epochs)
    return out.finish()


def plan_blocks(
    problems: tuple[Problem, ...],
    columns: dict[str, np.ndarray],
    arch: Architecture,
    loss: Loss,
    device: torch.device,
    chunk_size: int | None = None,
) -> list[tuple[GroupPlan, list[tuple[np.ndarray, Block]]]]:
    """Every block ``train_networks`` trains, built at once: ``(configuration indices, Block)``
    of at most ``chunk_size`` (default: ``_block_size``) networks, per homogeneous group."""
    return [
        (plan, [(index, make_block(data, plan, index, columns, arch, loss)) for index in chunks])
        for plan, data, chunks in _plan_chunks(problems, columns, device, chunk_size)
    ]


def _plan_chunks(
    problems: tuple[Problem, ...],
    columns: dict[str, np.ndarray],
    device: torch.device,
    chunk_size: int | None,
) -> list[tuple[GroupPlan, Data, list[np.ndarray]]]:
    """Every homogeneous group (``plan_groups``), its stacked data and its chunks of indices."""
    planned = []
    for plan in plan_groups(columns):
        check_batch_size(plan.batch_size, problems[0].n_train)
        data = stack(problems, device, DTYPES[plan.dtype])
        size = _block_size(len(plan.index), chunk_size)
        chunks = [plan.index[i : i + size] for i in range(0, len(plan.index), size)]
        planned.append((plan, data, chunks))
    return planned


def _train_chunk(
    data: Data,
    plan: GroupPlan,
    index: np.ndarray,
    columns: dict[str, np.ndarray],
    arch: Architecture,
    loss: Loss,
    gradients: str,
    curves: bool,
) -> BlockOutput:
    block = make_block(data, plan, index, columns, arch, loss)
    if gradients == "auto":
        if native_block_applies(block) and network_kernel_available():
            return train_block_native(block, curves)
        gradients = "stacked"
    return train_block(block, gradients, curves)


def _one_architecture(configs: Sequence[TrainConfig], features: int, outputs: int) -> Architecture:
    archs = {Architecture.of(c, features, outputs) for c in configs}
    if len(archs) != 1:
        raise ValueError(
            "train_population trains one architecture per call (model, hidden, layers), got "
            + ", ".join(str(a.dims) for a in sorted(archs, key=lambda a: a.dims))
        )
    return archs.pop()


def _block_size(n: int, chunk_size: int | None) -> int:
    """At most ``BLOCK`` (or ``chunk_size``) networks, and at least two blocks per worker when
    there are enough networks."""
    size = chunk_size or min(BLOCK, max(8, math.ceil(n / (2 * cpu_threads()))))
    return max(1, size)


def make_block(
    data: Data,
    plan: GroupPlan,
    index: np.ndarray,
    columns: dict[str, np.ndarray],
    arch: Architecture,
    loss: Loss,
) -> Block:
    """The configurations ``index`` of ``plan`` as a ``Block``: each network's start
    (``init_network`` of its seed, weights × its init_scale), batch order(s) and columns."""
    X, _ = data.train
    seeds = columns["seed"][index]
    scales = columns["init_scale"][index]
    starts = {int(s): init_network(arch, int(s)) for s in np.unique(seeds)}
    params: Params = []
    for layer in range(len(arch.shapes)):
        w = torch.stack(
            [starts[int(s)][layer][0] * float(c) for s, c in zip(seeds, scales, strict=True)]
        )
        b = torch.stack([starts[int(s)][layer][1] for s in seeds])
        params.append((w.to(X.device, X.dtype), b.to(X.device, X.dtype)))
    order = torch.stack(
        [batch_order(int(X.shape[1]), plan.epochs, int(s)) for s in np.unique(seeds)]
    )
    if not plan.shared_order:
        order = torch.stack([batch_order(int(X.shape[1]), plan.epochs, int(s)) for s in seeds])
    lr, lam, l1_ratio = (
        torch.from_numpy(columns[name][index].astype(np.float64)).unsqueeze(1)
        for name in ("lr", "lam", "l1_ratio")
    )
    return Block(
        splits=data.splits,
        order=order.to(X.device),
        params=params,
        lr=lr,
        lam=lam,
        l1_ratio=l1_ratio,
        penalty=get_penalty(plan.penalty),
        rule=get_rule(plan.rule),
        optimizer=plan.optimizer,
        batch_size=plan.batch_size,
        loss=loss,
    )


class _Outputs:
    """Preallocated ``[S, K]`` results, filled block by block."""

    def __init__(
        self,
        S: int,
        configs: tuple[TrainConfig, ...],
        columns: dict[str, np.ndarray],
        arch: Architecture,
        classification: bool,
        keep_weights: bool,
        curves: tuple[str, ...],
    ) -> None:
        K, f64 = len(configs), torch.float64
        wide = f64 if "float64" in set(columns["dtype"].tolist()) else torch.float32
        self.configs, self.columns, self.single_output = configs, columns, arch.dims[-1] == 1
        self.w = torch.full((S, K, arch.n_weights), math.nan, dtype=wide) if keep_weights else None
        self.biases = (
            torch.full((S, K, arch.n_biases), math.nan, dtype=wide) if keep_weights else None
        )
        names = ["b", "w_norm", "zero_fraction", *(f"{s}_loss" for s in SPLITS)]
        if classification:
            names += list(ACCURACIES)
        self.scalars = {name: torch.full((S, K), math.nan, dtype=f64) for name in names}
        self.diverged = torch.zeros(S, K, dtype=torch.bool)
        self.epochs_run = torch.zeros(S, K, dtype=torch.int64)
        max_epochs = int(columns["epochs"].max())
        self.curves = (
            {s: torch.full((S, K, max_epochs), math.nan, dtype=f64) for s in curves}
            if curves
            else None
        )

    def store(self, index: np.ndarray, output: BlockOutput, epochs: int) -> None:
        idx = torch.as_tensor(index.copy())
        weights, biases, bad = output.weights, output.biases, output.bad_epoch.cpu()
        final_bad = ~(torch.isfinite(weights).all(-1) & torch.isfinite(biases).all(-1)).cpu()
        norm, zeros = weight_stats(weights)
        b = biases[..., -1] if self.single_output else torch.full_like(norm, math.nan)
        values = {"b": b, "w_norm": norm, "zero_fraction": zeros}
        values.update({f"{s}_loss": v for s, v in output.losses.items()})
        if output.accuracies is not None:
            values.update({f"{s}_acc": v for s, v in output.accuracies.items()})
        for name, value in values.items():
            self.scalars[name][:, idx] = value.to("cpu", torch.float64)
        self.diverged[:, idx] = (bad > 0) | final_bad
        self.epochs_run[:, idx] = torch.where(bad > 0, bad, epochs)
        if self.w is not None and self.biases is not None:
            self.w[:, idx] = weights.to("cpu", self.w.dtype)
            self.biases[:, idx] = biases.to("cpu", self.biases.dtype)
        if self.curves is not None and output.curves is not None:
            E = next(iter(output.curves.values())).shape[-1]
            blank = (bad > 0).unsqueeze(-1) & (torch.arange(E) >= bad.unsqueeze(-1) - 1)
            for split, curve in self.curves.items():
                curve[:, idx, :E] = output.curves[split].masked_fill(blank, math.nan)

    def finish(self) -> PopulationResult:
        s = self.scalars
        return PopulationResult(
            configs=self.configs,
            columns=self.columns,
            w=self.w,
            b=s["b"],
            train_loss=s["train_loss"],
            val_loss=s["val_loss"],
            test_loss=s["test_loss"],
            w_norm=s["w_norm"],
            zero_fraction=s["zero_fraction"],
            diverged=self.diverged,
            epochs_run=self.epochs_run,
            curves=self.curves,
            train_acc=s.get("train_acc"),
            val_acc=s.get("val_acc"),
            test_acc=s.get("test_acc"),
            biases=self.biases,
        )
