"""wdbench: a weight-decay training kernel — problems, penalties, update loops, population, oracles.

Conventions (every path agrees): batch loss ℓ = (1/B) Σ (x·w + b − y)² / 2; penalties act on w
only; reported losses are the mean half squared error of a split. See ``wdbench.updates``.
"""

from wdbench import oracle
from wdbench.config import DTYPES, LOOPS, OPTIM_IMPLS, TrainConfig
from wdbench.penalties import PENALTIES, Penalty, get_penalty
from wdbench.population import train_population
from wdbench.population_result import PopulationResult
from wdbench.problems import PROBLEMS, Problem
from wdbench.result import TrainResult
from wdbench.training import resolve_device, train

__all__ = [
    "DTYPES",
    "LOOPS",
    "OPTIM_IMPLS",
    "PENALTIES",
    "PROBLEMS",
    "Penalty",
    "PopulationResult",
    "Problem",
    "TrainConfig",
    "TrainResult",
    "get_penalty",
    "oracle",
    "resolve_device",
    "train",
    "train_population",
]
