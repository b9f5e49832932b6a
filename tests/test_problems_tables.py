"""A user's own rows as a problem: splits by the seed, scaling without leakage, every bad input."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from wdbench import Problem, read_table
from wdbench.problems import is_table_path, split_sizes

SPLITS = ("train", "val", "test")


def _frame(n: int = 100, d: int = 4, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    X = rng.normal(loc=3.0, scale=[1.0, 2.0, 5.0, 0.5][:d], size=(n, d))
    y = 7.0 + X @ np.arange(1.0, d + 1) + rng.normal(size=n)
    frame = pd.DataFrame(X, columns=[f"f{j}" for j in range(d)])
    frame["y"] = y
    return frame


def _rows(p: Problem) -> dict[str, list[int]]:
    rows: dict[str, list[int]] = p.meta["rows"]
    return rows


def test_default_splits_take_fractions_and_the_rest_trains() -> None:
    p = Problem.from_frame(_frame(100), target="y", dtype=torch.float64)
    assert (p.n_train, p.X_val.shape[0], p.X_test.shape[0], p.dim) == (60, 20, 20, 4)
    assert p.name == "table" and p.meta["target"] == "y"
    assert p.meta["features"] == ("f0", "f1", "f2", "f3")
    assert sorted(i for s in SPLITS for i in _rows(p)[s]) == list(range(100))


def test_split_sizes_honour_n_train_and_the_fractions() -> None:
    assert split_sizes(100) == (60, 20, 20)
    assert split_sizes(100, n_train=10) == (10, 20, 20)
    assert split_sizes(100, val_fraction=0.1, test_fraction=0.3) == (60, 10, 30)
    assert split_sizes(4) == (2, 1, 1)  # at least one held-out row each


def test_the_same_data_seed_draws_the_same_splits_and_another_seed_others() -> None:
    frame = _frame()
    a, b = (Problem.from_frame(frame, seed=11, dtype=torch.float64) for _ in range(2))
    assert _rows(a) == _rows(b)
    for s in SPLITS:
        for x, y in zip(a.split(s), b.split(s), strict=True):
            assert torch.equal(x, y)
    assert _rows(Problem.from_frame(frame, seed=12))["train"] != _rows(a)["train"]


def test_fewer_training_rows_keep_the_held_out_rows() -> None:
    frame = _frame()
    full = Problem.from_frame(frame, seed=5)
    small = Problem.from_frame(frame, seed=5, n_train=10)
    assert _rows(small)["val"] == _rows(full)["val"]
    assert _rows(small)["test"] == _rows(full)["test"]
    assert set(_rows(small)["train"]) <= set(_rows(full)["train"]) and small.n_train == 10


def test_scaling_uses_training_statistics_recomputed_with_numpy() -> None:
    frame = _frame()
    p = Problem.from_frame(frame, seed=3, dtype=torch.float64)
    X, y = frame[["f0", "f1", "f2", "f3"]].to_numpy(), frame["y"].to_numpy()
    tr = _rows(p)["train"]
    mean, std = X[tr].mean(0), X[tr].std(0, ddof=1)
    y_mean, y_std = y[tr].mean(), y[tr].std(ddof=1)
    for s in SPLITS:
        idx = _rows(p)[s]
        X_s, y_s = p.split(s)
        np.testing.assert_allclose(X_s.numpy(), (X[idx] - mean) / std, rtol=0, atol=1e-12)
        np.testing.assert_allclose(y_s.numpy(), (y[idx] - y_mean) / y_std, rtol=0, atol=1e-12)
    assert abs(float(p.y_train.mean())) < 1e-12 and abs(float(p.y_train.std()) - 1) < 1e-12


def test_held_out_rows_never_reach_the_scaling() -> None:
    """Wildly changing every validation and test row leaves the training split, and the
    statistics every split is scaled with, exactly as they were."""
    frame = _frame()
    p = Problem.from_frame(frame, seed=9, dtype=torch.float64)
    held_out = _rows(p)["val"] + _rows(p)["test"]
    poisoned = frame.copy()
    poisoned.iloc[held_out] = poisoned.iloc[held_out] * 1000.0 + 50.0
    q = Problem.from_frame(poisoned, seed=9, dtype=torch.float64)
    assert _rows(q) == _rows(p)
    assert torch.equal(p.X_train, q.X_train) and torch.equal(p.y_train, q.y_train)
    assert torch.equal(p.meta["x_mean"], q.meta["x_mean"])
    assert torch.equal(p.meta["x_std"], q.meta["x_std"])
    assert (p.meta["y_mean"], p.meta["y_std"]) == (q.meta["y_mean"], q.meta["y_std"])
    assert not torch.equal(p.X_val, q.X_val)


def test_a_feature_constant_on_the_training_rows_is_only_centred() -> None:
    frame = _frame()
    frame["f1"] = 2.5
    p = Problem.from_frame(frame, dtype=torch.float64)
    assert torch.all(p.X_train[:, 1] == 0) and torch.all(p.X_test[:, 1] == 0)


def test_from_arrays_matches_from_frame_and_takes_tensors() -> None:
    frame = _frame()
    X, y = frame.iloc[:, :-1].to_numpy(), frame["y"].to_numpy()
    a = Problem.from_frame(frame, seed=2, dtype=torch.float64)
    b = Problem.from_arrays(X, y, seed=2, dtype=torch.float64)
    c = Problem.from_arrays(torch.tensor(X), torch.tensor(y), seed=2, dtype=torch.float64)
    for s in SPLITS:
        for u, v, w in zip(a.split(s), b.split(s), c.split(s), strict=True):
            assert torch.equal(u, v) and torch.equal(u, w)
    assert Problem.from_arrays(X, y).dtype == torch.float32


def test_float32_is_the_float64_draw_rounded() -> None:
    frame = _frame()
    p64 = Problem.from_frame(frame, seed=1, dtype=torch.float64)
    p32 = Problem.from_frame(frame, seed=1, dtype=torch.float32)
    for s in SPLITS:
        for a, b in zip(p64.split(s), p32.split(s), strict=True):
            assert torch.equal(a.to(torch.float32), b)


def test_target_and_features_choose_columns() -> None:
    frame = _frame()
    p = Problem.from_frame(frame, target="f0", features=["f2", "y"], dtype=torch.float64)
    assert p.meta["target"] == "f0" and p.meta["features"] == ("f2", "y") and p.dim == 2
    tr = _rows(p)["train"]
    raw = frame["f2"].to_numpy()[tr]
    np.testing.assert_allclose(p.X_train[:, 0].numpy(), (raw - raw.mean()) / raw.std(ddof=1))


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_file_reads_as_its_frame_and_records_its_provenance(tmp_path: Path, suffix: str) -> None:
    frame = _frame(50)
    path = tmp_path / f"data{suffix}"
    frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path, index=False)
    table = read_table(path, features=["f0", "f3"])
    assert table.provenance() == {
        "path": str(path),
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "rows": 50,
        "columns": 5,
        "target": "y",
        "features": ["f0", "f3"],
    }
    p = Problem.from_table(table, seed=4, dtype=torch.float64)
    q = Problem.from_frame(frame, target="y", features=["f0", "f3"], seed=4, dtype=torch.float64)
    assert torch.allclose(p.X_train, q.X_train, rtol=0, atol=1e-12)
    assert p.meta["sha256"] == table.sha256 and p.meta["source"] == str(path)


def test_table_paths_are_recognised_by_suffix() -> None:
    assert is_table_path("a/b.csv") and is_table_path("X.PARQUET") and is_table_path("d.pq")
    assert not is_table_path("synthetic") and not is_table_path("synthetic:n_train=5")


def _write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


BAD_CSV = [
    ("empty", b"", {}, "the file is empty"),
    ("blank", "\n\n", {}, "the file is empty"),
    ("header only", "a,b\n", {}, "no rows (only a header)"),
    ("not utf-8", b"a,b\n\xff\xfe,\x80\n", {}, "unreadable"),
    ("long row", "a,b\n1,2\n3,4,5\n", {}, "unreadable"),
    ("one row", "a,b\n1,2\n", {}, "only 1 row"),
    ("one column", "y\n1\n2\n3\n", {}, "only 1 column"),
    ("duplicates", "a,b,a\n1,2,3\n4,5,6\n", {}, "duplicate column name 'a'"),
    ("unknown target", "a,b\n1,2\n3,4\n", {"target": "z"}, "no target column 'z'"),
    ("unknown feature", "a,b,c\n1,2,3\n3,4,5\n", {"features": ["a", "q"]}, "no feature column 'q'"),
    (
        "target as feature",
        "a,b,c\n1,2,3\n3,4,5\n",
        {"features": ["a", "c"]},
        "the target 'c' is also listed as a feature",
    ),
    ("non-numeric", "city,a,zip,y\nx,1,A1,2\nz,3,B2,4\n", {}, "non-numeric columns 'city', 'zip'"),
    (
        "missing",
        "a,b,y\n1,,1\n2,,3\n3,4,\n",
        {},
        "missing or infinite values in 'b' (2 missing), 'y' (1 missing)",
    ),
    (
        "infinite",
        "a,y\ninf,1\n-inf,2\n3,nan\n",
        {},
        "missing or infinite values in 'a' (2 infinite), 'y' (1 missing)",
    ),
    ("constant target", "a,y\n1,5\n2,5\n3,5\n", {}, "the target 'y' is constant (5 in every row)"),
]


@pytest.mark.parametrize(
    ("content", "kwargs", "message"),
    [case[1:] for case in BAD_CSV],
    ids=[case[0] for case in BAD_CSV],
)
def test_bad_csv_files_are_refused_in_one_line_naming_the_file(
    tmp_path: Path, content: str | bytes, kwargs: dict[str, object], message: str
) -> None:
    path = _write(tmp_path, "data.csv", content)
    with pytest.raises(ValueError) as info:
        read_table(path, **kwargs)  # type: ignore[arg-type]
    text = str(info.value)
    assert text.startswith(f"{path}: ") and message in text and "\n" not in text


def test_a_missing_file_or_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"nope\.csv: no such file"):
        read_table(tmp_path / "nope.csv")
    (tmp_path / "dir.csv").mkdir()
    with pytest.raises(ValueError, match=r"dir\.csv: not a file"):
        read_table(tmp_path / "dir.csv")
    with pytest.raises(ValueError, match="unknown file type"):
        read_table(_write(tmp_path, "data.txt", "a,b\n1,2\n"))


def test_a_damaged_parquet_file_is_unreadable(tmp_path: Path) -> None:
    path = _write(tmp_path, "data.parquet", b"PAR1 this is not parquet")
    with pytest.raises(ValueError, match=r"data\.parquet: unreadable as Parquet"):
        read_table(path)


def test_duplicate_parquet_columns_are_refused(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "data.parquet"
    pq.write_table(pa.table([pa.array([1.0, 2.0]), pa.array([3.0, 4.0])], names=["a", "a"]), path)
    with pytest.raises(ValueError, match="duplicate column name 'a'"):
        read_table(path)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_file_larger_than_the_memory_is_refused_before_it_is_read(
    tmp_path: Path, suffix: str
) -> None:
    frame = _frame(200)
    path = tmp_path / f"data{suffix}"
    frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path, index=False)
    with pytest.raises(ValueError, match="more than the 1 KiB available"):
        read_table(path, memory_limit=1024)
    assert read_table(path).n_rows == 200


def test_too_few_rows_for_the_splits_are_refused() -> None:
    frame = _frame(10)
    with pytest.raises(ValueError, match="10 rows are fewer than the splits need"):
        Problem.from_frame(frame, n_train=9)
    with pytest.raises(ValueError, match="fewer than the splits need"):
        Problem.from_frame(frame.iloc[:3])
    with pytest.raises(ValueError, match="val_fraction must be in"):
        Problem.from_frame(frame, val_fraction=0.0)


def test_a_target_constant_on_the_training_rows_is_refused() -> None:
    frame = _frame(10)
    frame["y"] = 1.0
    frame.loc[0, "y"] = 2.0
    seeds = [
        s
        for s in range(40)
        if 0 not in Problem.from_frame(_frame(10), seed=s).meta["rows"]["train"]
    ]
    with pytest.raises(ValueError, match="constant on the 6 training rows of data seed"):
        Problem.from_frame(frame, seed=seeds[0])


@pytest.mark.parametrize(
    ("X", "y", "message"),
    [
        (np.ones((5, 2)), np.ones(4), "X must be \\[rows, features\\] and y \\[rows\\]"),
        (np.ones(5), np.ones(5), "X must be"),
        (np.ones((1, 2)), np.ones(1), "only 1 row"),
        (np.ones((5, 0)), np.arange(5.0), "no feature columns"),
        (np.array([["a", "b"], ["c", "d"]]), np.arange(2.0), "X is not numeric"),
        (np.array([[1.0, np.nan], [2.0, 3.0]]), np.arange(2.0), "'x1' \\(1 missing\\)"),
        (np.ones((5, 2)), np.full(5, 3.0), "the target 'y' is constant"),
    ],
)
def test_bad_arrays_are_refused(X: np.ndarray, y: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=f"^arrays: .*{message}"):
        Problem.from_arrays(X, y)


def test_a_frame_names_itself_in_its_errors() -> None:
    frame = _frame()
    frame["name"] = "x"
    with pytest.raises(ValueError, match=r"^data frame: non-numeric column 'name'"):
        Problem.from_frame(frame, target="y")


def test_nullable_and_boolean_columns_are_numbers_and_their_gaps_are_counted() -> None:
    frame = pd.DataFrame(
        {
            "n": pd.array([1, None, 3, 4], dtype="Int64"),
            "flag": [True, False, True, False],
            "y": [1.0, 2.0, 3.0, 5.0],
        }
    )
    with pytest.raises(ValueError, match=r"'n' \(1 missing\)"):
        Problem.from_frame(frame)
    frame["n"] = pd.array([1, 2, 3, 4], dtype="Int64")
    p = Problem.from_frame(frame, dtype=torch.float64)
    assert p.dim == 2 and p.meta["features"] == ("n", "flag")
