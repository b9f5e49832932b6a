"""Problems: the registry of built-in problems, and a user's own data as a problem.

``PROBLEMS`` maps a name to a ``ProblemFamily`` (builder and one-line description); a
``ProblemSpec`` is a name with parameter values (``synthetic:n_train=100,rho=0.5``).
``read_table`` reads and checks a ``.csv``/``.parquet`` file; ``Problem.from_table``,
``Problem.from_frame`` and ``Problem.from_arrays`` draw train/validation/test splits from rows (a
categorical target makes a classification problem).
"""

from wdbench.problems._problem import Problem
from wdbench.problems._registry import (
    PROBLEMS,
    SPARSE_SUPPORT,
    Param,
    ProblemFamily,
    ProblemSpec,
    get_problem,
)
from wdbench.problems._tabular import (
    MIN_CLASS_ROWS,
    TABLE_SUFFIXES,
    TEST_FRACTION,
    VAL_FRACTION,
    Table,
    available_memory,
    file_sha256,
    is_table_path,
    read_table,
    split_sizes,
)

__all__ = [
    "MIN_CLASS_ROWS",
    "PROBLEMS",
    "SPARSE_SUPPORT",
    "TABLE_SUFFIXES",
    "TEST_FRACTION",
    "VAL_FRACTION",
    "Param",
    "Problem",
    "ProblemFamily",
    "ProblemSpec",
    "Table",
    "available_memory",
    "file_sha256",
    "get_problem",
    "is_table_path",
    "read_table",
    "split_sizes",
]
