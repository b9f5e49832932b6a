"""A homogeneous group of configurations and the readable reference kernel that trains it.

A *group* shares the epochs, batch size, dtype, device, penalty, update rule (a
``wdbench.rules.Rule``: every kernel computes that rule's step) and optimizer with its
hyperparameters (``wdbench.optimizers``; its state is kept per configuration); its K
configurations differ in λ, l1_ratio, η and w₀, given as ``[K, 1]`` columns / a ``[K, d]`` tensor.
The batch order is shared (``order [1, E, n]``, one train seed) or per configuration
(``order [K, E, n]``). Every kernel — this reference, the fast CPU paths, a GPU backend — takes a
``Group`` and returns a ``GroupOutput``; ``train_group_reference`` is the definition they match.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch

from wdbench.optimizers import Optimizer
from wdbench.order import batches
from wdbench.penalties import Penalty
from wdbench.rules import Factors, Rule, data_grad

__all__ = [
    "DivergenceLog",
    "EpochHook",
    "Group",
    "GroupOutput",
    "train_group_reference",
]

#: Called after every epoch with ``(epoch, w [S, K, d], b [S, K, 1])`` (0-based epoch).
EpochHook = Callable[[int, torch.Tensor, torch.Tensor], None]


@dataclass(frozen=True, eq=False)
class Group:
    """The tensors of one homogeneous group, on its device and in its dtype.

    ``X [S, n, d]`` and ``y [S, n]``: the S training sets; ``order [G, E, n]`` int64 with
    ``G ∈ {1, K}``; ``w0 [K, d]``; ``lr``, ``lam``, ``l1_ratio`` ``[K, 1]``; ``rule`` the
    update rule and ``optimizer`` the optimizer of every configuration.
    """

    X: torch.Tensor
    y: torch.Tensor
    order: torch.Tensor
    w0: torch.Tensor
    lr: torch.Tensor
    lam: torch.Tensor
    l1_ratio: torch.Tensor
    penalty: Penalty
    rule: Rule
    batch_size: int
    optimizer: Optimizer = field(default_factory=Optimizer)

    @property
    def size(self) -> int:
        """K, the number of configurations."""
        return int(self.w0.shape[0])

    @property
    def shared_order(self) -> bool:
        return int(self.order.shape[0]) == 1

    @property
    def epochs(self) -> int:
        return int(self.order.shape[1])

    def coefficients(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(a, c)`` ``[K, 1]``: the L1 and L2 coefficients of every configuration."""
        a, c = self.penalty.coefficients(self.lam, self.l1_ratio)
        return torch.as_tensor(a).expand_as(self.lam), torch.as_tensor(c).expand_as(self.lam)

    def factors(self) -> Factors:
        """The rule's step factors, ``[K, 1]`` columns in the group's dtype."""
        return Factors.of(self.penalty, self.lr, self.lam, self.l1_ratio, like=self.X)


@dataclass(frozen=True, eq=False)
class GroupOutput:
    """Final ``w [S, K, d]``, ``b [S, K]``, and ``bad_epoch [S, K]`` int64: the first epoch
    (1-based) after which a parameter was not finite, 0 when it never happened."""

    w: torch.Tensor
    b: torch.Tensor
    bad_epoch: torch.Tensor


class DivergenceLog:
    """Which epoch each row of a ``[S, K]`` group first stopped being finite.

    After every epoch the row sums of w and b go into a preallocated ``[E, S, K]`` buffer (a
    reduction, no host synchronization: ``measure`` is capture-friendly and ``keep`` files its
    result under the epoch); ``bad_epoch`` reads them all at the end. A non-finite entry always
    makes its row's sum non-finite (so would entries within a factor d of overflow, in a run
    that diverges a step later anyway). Once a row is not finite the update rules keep it so,
    so the first flagged epoch is the one at which ``wdbench.train`` stops.
    """

    def __init__(self, epochs: int, like: torch.Tensor) -> None:
        self.sums = torch.zeros(epochs, *like.shape, dtype=like.dtype, device=like.device)
        self.current = torch.zeros_like(like)

    def measure(self, w: torch.Tensor, b: torch.Tensor) -> None:
        """Row sums of ``w [S, K, d]`` plus ``b [S, K, 1]``."""
        torch.sum(w, -1, out=self.current)
        self.current.add_(b.squeeze(-1))

    def keep(self, epoch: int) -> None:
        self.sums[epoch].copy_(self.current)

    def record(self, epoch: int, w: torch.Tensor, b: torch.Tensor) -> None:
        self.measure(w, b)
        self.keep(epoch)

    def bad_epoch(self) -> torch.Tensor:
        """``[S, K]`` int64: the first (1-based) epoch with a non-finite row, 0 if none."""
        bad = ~torch.isfinite(self.sums)
        first = bad.to(torch.int8).argmax(0) + 1
        return torch.where(bad.any(0), first, 0)


def epoch_batches(order: torch.Tensor, epoch: int, batch_size: int) -> Iterator[torch.Tensor]:
    """The batches of one epoch: ``[B]`` indices (shared order) or ``[K, B]`` (per config)."""
    if order.shape[0] == 1:
        yield from batches(order[0, epoch], batch_size)
    else:
        yield from torch.split(order[:, epoch], batch_size, dim=1)


@torch.no_grad()
def train_group_reference(group: Group, on_epoch: EpochHook | None = None) -> GroupOutput:
    """The plain batched form: ``data_grad`` then the rule's ``Rule.step`` on ``[S, K, d]`` (with
    momentum or Adam, ``Rule.update_`` with the optimizer's state ``[S, K, d]`` of w and
    ``[S, K, 1]`` of b).

    Every configuration follows exactly the steps of ``wdbench.train``; rows never mix, so a
    diverging configuration only fills its own row with non-finite values.
    """
    S, K = int(group.X.shape[0]), group.size
    w = group.w0.expand(S, *group.w0.shape).clone()
    b = torch.zeros(S, K, 1, dtype=w.dtype, device=w.device)
    log = DivergenceLog(group.epochs, w[..., 0])
    factors = group.factors()
    opt = group.optimizer
    w_state, b_state, buffer = opt.state(w), opt.state(b), torch.empty_like(w)
    for epoch in range(group.epochs):
        for idx in epoch_batches(group.order, epoch, group.batch_size):
            gw, gb = _batch_grad(group, idx, w, b)
            if opt.stateful:
                group.rule.update_(w, gw, opt, w_state, factors, buffer)
                opt.step_(b, gb, b_state, factors.lr)
            else:
                w = group.rule.step(w, gw, factors)
                b = b - group.lr * gb
        log.record(epoch, w, b)
        if on_epoch is not None:
            on_epoch(epoch, w, b)
    return GroupOutput(w=w, b=b.squeeze(-1), bad_epoch=log.bad_epoch())


def _batch_grad(
    group: Group, idx: torch.Tensor, w: torch.Tensor, b: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``data_grad`` on the rows ``idx``: shared ``[B]`` or per-configuration ``[K, B]``."""
    Xb, yb = group.X[:, idx], group.y[:, idx]
    if idx.dim() == 1:
        return data_grad(Xb, yb.unsqueeze(1), w, b)
    gw, gb = data_grad(Xb, yb.unsqueeze(-2), w.unsqueeze(-2), b.unsqueeze(-1))
    return gw.squeeze(-2), gb.squeeze(-1)
