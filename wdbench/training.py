"""``train``: one configuration, one code path, one problem."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from wdbench.config import TrainConfig
from wdbench.loops import make_loop
from wdbench.losses import half_mse
from wdbench.networks import NetworkRun, uses_network
from wdbench.order import batch_order, init_params
from wdbench.problems import Problem
from wdbench.result import TrainResult, weight_stats

__all__ = ["SPLITS", "check_batch_size", "curve_splits", "resolve_device", "train"]

SPLITS = ("train", "val", "test")


def curve_splits(curves: bool | Sequence[str]) -> tuple[str, ...]:
    """The splits whose loss a population records after every epoch: all ``SPLITS`` for
    ``True``, none for ``False``, else the ones named (in ``SPLITS`` order)."""
    if isinstance(curves, bool):
        return SPLITS if curves else ()
    unknown = sorted(set(curves) - set(SPLITS))
    if unknown:
        raise ValueError(f"curves names splits {unknown}; the splits are {list(SPLITS)}")
    return tuple(s for s in SPLITS if s in curves)


def resolve_device(device: str | torch.device = "cpu") -> torch.device:
    """``"auto"`` → CUDA when available, else CPU; asking for absent CUDA is a ``ValueError``."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but CUDA is not available")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be cpu, cuda or auto, got {str(device)!r}")
    return dev


def check_batch_size(batch_size: int, n_train: int) -> None:
    if batch_size > n_train:
        raise ValueError(
            f"batch_size ({batch_size}) is larger than the training set ({n_train} rows)"
        )


def train(
    problem: Problem,
    config: TrainConfig,
    device: str | torch.device = "cpu",
    curves: bool = True,
    b0: float | None = None,
) -> TrainResult:
    """Train one configuration; see ``wdbench.rules`` for the rules, ``wdbench.loops`` for the
    code path (``config.impl``) computing them.

    w₀ and the batch order come from ``config.seed`` (identical in every loop); b₀ = 0 except for
    ``concise`` (the lesson's random bias start) unless ``b0`` fixes it. ``curves`` records the
    three losses after every epoch. A non-finite parameter stops the run with status "diverged".
    A network (``config.model == "mlp"``, or any model on a classification problem) is trained by
    ``wdbench.networks.NetworkRun``, from the same batch order.
    """
    prob = problem.to(resolve_device(device), config.torch_dtype)
    check_batch_size(config.batch_size, prob.n_train)
    if uses_network(config.model, prob.task):
        return _train_network(prob, config, curves)
    w0, b_random = init_params(prob.dim, config.init_scale, config.seed)
    b_start = b_random if config.impl == "concise" else torch.zeros(1, dtype=torch.float64)
    if b0 is not None:
        b_start = torch.tensor([float(b0)], dtype=torch.float64)
    order = batch_order(prob.n_train, config.epochs, config.seed)
    w0, b_start = (t.to(prob.device, prob.dtype) for t in (w0, b_start))
    loop = make_loop(prob, config, w0, b_start, order)
    history: dict[str, list[float]] = {s: [] for s in SPLITS}
    status, epochs_run = "ok", 0
    for epoch in range(config.epochs):
        loop.run_epoch(epoch)
        epochs_run = epoch + 1
        w, b = loop.params()
        if not bool(torch.isfinite(w).all() and torch.isfinite(b).all()):
            status = "diverged"
            break
        if curves:
            for split, loss in _losses(prob, w, b).items():
                history[split].append(loss)
    w, b = loop.params()
    final = _losses(prob, w, b)
    norm, zeros = weight_stats(w)
    return TrainResult(
        config=config,
        w=w.cpu().clone(),
        b=float(b.item()),
        train_loss=final["train"],
        val_loss=final["val"],
        test_loss=final["test"],
        w_norm=float(norm),
        zero_fraction=float(zeros),
        status=status,
        epochs_run=epochs_run,
        curves=history if curves else None,
    )


def _train_network(prob: Problem, config: TrainConfig, curves: bool) -> TrainResult:
    """``train`` for a network: the same epochs, divergence check and curves as the linear
    loops; losses and accuracies from ``NetworkRun.evaluate``."""
    run = NetworkRun(prob, config, batch_order(prob.n_train, config.epochs, config.seed))
    history: dict[str, list[float]] = {s: [] for s in SPLITS}
    status, epochs_run = "ok", 0
    for epoch in range(config.epochs):
        run.run_epoch(epoch)
        epochs_run = epoch + 1
        if not run.finite():
            status = "diverged"
            break
        if curves:
            for split in SPLITS:
                history[split].append(run.evaluate(*prob.split(split))[0])
    final = {split: run.evaluate(*prob.split(split)) for split in SPLITS}
    weights, biases = run.flat()
    norm, zeros = weight_stats(weights)
    return TrainResult(
        config=config,
        w=weights,
        b=float(biases[-1]) if run.arch.dims[-1] == 1 else math.nan,
        train_loss=final["train"][0],
        val_loss=final["val"][0],
        test_loss=final["test"][0],
        w_norm=float(norm),
        zero_fraction=float(zeros),
        status=status,
        epochs_run=epochs_run,
        curves=history if curves else None,
        train_acc=final["train"][1],
        val_acc=final["val"][1],
        test_acc=final["test"][1],
        biases=biases,
    )


@torch.no_grad()
def _losses(prob: Problem, w: torch.Tensor, b: torch.Tensor) -> dict[str, float]:
    out = {}
    for split in SPLITS:
        X, y = prob.split(split)
        value = float(half_mse(X, y, w, b))
        out[split] = value if math.isfinite(value) else math.inf
    return out
