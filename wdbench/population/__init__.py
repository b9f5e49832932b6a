"""Batched training: K configurations × S problems in one computation (``train_population``).

How a call is trained, module by module (private, re-exported here):

* ``_train``     — ``train_population``: checks, groups, chunks, collects the results.
* ``_plan``      — homogeneous groups (``plan_groups``), chunk sizes, a chunk's tensors (``Group``).
* ``_group``     — the ``Group`` contract every kernel honours, and ``train_group_reference``, the
  plain batched form that defines it.
* ``_kernels``   — which kernel trains a group (``select_kernel``).
* ``_fullspace`` — in-place steps in the d-dimensional weight space (any penalty, any rule).
* ``_stateful``  — in-place steps with optimizer state (momentum, Adam), in the weight space.
* ``_rowspace``  — ``RowSpace`` (the row space of X_train, in the forms every kernel uses) and the
  kernel that trains penalties without an L1 part in it.
* ``_graph``     — runs a kernel's epochs as one replayed CUDA graph.
* ``_result``    — ``PopulationResult``.
* ``native``     — the compiled CPU kernel (C++, built on first use; blocks of configurations
  on the thread pool of ``wdbench.threads``).
* ``triton``     — the fused Triton kernel (optional; Triton is imported on first use).

Every kernel computes the rules of ``wdbench.rules`` (``Rule.step`` / ``Rule.step_`` /
``Rule.linear``); only the compiled kernels (native, Triton) have their own arithmetic, tested
against them.
"""

from wdbench.population._group import Group, GroupOutput, train_group_reference
from wdbench.population._kernels import BACKENDS, select_kernel
from wdbench.population._plan import GroupPlan, make_group, plan_groups, stack
from wdbench.population._result import PopulationResult, config_columns
from wdbench.population._rowspace import RowSpace
from wdbench.population._train import train_population

__all__ = [
    "BACKENDS",
    "Group",
    "GroupOutput",
    "GroupPlan",
    "PopulationResult",
    "RowSpace",
    "config_columns",
    "make_group",
    "plan_groups",
    "select_kernel",
    "stack",
    "train_group_reference",
    "train_population",
]
