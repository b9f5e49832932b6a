"""wdbench: a weight-decay training kernel — problems, penalties, update loops, population, oracles.

Conventions (every path agrees): batch loss ℓ = (1/B) Σ (x·w + b − y)² / 2; penalties act on w
only; reported losses are the mean half squared error of a split. The update rules are
``wdbench.rules``; ``wdbench.population`` trains many configurations at once. Networks
(``TrainConfig.model == "mlp"``, and classification problems: ``wdbench.networks``) keep the
conventions with the loss of their task (``wdbench.losses``) and weight matrices in place of w.
"""

from wdbench import oracle
from wdbench.config import (
    COMBOS,
    DTYPES,
    IMPLS,
    LEGACY_LOOPS,
    LOOPS,
    OPTIM_IMPLS,
    TrainConfig,
    split_loop,
)
from wdbench.penalties import PENALTIES, Penalty, get_penalty
from wdbench.population import PopulationResult, train_population
from wdbench.problems import PROBLEMS, Problem, ProblemSpec, Table, get_problem, read_table
from wdbench.result import TrainResult
from wdbench.rules import RULES, Rule, get_rule
from wdbench.training import resolve_device, train

__all__ = [
    "COMBOS",
    "DTYPES",
    "IMPLS",
    "LEGACY_LOOPS",
    "LOOPS",
    "OPTIM_IMPLS",
    "PENALTIES",
    "PROBLEMS",
    "RULES",
    "Penalty",
    "PopulationResult",
    "Problem",
    "ProblemSpec",
    "Rule",
    "Table",
    "TrainConfig",
    "TrainResult",
    "get_penalty",
    "get_problem",
    "get_rule",
    "oracle",
    "read_table",
    "resolve_device",
    "split_loop",
    "train",
    "train_population",
]
