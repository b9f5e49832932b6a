"""Registry names the command line offers, readable without importing torch.

``--help`` and every refusal of bad input answer before torch is imported, so the names, one-line
descriptions and parameter names of ``wdbench.PROBLEMS``, the names of ``wdbench.PENALTIES`` and
the file suffixes ``--problem`` reads as tables are listed here too; a test asserts that they are
the library's, in the same order. ``OPTIMIZERS``
(``wdbench.optimizers.OPTIMIZERS``, asserted the same way) and ``DECAYS`` (where the penalty goes
relative to the optimizer: ``studies.space``) are the study's other choices; ``MODELS`` are
``wdbench.config.MODELS`` (asserted the same way).
"""

from __future__ import annotations

__all__ = [
    "DECAYS",
    "MODELS",
    "OPTIMIZERS",
    "PENALTIES",
    "PROBLEMS",
    "PROBLEM_PARAMS",
    "TABLE_SUFFIXES",
]

#: Registered problems: name → one-line description (``wdbench.PROBLEMS``).
PROBLEMS = {
    "synthetic": "the lesson's data: y = 0.1 + Σ 0.01·xᵢ + ε, x ~ N(0, I₂₀₀), 50 training rows",
    "synthetic-sparse": "the lesson's data with 10 of the 200 true weights non-zero",
    "diabetes": "scikit-learn's diabetes data, 285 polynomial features, 50 training rows",
    "digits": "scikit-learn's handwritten digits: 8×8 pixels, 10 classes, 200 training rows",
}
_SYNTHETIC = ("n_train", "n_val", "n_test", "dim", "noise", "sparsity", "rho", "true_w", "true_b")
#: Parameters of each registered problem (``wdbench.PROBLEMS[name].params``), for ``--help``.
PROBLEM_PARAMS = {
    "synthetic": _SYNTHETIC,
    "synthetic-sparse": _SYNTHETIC,
    "diabetes": ("n_train", "degree", "n_val"),
    "digits": ("n_train", "n_val"),
}
PENALTIES = ("none", "l2", "l1", "elastic")
#: ``--problem PATH`` with one of these suffixes is a table file (``wdbench.problems``).
TABLE_SUFFIXES = (".csv", ".parquet", ".pq")
OPTIMIZERS = ("sgd", "momentum", "adam")
DECAYS = ("coupled", "decoupled")
#: Model families (``wdbench.config.MODELS``): the lesson's linear model, or a ReLU network.
MODELS = ("linear", "mlp")
