"""One network trained by a rule of ``wdbench.rules`` through an optimizer of
``wdbench.optimizers``: autograd on the batch mean loss (``wdbench.losses``), then, layer by
layer, ``Rule.update_`` on the weight matrix (the penalty acts there only) and the optimizer's
plain step on the bias (its own state, no penalty). ``wdbench.train`` runs its epochs.
"""

from __future__ import annotations

import math

import torch

from wdbench.config import TrainConfig
from wdbench.losses import accuracy, get_loss
from wdbench.networks._architecture import Architecture, Params, flatten, init_network
from wdbench.networks._forward import forward
from wdbench.order import batches
from wdbench.penalties import get_penalty
from wdbench.problems import Problem
from wdbench.rules import Factors, get_rule

__all__ = ["NetworkRun"]


class NetworkRun:
    """A network on ``problem`` (its device and dtype) started from ``config.seed``'s draw,
    stepping through the shared batch ``order`` one epoch at a time."""

    def __init__(self, problem: Problem, config: TrainConfig, order: torch.Tensor) -> None:
        self.X, self.y, self.order, self.config = problem.X_train, problem.y_train, order, config
        self.loss = get_loss(problem.task)
        outputs = self.loss.outputs(problem.n_classes)
        self.arch = Architecture.of(config, problem.dim, outputs)
        start = init_network(self.arch, config.seed, config.init_scale)
        self.params: Params = [
            (w.to(self.X.device, self.X.dtype).requires_grad_(True),
             b.to(self.X.device, self.X.dtype).requires_grad_(True))
            for w, b in start
        ]  # fmt: skip
        self.rule, self.optimizer = get_rule(config.rule), config.optimizer_settings()
        penalty = get_penalty(config.penalty)
        like = self.params[0][0]
        self.factors = Factors.of(penalty, config.lr, config.lam, config.l1_ratio, like=like)
        self.states = [(self.optimizer.state(w), self.optimizer.state(b)) for w, b in self.params]
        self.buffers = [torch.empty_like(w) for w, _ in self.params]

    def run_epoch(self, epoch: int) -> None:
        leaves = [p for pair in self.params for p in pair]
        for idx in batches(self.order[epoch], self.config.batch_size):
            idx = idx.to(self.X.device)
            value = self.loss.value(forward(self.params, self.X[idx]), self.y[idx])
            grads = torch.autograd.grad(value, leaves)
            self._step(list(grads))

    @torch.no_grad()
    def _step(self, grads: list[torch.Tensor]) -> None:
        opt, factors = self.optimizer, self.factors
        for layer, (w, b) in enumerate(self.params):
            gw, gb = grads[2 * layer], grads[2 * layer + 1]
            w_state, b_state = self.states[layer]
            self.rule.update_(w, gw, opt, w_state, factors, self.buffers[layer])
            opt.step_(b, gb, b_state, factors.lr)

    def finite(self) -> bool:
        return all(bool(torch.isfinite(p).all()) for pair in self.params for p in pair)

    @torch.no_grad()
    def evaluate(self, X: torch.Tensor, y: torch.Tensor) -> tuple[float, float | None]:
        """(loss, accuracy or ``None``) on the rows ``X``, ``y``; a non-finite loss is inf."""
        out = forward(self.params, X)
        value = float(self.loss.value(out, y))
        acc = float(accuracy(out, y)) if self.loss.has_accuracy else None
        return (value if math.isfinite(value) else math.inf), acc

    def flat(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Detached ``(weights, biases)`` on the CPU (``flatten``)."""
        weights, biases = flatten([(w.detach(), b.detach()) for w, b in self.params])
        return weights.cpu(), biases.cpu()
