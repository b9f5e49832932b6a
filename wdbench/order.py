"""The shared initialization and batch order: same train seed ⇒ same start and same batches.

Both are drawn in float64 / int64 on the CPU from generators derived from the train seed, then cast
and moved, so every loop, dtype and device starts from the same point and visits the same rows.
"""

from __future__ import annotations

from functools import lru_cache

import torch

from wdbench.seeding import generator

__all__ = ["batch_order", "batches", "init_params"]


def init_params(dim: int, init_scale: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(w₀, b₀_random)`` in float64: w₀ ~ N(0, init_scale²) per coordinate.

    Every loop but ``concise`` starts from b₀ = 0; ``concise`` (the lesson's ``normal_()`` on
    every parameter) starts its bias at the second value, drawn right after w₀.
    """
    gen = generator(seed, "init")
    w0 = torch.randn(dim, generator=gen, dtype=torch.float64) * init_scale
    b_random = torch.randn(1, generator=gen, dtype=torch.float64)
    return w0, b_random


#: Largest batch order (epochs × n) kept for the next call with the same seed: 8 MB.
_KEEP_ORDER = 1 << 20


def batch_order(n: int, epochs: int, seed: int) -> torch.Tensor:
    """``[epochs, n]`` int64: a fresh permutation of the training rows for every epoch.

    A copy of the last few orders drawn (one randperm per epoch: ≈ 1 ms for the lesson's 100
    epochs, asked again for every group and chunk that shares a train seed)."""
    if epochs * n > _KEEP_ORDER:
        return _draw_order(n, epochs, seed)
    return _kept_order(n, epochs, seed).clone()


def _draw_order(n: int, epochs: int, seed: int) -> torch.Tensor:
    gen = generator(seed, "order")
    return torch.stack([torch.randperm(n, generator=gen) for _ in range(epochs)])


_kept_order = lru_cache(maxsize=8)(_draw_order)


def batches(order_row: torch.Tensor, batch_size: int) -> list[torch.Tensor]:
    """One epoch's permutation cut into consecutive batches (the last may be partial)."""
    return list(torch.split(order_row, batch_size))
