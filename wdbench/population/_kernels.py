"""Kernel selection: which implementation trains a given ``Group``.

Every kernel has the signature of ``train_group_reference`` and returns the same ``GroupOutput``
up to rounding. ``"reference"`` forces the plain batched form; ``"auto"`` picks the fastest exact
kernel for the group's penalty, rule and device (the fused Triton kernel for float32 CUDA groups
when Triton is importable, the compiled kernel of ``native`` for CPU groups when it is
available); ``"torch"`` keeps to the torch kernels (no compiled code); ``"triton"`` takes the
Triton kernel wherever it applies, also on the CPU through Triton's interpreter
(``TRITON_INTERPRET=1``; for tests).
"""

from __future__ import annotations

from collections.abc import Callable

from wdbench.population._fullspace import train_group_fullspace
from wdbench.population._group import EpochHook, Group, GroupOutput, train_group_reference
from wdbench.population._rowspace import rowspace_applies, train_group_rowspace
from wdbench.population._stateful import stateful_block, train_group_stateful
from wdbench.population.native import native_applies, native_available, train_group_native
from wdbench.population.triton import train_group_triton, triton_applies

__all__ = ["BACKENDS", "Kernel", "cache_block", "select_kernel"]

Kernel = Callable[[Group, EpochHook | None], GroupOutput]
BACKENDS = ("auto", "reference", "torch", "triton")


def select_kernel(group: Group, backend: str = "auto") -> Kernel:
    """The kernel that trains ``group`` under ``backend``."""
    if backend == "reference":
        return train_group_reference
    if group.optimizer.stateful:  # momentum, Adam: state per configuration
        if backend == "auto" and native_applies(group) and native_available():
            return train_group_native
        return train_group_stateful if group.shared_order else train_group_reference
    if triton_applies(group, forced=backend == "triton"):
        return train_group_triton
    if backend == "auto" and native_applies(group) and native_available():
        return train_group_native
    if rowspace_applies(group):
        return train_group_rowspace
    if group.shared_order:
        return train_group_fullspace
    return train_group_reference


def cache_block(kernel: Kernel, group: Group) -> int | None:
    """The most configurations a CPU chunk of ``kernel`` should carry: the state it sweeps at
    every step (full-space weights, or row-space P and α) then stays in cache — measured on a
    2-core Xeon, chunks of ~600 (full space, d = 200) and ~4000–8000 (row space, n = 50) were
    the fastest. ``None``: no preference (the native kernel blocks by itself)."""
    S, n, d = (int(v) for v in group.X.shape)
    itemsize = group.X.element_size()
    if kernel is train_group_fullspace:
        return max(128, (512 << 10) // (S * d * itemsize))
    if kernel is train_group_rowspace:
        return max(1024, (3 << 20) // (2 * S * n * itemsize))
    if kernel is train_group_stateful:
        return stateful_block(group)
    return None
