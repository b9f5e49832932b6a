"""Training a block of K networks × S problems at once: stacked parameters ``[S, K, …]``.

Two ways to get every network's batch gradient, one update:

* ``stacked_gradients`` — the forward pass with batched matrix products and a hand-written
  backward: with d = ∂ℓ/∂z of a layer (``Loss.grad`` at the output), ∂ℓ/∂W = dᵀ·h_in,
  ∂ℓ/∂b = Σ_rows d, and d ← (d·W) ⊙ [h_in > 0] one layer down (the kernel).
* ``vmap_gradients`` — ``torch.func.grad`` of ``functional_call(nn.Sequential(…))`` vectorized
  over networks and problems by ``vmap`` (the reference form; slower here, see
  docs/benchmarks.md).

Then, per layer, ``Rule.update_`` on the weight matrix (penalty, decay or proximal step, and the
optimizer's step) and the optimizer's step on the bias, with ``[K, 1, 1]`` / ``[K, 1]`` factors:
the arithmetic of ``NetworkRun``. Rows never mix, so a diverging network only fills its own
entries with non-finite values.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from wdbench.losses import Loss, accuracy
from wdbench.networks._architecture import Params, flatten
from wdbench.networks._forward import forward
from wdbench.optimizers import Optimizer
from wdbench.order import batches
from wdbench.penalties import Penalty
from wdbench.population._group import DivergenceLog
from wdbench.rules import Factors, Rule

__all__ = ["GRADIENTS", "Block", "BlockOutput", "BlockTrainer", "shared_forward", "train_block"]

#: ``(params [S, K, …], X_b [S, 1 or K, B, d], y_b [S, 1 or K, B]) → [(∂ℓ/∂W, ∂ℓ/∂b)]``.
Gradients = Callable[[Params, torch.Tensor, torch.Tensor], Params]


@dataclass(frozen=True, eq=False)
class Block:
    """K networks on S problems: ``X_<split> [S, m, d]``, ``y_<split> [S, m]`` in ``splits``,
    ``order [G, E, n]`` (G = 1: one shared batch order; G = K: one per network), the start
    ``params`` (``[K, out, in]`` / ``[K, out]``) and ``[K, 1]`` columns lr, lam, l1_ratio."""

    splits: dict[str, tuple[torch.Tensor, torch.Tensor]]
    order: torch.Tensor
    params: Params
    lr: torch.Tensor
    lam: torch.Tensor
    l1_ratio: torch.Tensor
    penalty: Penalty
    rule: Rule
    optimizer: Optimizer
    batch_size: int
    loss: Loss


@dataclass(frozen=True, eq=False)
class BlockOutput:
    """Final ``weights [S, K, P]``, ``biases [S, K, Q]``; per split ``[S, K]`` float64 losses
    (non-finite → inf) and accuracies (classification); ``bad_epoch [S, K]`` (``DivergenceLog``);
    ``curves`` per split ``[S, K, E]`` when asked for."""

    weights: torch.Tensor
    biases: torch.Tensor
    losses: dict[str, torch.Tensor]
    accuracies: dict[str, torch.Tensor] | None
    bad_epoch: torch.Tensor
    curves: dict[str, torch.Tensor] | None

    @classmethod
    def of(
        cls,
        block: Block,
        params: Params,
        final: dict[str, tuple[torch.Tensor, torch.Tensor | None]],
        log: DivergenceLog,
        curves: dict[str, torch.Tensor] | None,
    ) -> BlockOutput:
        """The output of a block trained to ``params``, whose evaluation is ``final`` (per
        split: loss and accuracy), whatever kernel trained it."""
        weights, biases = flatten(params)
        accuracies = {s: acc for s, (_, acc) in final.items() if acc is not None}
        return cls(
            weights=weights,
            biases=biases,
            losses={s: loss for s, (loss, _) in final.items()},
            accuracies=accuracies if block.loss.has_accuracy else None,
            bad_epoch=log.bad_epoch(),
            curves=curves,
        )


def stacked_gradients(loss: Loss) -> Gradients:
    """Batched products and the hand-written backward (see the module docstring)."""

    def gradients(params: Params, X: torch.Tensor, y: torch.Tensor) -> Params:
        inputs, h = [], X
        for layer, (w, b) in enumerate(params):
            inputs.append(h)
            h = h @ w.mT + b.unsqueeze(-2)
            if layer < len(params) - 1:
                h = torch.relu_(h)
        d = loss.grad(h, y)
        out: Params = []
        for layer in range(len(params) - 1, -1, -1):
            h_in = inputs[layer]
            out.append((d.mT @ h_in, d.sum(-2)))
            if layer:
                d = (d @ params[layer][0]).mul_(h_in > 0)
        return out[::-1]

    return gradients


def vmap_gradients(loss: Loss, shared: bool) -> Gradients:
    """``vmap`` over problems (outer) and networks (inner) of ``grad`` of the mean loss of
    ``functional_call(nn.Sequential(Linear, ReLU, …, Linear))``; ``shared``: one batch for
    every network of a problem."""
    cache: dict[tuple[tuple[int, int], ...], Callable[..., tuple[torch.Tensor, ...]]] = {}

    def gradients(params: Params, X: torch.Tensor, y: torch.Tensor) -> Params:
        shapes = tuple((int(w.shape[-2]), int(w.shape[-1])) for w, _ in params)
        if shapes not in cache:
            cache[shapes] = _vmapped(loss, shapes, shared)
        flat = tuple(p for pair in params for p in pair)
        x, t = (X[:, 0], y[:, 0]) if shared else (X, y)
        g = cache[shapes](flat, x, t)
        return [(g[2 * i], g[2 * i + 1]) for i in range(len(params))]

    return gradients


def _vmapped(
    loss: Loss, shapes: tuple[tuple[int, int], ...], shared: bool
) -> Callable[..., tuple[torch.Tensor, ...]]:
    modules: list[nn.Module] = []
    for i, (out, fan_in) in enumerate(shapes):
        modules.append(nn.Linear(fan_in, out, device="meta"))  # no draw from the global RNG
        if i < len(shapes) - 1:
            modules.append(nn.ReLU())
    net = nn.Sequential(*modules)
    names = [f"{2 * i}.{kind}" for i in range(len(shapes)) for kind in ("weight", "bias")]

    def value(flat: tuple[torch.Tensor, ...], x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        out = functional_call(net, dict(zip(names, flat, strict=True)), (x,))
        return loss.value(out, t)

    inner = vmap(grad(value), in_dims=(0, None, None) if shared else (0, 0, 0))
    return vmap(inner, in_dims=(0, 0, 0))


GRADIENTS: dict[str, Callable[[Loss, bool], Gradients]] = {
    "stacked": lambda loss, shared: stacked_gradients(loss),
    "vmap": vmap_gradients,
}


class BlockTrainer:
    """A block's stacked parameters ``[S, K, …]``, optimizer state and factors, stepped one
    batch at a time (``step``) by the gradients ``gradients`` (``GRADIENTS``)."""

    def __init__(self, block: Block, gradients: str = "stacked") -> None:
        X, _ = block.splits["train"]
        S = int(X.shape[0])
        self.block, self.shared = block, int(block.order.shape[0]) == 1
        self.grads_of = GRADIENTS[gradients](block.loss, self.shared)
        self.params = [(w.expand(S, *w.shape).clone(), b.expand(S, *b.shape).clone())
                       for w, b in block.params]  # fmt: skip
        self.w_factors, self.b_lr = _factors(block, self.params[0][0])
        opt = block.optimizer
        self.states = [(opt.state(w), opt.state(b)) for w, b in self.params]
        self.buffers = [torch.empty_like(w) for w, _ in self.params]

    @torch.no_grad()
    def step(self, idx: torch.Tensor) -> None:
        """One step on the training rows ``idx``: ``[B]`` (shared) or ``[K, B]``."""
        X, y = self.block.splits["train"]
        if self.shared:
            Xb, yb = X[:, idx].unsqueeze(1), y[:, idx].unsqueeze(1)
        else:
            Xb, yb = X[:, idx], y[:, idx]
        grads = self.grads_of(self.params, Xb, yb)
        rule, opt = self.block.rule, self.block.optimizer
        for (w, b), (gw, gb), (w_state, b_state), buffer in zip(
            self.params, grads, self.states, self.buffers, strict=True
        ):
            rule.update_(w, gw, opt, w_state, self.w_factors, buffer)
            opt.step_(b, gb, b_state, self.b_lr)


@torch.no_grad()
def train_block(block: Block, gradients: str = "stacked", curves: bool = False) -> BlockOutput:
    """Train the block's networks through every epoch (see the module docstring)."""
    trainer = BlockTrainer(block, gradients)
    params = trainer.params
    S, K = int(block.splits["train"][0].shape[0]), int(block.lr.shape[0])
    epochs = int(block.order.shape[1])
    log = DivergenceLog(epochs, params[0][1][..., 0])
    history = {s: torch.full((S, K, epochs), math.nan, dtype=torch.float64) for s in block.splits}
    for epoch in range(epochs):
        for idx in _batches(block.order, epoch, block.batch_size):
            trainer.step(idx)
        _log_finite(log, params, epoch)
        if curves:
            for split, (loss, _) in _evaluate(block, params).items():
                history[split][..., epoch] = loss
    return BlockOutput.of(block, params, _evaluate(block, params), log, history if curves else None)


