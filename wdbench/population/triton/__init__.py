"""Fused GPU kernels for the population trainer (optional: they need Triton).

``train_group_triton`` (``_fused``) trains a ``Group`` in one launch of the Triton kernel of
``_jit``; ``select_kernel`` picks it for the CUDA groups it ``applies`` to when Triton is
importable. Importing this package never imports Triton. ``python -m benchmarks.tools.triton_sweep``
times it on a GPU; ``python -m benchmarks.tools.triton_sass`` shows its compiled form without one.
"""

from __future__ import annotations

import importlib.util

from wdbench.population._group import Group
from wdbench.population.triton._fused import (
    FORMS,
    LAYOUTS,
    TRITON_RULES,
    KernelOptions,
    applies,
    train_group_triton,
)

__all__ = [
    "FORMS",
    "LAYOUTS",
    "TRITON_RULES",
    "KernelOptions",
    "applies",
    "train_group_triton",
    "triton_applies",
    "triton_available",
]


def triton_available() -> bool:
    """Whether Triton can be imported (it ships with CUDA builds of PyTorch)."""
    return importlib.util.find_spec("triton") is not None


def triton_applies(group: Group, forced: bool = False) -> bool:
    """Whether to train ``group`` with the Triton kernel: it ``applies``, Triton is importable,
    and the group is on CUDA (or ``forced``: the interpreter then runs it on the CPU)."""
    on_gpu = forced or group.X.device.type == "cuda"
    return on_gpu and applies(group) and triton_available()  # the cheap checks first
