"""The shared initialization and batch order: same train seed ⇒ same start and same batches.

Both are drawn in float64 / int64 on the CPU from generators derived from the train seed, then cast
and moved, so every loop, dtype and device starts from the same point and visits the same rows.
"""

from __future__ import annotations

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


def batch_order(n: int, epochs: int, seed: int) -> torch.Tensor:
    """``[epochs, n]`` int64: a fresh permutation of the training rows for every epoch."""
    gen = generator(seed, "order")
    return torch.stack([torch.randperm(n, generator=gen) for _ in range(epochs)])


def batches(order_row: torch.Tensor, batch_size: int) -> list[torch.Tensor]:
    """One epoch's permutation cut into consecutive batches (the last may be partial)."""
    return list(torch.split(order_row, batch_size))
