"""A registered problem's study defaults, where the lesson's (``wdbench.TrainConfig``'s budget and
the CLI's grid size) do not suit it. Standard library only: the command line reads it first.

digits trains a network (softmax regression, or an MLP) on 200 rows: 30 epochs of minibatches of
20 (300 steps; SGD's validation loss has flattened by then at lr 0.05), and a dense grid of 64
points per branch (an 8 × 8 lr × λ lattice with ``--lr-range``), so that the default study and
the README's lr × λ study on an MLP run within a few minutes on a 2-core CPU (docs: README).
A flag given on the command line (or in the TOML file) always wins.
"""

from __future__ import annotations

__all__ = ["PROBLEM_DEFAULTS", "problem_default"]

#: Registry name → setting → its default for that problem.
PROBLEM_DEFAULTS: dict[str, dict[str, int | float]] = {
    "digits": {"epochs": 30, "batch_size": 20, "lr": 0.05, "grid_points": 64},
}


def problem_default(problem: str, setting: str) -> int | float | None:
    """The default of ``setting`` for ``--problem`` (a spec ``NAME:key=value`` or a file), or
    None when the problem has none."""
    family = problem.partition(":")[0].strip()
    return PROBLEM_DEFAULTS.get(family, {}).get(setting)
