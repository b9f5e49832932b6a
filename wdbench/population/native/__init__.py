"""The compiled CPU kernel for the population trainer (built on first use; see ``_build``).

``train_group_native`` (``_fused``) trains a ``Group`` with the kernel of ``kernel.cpp``;
``select_kernel`` picks it for the CPU groups it ``applies`` to when it is available (a C++
compiler on PATH; ``WDBENCH_NATIVE=0`` turns it off). Like the Triton kernel it has its own
arithmetic, tested against ``wdbench.rules``.
"""

from wdbench.population.native._build import unavailable_reason
from wdbench.population.native._fused import (
    NATIVE_OPTIMIZERS,
    NATIVE_RULES,
    native_applies,
    native_available,
    train_group_native,
)

__all__ = [
    "NATIVE_OPTIMIZERS",
    "NATIVE_RULES",
    "native_applies",
    "native_available",
    "train_group_native",
    "unavailable_reason",
]
