"""Problems: the lesson's synthetic draw and the diabetes data, their splits, seeds and dtypes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch

from wdbench import PROBLEMS, Problem

SPLITS = ("train", "val", "test")


def _tensors(problem: Problem) -> list[torch.Tensor]:
    return [t for split in SPLITS for t in problem.split(split)]


def _identical(a: Problem, b: Problem) -> bool:
    return all(torch.equal(x, y) for x, y in zip(_tensors(a), _tensors(b), strict=True))


def test_synthetic_defaults_are_the_lessons_data() -> None:
    p = Problem.synthetic()
    assert p.name == "synthetic" and p.name in PROBLEMS
    assert (p.n_train, p.dim) == (50, 200)
    assert p.X_val.shape == (100, 200) and p.X_test.shape == (1000, 200)
    assert p.y_train.shape == (50,)
    assert p.dtype == torch.float32
    assert torch.equal(p.meta["true_w"], torch.full((200,), 0.01, dtype=torch.float64))
    assert p.meta["true_b"] == 0.1 and p.meta["noise"] == 0.01


def test_synthetic_labels_follow_the_linear_model_with_the_stated_noise() -> None:
    """y − (b* + X·w*) is the noise ε ~ N(0, 0.01²): check its scale on the 1000 test rows."""
    p = Problem.synthetic(dtype=torch.float64)
    eps = p.y_test - (p.X_test @ p.meta["true_w"] + p.meta["true_b"])
    assert abs(float(eps.std()) - 0.01) < 0.001
    assert abs(float(eps.mean())) < 0.001
    assert abs(float(p.X_test.std()) - 1.0) < 0.01


def test_books_setting_is_expressible() -> None:
    p = Problem.synthetic(n_train=20, true_b=0.05, dtype=torch.float64)
    assert p.n_train == 20 and p.meta["true_b"] == 0.05
    eps = p.y_test - (p.X_test @ p.meta["true_w"] + 0.05)
    assert float(eps.abs().max()) < 0.06  # 6σ of the noise: the bias really is 0.05


@pytest.mark.parametrize("k", [0, 1, 5, 200])
def test_sparsity_keeps_k_nonzero_true_weights(k: int) -> None:
    p = Problem.synthetic(sparsity=k)
    w_star = p.meta["true_w"]
    assert int((w_star != 0).sum()) == k
    assert torch.all(w_star[w_star != 0] == 0.01)
    assert p.name == "synthetic-sparse"


def test_sparse_support_depends_on_the_seed() -> None:
    a = Problem.synthetic(sparsity=10, seed=0).meta["true_w"]
    b = Problem.synthetic(sparsity=10, seed=1).meta["true_w"]
    assert not torch.equal(a != 0, b != 0)


@pytest.mark.parametrize(
    ("changed", "kept"),
    [
        ({"n_test": 7}, ("train", "val")),
        ({"n_train": 20}, ("val", "test")),
        ({"n_val": 3}, ("train", "test")),
    ],
)
def test_splits_are_separate_draws(changed: dict[str, Any], kept: tuple[str, ...]) -> None:
    """Changing one split's size leaves the other splits' rows untouched."""
    base = Problem.synthetic(seed=3)
    other = Problem.synthetic(seed=3, **changed)
    for split in kept:
        for x, y in zip(base.split(split), other.split(split), strict=True):
            assert torch.equal(x, y)


def test_splits_do_not_share_rows() -> None:
    p = Problem.synthetic(n_train=5, n_val=5, n_test=5)
    rows = torch.cat([p.X_train, p.X_val, p.X_test])
    assert torch.unique(rows, dim=0).shape[0] == 15


@pytest.mark.parametrize(
    "build",
    [
        lambda: Problem.synthetic(seed=5),
        lambda: Problem.synthetic(sparsity=3, seed=5),
        lambda: Problem.diabetes(seed=5),
    ],
    ids=["synthetic", "synthetic-sparse", "diabetes"],
)
def test_problems_leave_the_global_rng_untouched(build: Callable[[], Problem]) -> None:
    before = torch.random.get_rng_state()
    build()
    assert torch.equal(before, torch.random.get_rng_state())


def test_synthetic_ignores_the_global_rng() -> None:
    torch.manual_seed(1)
    a = Problem.synthetic(seed=2)
    torch.manual_seed(99)
    b = Problem.synthetic(seed=2)
    assert _identical(a, b)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_same_seed_gives_identical_synthetic_data(dtype: torch.dtype) -> None:
    a, b = Problem.synthetic(seed=4, dtype=dtype), Problem.synthetic(seed=4, dtype=dtype)
    assert _identical(a, b)


def test_different_seeds_give_different_synthetic_data() -> None:
    a, b = Problem.synthetic(seed=0), Problem.synthetic(seed=1)
    for x, y in zip(_tensors(a), _tensors(b), strict=True):
        assert not torch.equal(x, y)


def test_float32_is_the_float64_draw_rounded() -> None:
    p64 = Problem.synthetic(seed=2, dtype=torch.float64)
    p32 = Problem.synthetic(seed=2, dtype=torch.float32)
    assert p32.dtype == torch.float32 and p64.dtype == torch.float64
    for x32, x64 in zip(_tensors(p32), _tensors(p64), strict=True):
        assert x32.dtype == torch.float32
        assert torch.equal(x32, x64.to(torch.float32))


def test_to_casts_every_tensor_and_returns_self_when_nothing_changes() -> None:
    p = Problem.synthetic(n_test=10)
    assert p.to("cpu") is p and p.to(dtype=torch.float32) is p
    q = p.to(dtype=torch.float64)
    assert q is not p and all(t.dtype == torch.float64 for t in _tensors(q))
    assert q.meta == p.meta and q.name == p.name


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_to_cuda_moves_every_split_and_keeps_values() -> None:
    p = Problem.synthetic(n_test=10, dtype=torch.float64)
    q = p.to("cuda")
    assert q.device.type == "cuda"
    for x, y in zip(_tensors(p), _tensors(q), strict=True):
        assert y.device.type == "cuda" and torch.equal(x, y.cpu())


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"n_train": 0}, "n_train"),
        ({"n_val": 0}, "n_val"),
        ({"n_test": 0}, "n_test"),
        ({"dim": 0}, "dim"),
        ({"noise": -1.0}, "noise"),
        ({"sparsity": 201}, "sparsity"),
        ({"sparsity": -1}, "sparsity"),
    ],
)
def test_invalid_synthetic_arguments_name_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        Problem.synthetic(**kwargs)


def test_split_rejects_unknown_names() -> None:
    with pytest.raises(ValueError, match="split"):
        Problem.synthetic().split("holdout")


@pytest.mark.parametrize(("degree", "n_features"), [(2, 65), (3, 285)])
def test_diabetes_has_more_features_than_training_rows(degree: int, n_features: int) -> None:
    p = Problem.diabetes(n_train=50, degree=degree, seed=0)
    assert p.name == "diabetes"
    assert p.dim == n_features > p.n_train == 50
    assert p.X_val.shape[0] == 100 and p.X_test.shape[0] == 442 - 150


def test_diabetes_is_standardized_with_training_statistics_only() -> None:
    p = Problem.diabetes(n_train=50, degree=2, seed=0, dtype=torch.float64)
    assert torch.allclose(p.X_train.mean(0), torch.zeros(p.dim, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(p.X_train.std(0), torch.ones(p.dim, dtype=torch.float64), atol=1e-12)
    assert abs(float(p.y_train.mean())) < 1e-12 and abs(float(p.y_train.std()) - 1) < 1e-12
    # Held-out splits reuse the training mean and scale, so they are only roughly standardized.
    for X, y in (p.split("val"), p.split("test")):
        assert float(X.mean(0).abs().max()) > 1e-3
        assert float((X.std(0) - 1).abs().max()) > 1e-3
        assert abs(float(y.mean())) > 1e-6


def test_diabetes_splits_partition_the_rows() -> None:
    """De-standardized targets of the three splits are exactly the data set's 442 targets."""
    from sklearn.datasets import load_diabetes

    p = Problem.diabetes(seed=1, dtype=torch.float64)
    y = torch.cat([p.y_train, p.y_val, p.y_test]) * p.meta["y_std"] + p.meta["y_mean"]
    y_all = torch.from_numpy(load_diabetes(return_X_y=True)[1]).to(torch.float64)
    assert torch.allclose(y.sort().values, y_all.sort().values, atol=1e-9)


def test_diabetes_split_is_decided_by_the_seed() -> None:
    assert _identical(Problem.diabetes(seed=2), Problem.diabetes(seed=2))
    a, b = Problem.diabetes(seed=2), Problem.diabetes(seed=3)
    assert not torch.equal(a.y_train, b.y_train)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_diabetes_honours_the_dtype(dtype: torch.dtype) -> None:
    p = Problem.diabetes(degree=1, dtype=dtype)
    assert all(t.dtype == dtype for t in _tensors(p))


@pytest.mark.parametrize(
    "kwargs", [{"degree": 0}, {"n_train": 1}, {"n_val": 0}, {"n_train": 400, "n_val": 42}]
)
def test_invalid_diabetes_arguments_are_value_errors(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Problem.diabetes(**kwargs)
