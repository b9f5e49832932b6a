"""Kernel selection: which implementation trains a given ``Group``.

Every kernel has the signature of ``train_group_reference`` and returns the same ``GroupOutput``
up to rounding. ``"reference"`` forces the plain batched form; ``"auto"`` picks the fastest exact
kernel for the group's penalty, rule and device.
"""

from __future__ import annotations

from collections.abc import Callable

from wdbench._group import EpochHook, Group, GroupOutput, train_group_reference
from wdbench._rowspace import rowspace_applies, train_group_rowspace

__all__ = ["BACKENDS", "Kernel", "select_kernel"]

Kernel = Callable[[Group, EpochHook | None], GroupOutput]
BACKENDS = ("auto", "reference")


def select_kernel(group: Group, backend: str = "auto") -> Kernel:
    """The kernel that trains ``group`` under ``backend``."""
    if backend == "reference":
        return train_group_reference
    if rowspace_applies(group):
        return train_group_rowspace
    return train_group_reference
