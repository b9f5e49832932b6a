"""The row-space kernel stops a diverging run at the same epoch as ``wdbench.train``.

w = κᵗ·w₀⊥ + Xᵀα can overflow while α and b are still finite, so checking only α and b
reported diverged runs 1–4 epochs late.
"""

from __future__ import annotations

import pytest

from wdbench import Problem, TrainConfig, train, train_population


@pytest.mark.parametrize("backend", ["torch", "auto"])  # auto: the compiled kernel's row space
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_rowspace_epochs_run_of_diverged_runs_match_train(dtype: str, backend: str) -> None:
    problems = [Problem.synthetic(seed=s) for s in (1, 2)]
    configs = [
        TrainConfig(penalty=p, lam=lam, lr=lr, epochs=30, seed=3, dtype=dtype)  # type: ignore[arg-type]
        for lr in (0.01, 0.03, 0.05, 0.1)
        for p, lam in (("none", 0.0), ("l2", 1.0), ("l2", 30.0), ("l2", 100.0), ("l2", 300.0))
    ]
    got = train_population(problems, configs, keep_weights=False, backend=backend)
    diverged = 0
    for s, problem in enumerate(problems):
        for k, config in enumerate(configs):
            ref = train(problem, config, curves=False)
            assert int(got.epochs_run[s, k]) == ref.epochs_run, (s, config.lr, config.lam)
            assert bool(got.diverged[s, k]) == (ref.status == "diverged")
            diverged += ref.status == "diverged"
    assert diverged >= 4  # the grid reaches well past the stable step sizes
