"""A categorical target makes a classification table: sorted classes, class-index labels, features
scaled with training rows only, and every class checked — too rare, one class, missing values."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from wdbench import Problem, read_table
from wdbench.problems import MIN_CLASS_ROWS

SPLITS = ("train", "val", "test")


def _frame(n: int = 90, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    X = rng.normal(loc=2.0, scale=[1.0, 3.0, 0.5], size=(n, 3))
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    kinds = np.array(["setosa", "virginica", "versicolor"])
    frame["kind"] = kinds[np.arange(n) % 3]
    return frame


def _rows(p: Problem, split: str) -> list[int]:
    rows: list[int] = p.meta["rows"][split]
    return rows


def test_a_text_target_becomes_sorted_classes_and_long_labels() -> None:
    frame = _frame()
    p = Problem.from_frame(frame, seed=4, dtype=torch.float64)
    assert p.task == "classification" and p.n_classes == 3
    assert p.meta["classes"] == ("setosa", "versicolor", "virginica")
    names = np.array(p.meta["classes"])
    for split in SPLITS:
        y_s = p.split(split)[1]
        assert y_s.dtype == torch.long
        assert list(names[y_s.numpy()]) == list(frame["kind"].iloc[_rows(p, split)])


def test_features_are_scaled_with_training_rows_only_and_labels_are_not() -> None:
    frame = _frame()
    p = Problem.from_frame(frame, seed=7, dtype=torch.float64)
    X = frame[["a", "b", "c"]].to_numpy()
    tr = _rows(p, "train")
    mean, std = X[tr].mean(0), X[tr].std(0, ddof=1)
    for split in SPLITS:
        np.testing.assert_allclose(
            p.split(split)[0].numpy(), (X[_rows(p, split)] - mean) / std, rtol=0, atol=1e-12
        )
    assert "y_mean" not in p.meta and set(p.y_train.tolist()) == {0, 1, 2}


def test_float32_casts_the_features_and_keeps_the_labels() -> None:
    p = Problem.from_frame(_frame(), seed=1)
    assert p.X_train.dtype == torch.float32 and p.y_train.dtype == torch.long


def test_booleans_and_categories_are_classes_and_numbers_stay_regression() -> None:
    frame = _frame()
    flags = frame.assign(kind=frame["a"] > 2.0)
    p = Problem.from_frame(flags, seed=0)
    assert p.meta["classes"] == ("False", "True")
    assert torch.equal(p.y_train, torch.tensor((flags["a"] > 2.0).to_numpy()[_rows(p, "train")]))
    cats = frame.assign(kind=pd.Categorical(frame["kind"], categories=["z", *set(frame["kind"])]))
    assert Problem.from_frame(cats).meta["classes"] == ("setosa", "versicolor", "virginica")
    numbers = frame.assign(kind=np.arange(len(frame)) % 3)
    assert Problem.from_frame(numbers).task == "regression"


def test_numbers_of_several_types_sort_as_text() -> None:
    frame = _frame(30)
    frame["kind"] = pd.Series([1, "one", 2.5] * 10, dtype=object)
    assert Problem.from_frame(frame).meta["classes"] == ("1", "2.5", "one")


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_file_records_its_task_and_each_class_with_its_rows(tmp_path: Path, suffix: str) -> None:
    frame = _frame(91)
    path = tmp_path / f"iris{suffix}"
    frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path, index=False)
    table = read_table(path)
    record = table.provenance()
    assert table.task == record["task"] == "classification"
    assert record["classes"] == [
        {"name": "setosa", "rows": 31},
        {"name": "versicolor", "rows": 30},
        {"name": "virginica", "rows": 30},
    ]
    assert "task" not in read_table(path, target="c", features=["a", "b"]).provenance()


BAD_TARGETS = [
    ("one class", ["x"] * 12, "the target 'kind' has one class ('x' in every row)"),
    (
        "rare class",
        ["x", "y"] * 5 + ["z", "z"],
        f"class 'z' (2 rows) of the target 'kind' too rare: each class needs at least "
        f"{MIN_CLASS_ROWS} rows (one per split)",
    ),
    ("missing", ["x", "y", None] * 4, "missing or infinite values in 'kind' (4 missing)"),
]


@pytest.mark.parametrize(
    ("labels", "message"), [c[1:] for c in BAD_TARGETS], ids=[c[0] for c in BAD_TARGETS]
)
def test_bad_class_targets_are_refused_in_one_line(
    tmp_path: Path, labels: list[str | None], message: str
) -> None:
    frame = _frame(len(labels)).assign(kind=labels)
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(ValueError) as info:
        read_table(path)
    text = str(info.value)
    assert text.startswith(f"{path}: ") and message in text and "\n" not in text


def test_missing_features_and_target_values_are_counted_together() -> None:
    frame = _frame(12).assign(kind=["x", "y", None] * 4)
    frame.loc[0, "b"] = np.nan
    with pytest.raises(ValueError, match=r"'b' \(1 missing\), 'kind' \(4 missing\)"):
        Problem.from_frame(frame)


def test_text_features_are_refused_beside_a_text_target() -> None:
    frame = _frame().assign(city="Paris")
    with pytest.raises(ValueError, match="non-numeric column 'city'"):
        Problem.from_frame(frame, target="kind")


def _seed_where(frame: pd.DataFrame, wanted: Callable[[set[str]], bool], **kwargs: Any) -> int:
    """The first data seed whose training rows' labels satisfy ``wanted`` (the rows a seed
    draws depend only on the number of rows, so a numeric target finds them)."""
    labels = frame["kind"].to_numpy()
    numbered = frame.assign(kind=np.arange(len(frame), dtype=float))
    for seed in range(500):
        rows = Problem.from_frame(numbered, seed=seed, **kwargs).meta["rows"]["train"]
        if wanted(set(labels[rows])):
            return seed
    raise AssertionError("no such seed")


def test_a_draw_whose_training_rows_miss_a_class_is_refused() -> None:
    frame = _frame(40).assign(kind=["x", "y"] * 17 + ["rare"] * 6)
    seed = _seed_where(frame, lambda present: "rare" not in present)
    with pytest.raises(ValueError, match=rf"class 'rare' \(6 rows\) of the target 'kind' too "
                       rf"rare: none on the 24 training rows of data seed {seed}"):  # fmt: skip
        Problem.from_frame(frame, seed=seed)


def test_a_draw_with_one_class_on_its_training_rows_is_refused() -> None:
    frame = _frame(20).assign(kind=["x"] * 14 + ["y"] * 6)
    seed = _seed_where(frame, lambda present: present == {"x"}, n_train=3)
    with pytest.raises(ValueError, match=rf"one class \('x'\) on the 3 training rows of data seed "
                       rf"{seed}$"):  # fmt: skip
        Problem.from_frame(frame, seed=seed, n_train=3)
