"""The ``digits`` classification problem, against scikit-learn's own copy of the data."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from wdbench.problems import PROBLEMS, Problem, ProblemSpec


def test_digits_rows_are_sklearns_disjoint_and_cover_the_data() -> None:
    X_raw, y_raw = load_digits(return_X_y=True)
    p = ProblemSpec.parse("digits").build(5, torch.float64)
    rows = p.meta["rows"]
    assert (len(rows["train"]), len(rows["val"]), len(rows["test"])) == (200, 300, 1297)
    every = rows["train"] + rows["val"] + rows["test"]
    assert sorted(every) == list(range(1797))
    for split in ("train", "val", "test"):
        X, y = p.split(split)
        assert y.dtype == torch.long
        np.testing.assert_array_equal(y.numpy(), y_raw[rows[split]])
        # standardized with the training rows' statistics only
        tr = X_raw[rows["train"]]
        std = tr.std(0, ddof=1)
        expected = (X_raw[rows[split]] - tr.mean(0)) / np.where(std > 0, std, 1.0)
        np.testing.assert_allclose(X.numpy(), expected, rtol=0, atol=1e-12)
    assert p.n_classes == 10 and p.task == "classification" and p.dim == 64


def test_digits_labels_stay_integer_when_cast_and_seeds_differ() -> None:
    p32 = Problem.digits(seed=1)
    assert p32.X_train.dtype == torch.float32 and p32.y_train.dtype == torch.long
    p64 = p32.to(dtype=torch.float64)
    assert p64.X_train.dtype == torch.float64 and torch.equal(p64.y_train, p32.y_train)
    other = Problem.digits(seed=2)
    assert not torch.equal(p32.y_train, other.y_train)
    assert Problem.digits(n_train=50, seed=1).n_train == 50


def test_regression_problems_say_so() -> None:
    p = PROBLEMS["synthetic"].build(0)
    assert p.n_classes == 0 and p.task == "regression"


@pytest.mark.parametrize(
    ("params", "match"),
    [({"n_train": 1}, "n_train"), ({"n_train": 1500, "n_val": 297}, "test rows")],
)
def test_digits_refuses_sizes_that_leave_no_rows(params: dict[str, int], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ProblemSpec.of("digits", params)


def test_problem_refuses_labels_of_the_wrong_kind() -> None:
    X = torch.zeros(4, 2, dtype=torch.float64)
    y_float, y_int = torch.zeros(4, dtype=torch.float64), torch.zeros(4, dtype=torch.long)
    with pytest.raises(ValueError, match=r"torch\.long"):
        Problem("c", X, y_float, X, y_float, X, y_float, n_classes=3)
    with pytest.raises(ValueError, match="float tensor"):
        Problem("r", X, y_int, X, y_int, X, y_int)
    with pytest.raises(ValueError, match=">= 2"):
        Problem("c", X, y_int, X, y_int, X, y_int, n_classes=1)