def shared_forward(params: Params, X: torch.Tensor) -> torch.Tensor:
    """``forward`` of every network on the same rows ``X [S, m, d]`` → ``[S, K, m, outputs]``,
    the first layer as one product with all K weight matrices side by side."""
    w, b = params[0]
    S, K, out, d = (int(v) for v in w.shape)
    z = torch.baddbmm(b.reshape(S, 1, K * out), X, w.reshape(S, K * out, d).mT)
    if len(params) == 1:
        return z.view(S, -1, K, out).transpose(1, 2)
    h = torch.relu_(z).view(S, -1, K, out).transpose(1, 2)
    return forward(params[1:], h)


def _log_finite(log: DivergenceLog, params: Params, epoch: int) -> None:
    """File 0 for a network whose parameters are all finite, NaN otherwise: exactly the check
    of ``wdbench.train`` (a sum could overflow while every entry is still finite)."""
    finite = torch.stack(
        [torch.isfinite(w).all(-1).all(-1) & torch.isfinite(b).all(-1) for w, b in params]
    ).all(0)
    log.current.copy_(torch.where(finite, 0.0, math.nan))
    log.keep(epoch)


def _factors(block: Block, like: torch.Tensor) -> tuple[Factors, torch.Tensor]:
    """The rule's factors as ``[K, 1, 1]`` (weights) and η as ``[K, 1]`` (biases)."""
    lr, lam, l1_ratio = (
        t.to(like.device, like.dtype) for t in (block.lr, block.lam, block.l1_ratio)
    )
    w_factors = Factors.of(
        block.penalty, lr[..., None], lam[..., None], l1_ratio[..., None], like=like
    )
    return w_factors, w_factors.lr[..., 0]


def _batches(order: torch.Tensor, epoch: int, batch_size: int) -> list[torch.Tensor]:
    """One epoch's batches: ``[B]`` (shared order) or ``[K, B]`` (one order per network)."""
    if int(order.shape[0]) == 1:
        return batches(order[0, epoch], batch_size)
    return list(torch.split(order[:, epoch], batch_size, dim=1))


def _evaluate(block: Block, params: Params) -> dict[str, tuple[torch.Tensor, torch.Tensor | None]]:
    """Per split: the loss ``[S, K]`` float64 on the CPU (non-finite → inf) and the accuracy."""
    out = {}
    for split, (X, y) in block.splits.items():
        z = shared_forward(params, X)
        t = y.unsqueeze(1)
        loss = block.loss.value(z, t).to("cpu", torch.float64)
        loss = torch.where(torch.isfinite(loss), loss, math.inf)
        acc = accuracy(z, t).to("cpu", torch.float64) if block.loss.has_accuracy else None
        out[split] = (loss, acc)
    return out
