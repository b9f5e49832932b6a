"""The single-configuration code paths (``TrainConfig.impl``). Each runs one epoch over a shared
batch order; ``functional`` computes any rule of ``wdbench.rules``, the others the coupled one.

* ``scratch``    — the lesson's loop: ``DataLoader`` + autograd on Σ_batch[(ŷ−y)²/2 + pen(w)] +
  the in-place ``p ← p − η·p.grad/B`` (with momentum or Adam: the optimizer's step of
  ``wdbench.optimizers`` on p.grad/B). L1 is the lesson's autograd subgradient.
* ``optim``      — the torch.optim class with groups ``[{w, weight_decay=c}, {b}]`` on the mean
  half squared error (plus a‖w‖₁ in the loss for l1 / elastic): ``SGD`` (momentum, nesterov) or
  ``Adam`` (coupled: w's gradient is ∇ℓ + a·sign(w) + c·w), ``AdamW`` (decoupled).
* ``functional`` — the analytic batch gradient ∇ℓ, then ``Rule.step`` of ``config.rule``
  (``decoupled``: w ← w − ηλw − η∇ℓ; ``proximal``: the only rule that produces exact zeros), or
  with momentum or Adam ``Rule.update_`` with the optimizer's state of w and of b.
* ``concise``    — the lesson's concise code: ``nn.Linear``, ``MSELoss`` without ½, its bias drawn
  at random. concise(wd, η) ≡ scratch(λ = wd/2, 2η) given the same b₀ (a different objective).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import torch
from torch import nn
from torch.utils.data import DataLoader, Sampler, TensorDataset

from wdbench.config import TrainConfig
from wdbench.optimizers import Optimizer
from wdbench.order import batches
from wdbench.penalties import get_penalty
from wdbench.problems import Problem
from wdbench.rules import Factors, data_grad, get_rule, sgd_

__all__ = ["IMPL_RUNNERS", "Loop", "make_loop"]


class Loop(Protocol):
    """One configuration's parameters and the rule that moves them through one epoch."""

    def run_epoch(self, epoch: int) -> None: ...

    def params(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Detached ``(w [d], b [1])``."""
        ...


class OrderBatchSampler(Sampler[list[int]]):
    """Yields the batches of the shared order's epoch ``self.epoch`` (set by the loop)."""

    def __init__(self, order: torch.Tensor, batch_size: int) -> None:
        self.order, self.batch_size, self.epoch = order, batch_size, 0

    def __iter__(self) -> Iterator[list[int]]:
        row = self.order[self.epoch]
        return (batch.tolist() for batch in batches(row, self.batch_size))

    def __len__(self) -> int:
        return -(-int(self.order.shape[1]) // self.batch_size)


class _Base:
    def __init__(
        self,
        problem: Problem,
        config: TrainConfig,
        w0: torch.Tensor,
        b0: torch.Tensor,
        order: torch.Tensor,
    ) -> None:
        self.X, self.y = problem.X_train, problem.y_train
        self.config, self.order = config, order
        self.penalty = get_penalty(config.penalty)
        self.w, self.b = w0.clone(), b0.clone()
        self.setup()

    def setup(self) -> None:
        """Build what the rule needs beyond the parameters (loaders, optimizers)."""

    def batches(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for idx in batches(self.order[epoch], self.config.batch_size):
            idx = idx.to(self.X.device)
            yield self.X[idx], self.y[idx]

    def run_epoch(self, epoch: int) -> None:
        raise NotImplementedError

    def params(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.w.detach(), self.b.detach()


class ScratchLoop(_Base):
    def setup(self) -> None:
        self.w.requires_grad_(True)
        self.b.requires_grad_(True)
        self.sampler = OrderBatchSampler(self.order, self.config.batch_size)
        # A private generator: iterating a DataLoader otherwise draws a base seed from the
        # global RNG every epoch.
        self.loader = DataLoader(
            TensorDataset(self.X, self.y), batch_sampler=self.sampler, generator=torch.Generator()
        )
        self.optimizer = self.config.optimizer_settings()
        self.states = [self.optimizer.state(p.detach()) for p in (self.w, self.b)]

    def run_epoch(self, epoch: int) -> None:
        self.sampler.epoch = epoch
        c = self.config
        for X, y in self.loader:
            per_example = (X @ self.w + self.b - y) ** 2 / 2
            loss = per_example + self.penalty.value(self.w, c.lam, c.l1_ratio)
            loss.sum().backward()
            if self.optimizer.stateful:
                self._optimizer_step(len(y))
            else:
                sgd_([self.w, self.b], c.lr, len(y))

    @torch.no_grad()
    def _optimizer_step(self, batch_size: int) -> None:
        """The optimizer's step on p.grad / B for w and b, then clear the gradients."""
        for p, state in zip((self.w, self.b), self.states, strict=True):
            assert p.grad is not None
            self.optimizer.step_(p, p.grad / batch_size, state, self.config.lr)
            p.grad.zero_()


class OptimLoop(_Base):
    def setup(self) -> None:
        c = self.config
        self.w.requires_grad_(True)
        self.b.requires_grad_(True)
        self.l1_coef, decay = self.penalty.coefficients(c.lam, c.l1_ratio)
        impl = {
            "default": {},
            "for-loop": {"foreach": False},
            "foreach": {"foreach": True},
            "fused": {"fused": True},
        }[c.optim_impl]
        groups = [
            {"params": [self.w], "weight_decay": float(decay)},
            {"params": [self.b], "weight_decay": 0.0},
        ]
        self.opt = torch_optimizer(groups, c.optimizer_settings(), c.rule, c.lr, impl)

    def run_epoch(self, epoch: int) -> None:
        for X, y in self.batches(epoch):
            self.opt.zero_grad()
            r = X @ self.w + self.b - y
            loss = (r * r / 2).mean()
            if self.penalty.has_l1:
                loss = loss + self.l1_coef * self.w.abs().sum()
            loss.backward()  # type: ignore[no-untyped-call]
            self.opt.step()


def torch_optimizer(
    groups: list[dict[str, Any]], optimizer: Optimizer, rule: str, lr: float, impl: dict[str, bool]
) -> torch.optim.Optimizer:
    """The torch.optim class that computes ``optimizer`` under ``rule`` (coupled, or decoupled
    for Adam: ``AdamW``; plain SGD is the same update either way) with its hyperparameters."""
    o = optimizer
    if o.name == "adam":
        cls = torch.optim.AdamW if rule == "decoupled" else torch.optim.Adam
        return cls(groups, lr=lr, betas=(o.beta1, o.beta2), eps=o.eps, **impl)
    momentum = o.momentum if o.name == "momentum" else 0.0
    return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=o.nesterov, **impl)


class FunctionalLoop(_Base):
    def setup(self) -> None:
        c = self.config
        self.rule = get_rule(c.rule)
        self.factors = Factors.of(self.penalty, c.lr, c.lam, c.l1_ratio, like=self.w)
        self.optimizer = c.optimizer_settings()
        self.states = [self.optimizer.state(p) for p in (self.w, self.b)]
        self.buffer = torch.empty_like(self.w)

    def run_epoch(self, epoch: int) -> None:
        for X, y in self.batches(epoch):
            gw, gb = data_grad(X, y, self.w, self.b)
            if self.optimizer.stateful:
                self.rule.update_(
                    self.w, gw, self.optimizer, self.states[0], self.factors, self.buffer
                )
                self.optimizer.step_(self.b, gb, self.states[1], self.factors.lr)
            else:
                self.w = self.rule.step(self.w, gw, self.factors)
                self.b = self.b - self.config.lr * gb


class ConciseLoop(_Base):
    def setup(self) -> None:
        c = self.config
        # Built on the meta device: nn.Linear's own initialization would draw from the global RNG.
        net = nn.Linear(self.X.shape[1], 1, device="meta", dtype=self.X.dtype)
        self.net = net.to_empty(device=self.X.device)
        with torch.no_grad():
            self.net.weight.copy_(self.w.unsqueeze(0))
            self.net.bias.copy_(self.b)
        self.loss = nn.MSELoss(reduction="none")
        groups: list[dict[str, Any]] = [
            {"params": self.net.weight, "weight_decay": c.lam},
            {"params": self.net.bias},
        ]
        self.trainer = torch.optim.SGD(groups, lr=c.lr)

    def run_epoch(self, epoch: int) -> None:
        for X, y in self.batches(epoch):
            self.trainer.zero_grad()
            loss = self.loss(self.net(X), y.unsqueeze(-1))
            loss.mean().backward()
            self.trainer.step()

    def params(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.net.weight.detach()[0], self.net.bias.detach()


IMPL_RUNNERS: dict[str, type[_Base]] = {
    "scratch": ScratchLoop,
    "optim": OptimLoop,
    "functional": FunctionalLoop,
    "concise": ConciseLoop,
}


def make_loop(
    problem: Problem, config: TrainConfig, w0: torch.Tensor, b0: torch.Tensor, order: torch.Tensor
) -> Loop:
    """The runner of ``config.impl`` started at ``(w0, b0)`` (on the problem's device/dtype)."""
    return IMPL_RUNNERS[config.impl](problem, config, w0, b0, order)
