"""Common random numbers: the data seeds and the train seed every trial of a study shares.

``--seed`` derives everything: problem draw s uses ``data_seed + s`` (s < S), and one train seed
(w₀ and the batch order) serves every trial and every data seed, so two trials differ only by
their hyperparameters.
"""

from __future__ import annotations

from dataclasses import dataclass

from studies.cli import Settings
from studies.problem import StudyProblem
from wdbench import Problem
from wdbench.seeding import derive_seed

__all__ = ["StudySeeds", "build_problems"]

_SEED_SPACE = 2**31


@dataclass(frozen=True)
class StudySeeds:
    """``seed`` (the flag), the S ``data_seeds`` and the shared ``train_seed``."""

    seed: int
    data_seeds: tuple[int, ...]
    train_seed: int

    @classmethod
    def from_settings(cls, settings: Settings) -> StudySeeds:
        base = derive_seed(settings.seed, "data") % _SEED_SPACE
        return cls(
            seed=settings.seed,
            data_seeds=tuple(base + s for s in range(settings.seeds)),
            train_seed=derive_seed(settings.seed, "train") % _SEED_SPACE,
        )


def build_problems(settings: Settings, seeds: StudySeeds) -> list[Problem]:
    """The S problem draws of the study, in data-seed order (``studies.problem``)."""
    return StudyProblem.from_settings(settings).draws(seeds.data_seeds)
