"""Registry names the command line offers, readable without importing torch.

``--help`` and every refusal of bad input answer before torch is imported, so the names of
``wdbench.PROBLEMS`` and ``wdbench.PENALTIES`` are listed here too; a test asserts that they are
the registries' names, in the same order.
"""

from __future__ import annotations

__all__ = ["PENALTIES", "PROBLEMS"]

PROBLEMS = ("synthetic", "synthetic-sparse", "diabetes")
PENALTIES = ("none", "l2", "l1", "elastic")
