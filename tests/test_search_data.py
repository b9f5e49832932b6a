"""A study on the user's own file: end to end with report, splits by data seed, provenance in
run.json and the report, a changed file refused, and every bad file refused in one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from reports.conclusions import _dense_truth
from reports.load import RunData
from reports.sections import data_rows
from studies.cli import parse_args
from studies.crn import StudySeeds
from studies.problem import StudyProblem
from studies.replicate import ReplicationSeeds
from studies.search import main
from wdbench import ProblemSpec
from wdbench.problems._tabular import frame_table

TINY = ["--n-trials", "3", "--seeds", "2", "--epochs", "3", "--grid-points", "3", "--batch", "3"]


def _frame(n: int = 80, d: int = 5, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * np.arange(1, d + 1) + 10
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(d)])
    frame["price"] = 100 + X @ rng.normal(size=d) + rng.normal(size=n)
    return frame


def _write(frame: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return path


def _listing(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``root`` with its size and modification time (ns)."""
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
    }


def _one_line(code: int, err: str) -> str:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_study_on_a_file_runs_end_to_end_with_its_provenance_in_the_report(
    tmp_path: Path, suffix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import hashlib

    path = _write(_frame(), tmp_path / f"houses{suffix}")
    out = tmp_path / "runs"
    argv = [
        "--problem",
        str(path),
        "--target",
        "price",
        "--features",
        "x0,x2,x4",
        "--out",
        str(out),
    ]
    assert main([*argv, *TINY]) == 0
    run_dir = out / "weight-decay"
    data = json.loads((run_dir / "run.json").read_text())["data"]
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    assert data["kind"] == "file" and data["path"] == str(path.resolve())
    assert (data["sha256"], data["rows"], data["columns"]) == (sha, 80, 6)
    assert data["target"] == "price" and data["features"] == ["x0", "x2", "x4"]
    assert data["splits"] == {"train": 48, "val": 16, "test": 16} and data["dim"] == 3
    report = (run_dir / "report" / "index.html").read_text()
    assert sha in report and "48 · validation 16 · test 16" in report
    assert "x0, x2, x4" in report and str(path.resolve()) in report
    trials = pd.read_parquet(run_dir / "trials.parquet")
    assert (trials["state"] == "COMPLETE").sum() >= 3


@pytest.mark.slow
def test_the_same_data_seed_draws_the_same_splits_run_after_run(tmp_path: Path) -> None:
    path = _write(_frame(), tmp_path / "houses.csv")
    for name in ("a", "b"):
        argv = ["--problem", str(path), "--out", str(tmp_path / name), "--no-report", *TINY]
        assert main(argv) == 0
    a, b = (pd.read_parquet(tmp_path / n / "weight-decay" / "selected.parquet") for n in "ab")
    pd.testing.assert_frame_equal(a, b)  # test losses too: the same test rows, trained the same


def test_each_data_seed_draws_its_own_split_and_the_same_one_every_time(tmp_path: Path) -> None:
    path = _write(_frame(), tmp_path / "houses.csv")
    settings = parse_args(["--problem", str(path), "--n-train", "30", "--seeds", "3"])
    seeds = StudySeeds.from_settings(settings)
    first = StudyProblem.from_settings(settings).draws(seeds.data_seeds)
    again = StudyProblem.from_settings(settings).draws(seeds.data_seeds)
    rows = [p.meta["rows"] for p in first]
    assert rows == [p.meta["rows"] for p in again]
    assert rows[0]["train"] != rows[1]["train"] != rows[2]["train"]
    assert all(p.n_train == 30 and p.X_val.shape[0] == 16 for p in first)


def test_the_draws_of_the_last_seeds_are_drawn_once() -> None:
    """The grid and the selection ask again for the search's draws: the same problems come
    back (equal to fresh draws); other seeds are drawn afresh."""
    problem = StudyProblem.from_settings(parse_args([]))
    first = problem.draws((1, 2))
    again = problem.draws([1, 2])
    assert all(a is b for a, b in zip(first, again, strict=True)) and again is not first
    other = problem.draws((3,))
    assert other[0] is not first[0]
    fresh = StudyProblem.from_settings(parse_args([])).draw(1)
    assert torch.equal(problem.draws((1, 2))[0].X_val, fresh.X_val)
    assert problem.draws((1, 2))[0] is not first[0]  # only the last call's are kept


def _train_labels(frame: pd.DataFrame, data_seeds: tuple[int, ...]) -> list[set[str]]:
    """The labels on the training rows each data seed draws (rows depend on the row count only)."""
    numbered = frame.assign(kind=np.arange(len(frame), dtype=float))
    labels = frame["kind"].to_numpy()
    return [
        set(labels[StudyProblem(str(s), table=frame_table(numbered)).draw(s).meta["rows"]["train"]])
        for s in data_seeds
    ]


def test_a_class_missing_from_a_replication_draw_is_refused_before_anything_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = _frame().assign(kind=["cat", "dog"] * 38 + ["emu"] * 4)
    path = _write(frame, tmp_path / "pets.csv")
    for seed in range(200):  # search draws that all hold 'emu', a replication draw that does not
        seeds = StudySeeds.from_settings(parse_args(["--seeds", "2", "--seed", str(seed)]))
        fresh = ReplicationSeeds.derive(seeds, 20).data_seeds
        if all("emu" in s for s in _train_labels(frame, seeds.data_seeds)) and not all(
            "emu" in s for s in _train_labels(frame, fresh)
        ):
            break
    else:
        raise AssertionError("no such --seed")
    out = tmp_path / "runs"
    argv = ["--problem", str(path), "--seed", str(seed), "--out", str(out), *TINY]
    line = _one_line(main(argv), capsys.readouterr().err)
    assert "class 'emu' (4 rows) of the target 'kind' too rare: none on the 48 training" in line
    assert not out.exists()


@pytest.mark.slow
def test_a_rerun_on_a_changed_file_is_refused_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(_frame(), tmp_path / "houses.csv")
    out = tmp_path / "runs"
    argv = ["--problem", str(path), "--out", str(out), "--no-report", *TINY]
    assert main(argv) == 0
    capsys.readouterr()
    _write(_frame(seed=1), path)
    before = _listing(out)
    line = _one_line(main(argv), capsys.readouterr().err)
    assert "SHA-256" in line and str(path.resolve()) in line and "must not mix" in line
    assert _listing(out) == before
    (out / "weight-decay" / "run.json").unlink()  # the study's own record still refuses it
    line = _one_line(main(argv), capsys.readouterr().err)
    assert "SHA-256" in line


@pytest.mark.slow
def test_a_parameterized_problem_is_recorded_with_every_parameter(tmp_path: Path) -> None:
    out = tmp_path / "runs"
    problem = "synthetic:dim=30,sparsity=3,n_train=20"
    assert main(["--problem", problem, "--out", str(out), "--no-report", *TINY]) == 0
    info = json.loads((out / "weight-decay" / "run.json").read_text())
    assert info["problem"] == "synthetic:n_train=20,dim=30,sparsity=3"
    data = info["data"]
    assert data["kind"] == "registered" and data["name"] == "synthetic"
    assert data["params"]["rho"] == 0.0 and data["params"]["sparsity"] == 3
    assert data["splits"] == {"train": 20, "val": 100, "test": 1000}
    assert (data["true_nonzero"], data["dim"]) == (3, 30)


def _bad_files(tmp: Path) -> dict[str, tuple[Path, list[str], str]]:
    """name → (file, extra flags, expected words of the one line), written under ``tmp``."""
    frame = _frame(20)

    def raw(name: str, content: str | bytes) -> Path:
        path = tmp / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        return path

    nan, inf = frame.copy(), frame.copy()
    nan.loc[[1, 4], "x3"] = np.nan
    inf.loc[2, "price"] = np.inf
    const = frame.assign(price=4.0)
    text = frame.assign(city="Paris", zip="7500x")[["city", "x0", "zip", "price"]]
    one_class = frame.assign(kind="cat")
    rare = frame.assign(kind=["cat", "dog"] * (len(frame) // 2 - 1) + ["emu"] * 2)
    return {
        "missing file": (tmp / "nope.csv", [], "no such file"),
        "empty file": (raw("empty.csv", b""), [], "the file is empty"),
        "unreadable file": (raw("binary.csv", b"a,b\n\xff\xfe\x00,\x81\n"), [], "unreadable"),
        "damaged parquet": (raw("x.parquet", b"PAR1 not really"), [], "unreadable"),
        "unknown target": (_write(frame, tmp / "t.csv"), ["--target", "cost"], "no target column"),
        "unknown feature": (_write(frame, tmp / "f.csv"), ["--features", "x1,x9"], "'x9'"),
        "non-numeric": (_write(text, tmp / "n.csv"), [], "non-numeric columns 'city', 'zip'"),
        "missing values": (_write(nan, tmp / "nan.csv"), [], "'x3' (2 missing)"),
        "infinities": (_write(inf, tmp / "inf.parquet"), [], "'price' (1 infinite)"),
        "constant target": (_write(const, tmp / "c.csv"), [], "the target 'price' is constant"),
        "one class": (_write(one_class, tmp / "k.csv"), [], "the target 'kind' has one class"),
        "rare class": (_write(rare, tmp / "e.csv"), [], "class 'emu' (2 rows) of the target"),
        "too few rows": (
            _write(frame, tmp / "r.csv"),
            ["--n-train", "15"],
            "fewer than the splits",
        ),
        "single row": (raw("row.csv", "a,b\n1,2\n"), [], "only 1 row"),
        "single column": (raw("col.csv", "y\n1\n2\n3\n"), [], "only 1 column"),
        "duplicate columns": (raw("dup.csv", "a,b,a\n1,2,3\n4,5,6\n"), [], "duplicate column"),
    }


BAD = [
    "missing file", "empty file", "unreadable file", "damaged parquet", "unknown target",
    "unknown feature", "non-numeric", "missing values", "infinities", "constant target",
    "one class", "rare class", "too few rows", "single row", "single column", "duplicate columns",
]  # fmt: skip


def test_the_bad_file_cases_are_all_listed(tmp_path: Path) -> None:
    assert sorted(_bad_files(tmp_path)) == sorted(BAD)


@pytest.mark.parametrize("case", BAD)
def test_every_bad_file_exits_2_with_one_line_naming_it_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    path, extra, words = _bad_files(data)[case]
    before = _listing(tmp_path)
    out = tmp_path / "runs"
    code = main(["--problem", str(path), *extra, "--out", str(out), *TINY])
    line = _one_line(code, capsys.readouterr().err)
    assert str(path) in line and words in line
    assert not out.exists() and _listing(tmp_path) == before


def test_a_file_larger_than_the_memory_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import wdbench.problems._tabular as tabular

    path = _write(_frame(), tmp_path / "big.csv")
    monkeypatch.setattr(tabular, "available_memory", lambda: 2048)
    out = tmp_path / "runs"
    line = _one_line(main(["--problem", str(path), "--out", str(out)]), capsys.readouterr().err)
    assert str(path) in line and "more than the 2 KiB available" in line
    assert not out.exists()


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--problem", "synthetic:rho=2"], "rho must be in (-1, 1)"),
        (["--problem", "synthetic:width=3"], "has no parameter 'width'"),
        (["--problem", "diabetes:n_train=1000"], "must leave test rows"),
        (["--problem", "mnist"], "'mnist' is not one of synthetic, synthetic-sparse, diabetes"),
        (["--target", "y"], "--target applies to --problem FILE"),
        (["--problem", "diabetes", "--n-train", "30"], "write NAME:n_train=N"),
        (["--val-fraction", "1.5"], "must be in (0, 1)"),
        (["--features", "a,,b"], "comma-separated column names"),
    ],
)
def test_bad_problem_flags_exit_2_and_write_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], words: str
) -> None:
    out = tmp_path / "runs"
    line = _one_line(main([*argv, "--out", str(out)]), capsys.readouterr().err)
    assert words in line and not out.exists()


def test_toml_takes_the_problem_as_a_table_or_a_string(tmp_path: Path) -> None:
    config = tmp_path / "study.toml"
    config.write_text(
        'features = ["a", "b"]\n[problem]\nname = "synthetic"\nn_train = 100\nrho = 0.5\n'
    )
    with pytest.raises(Exception, match="--features applies to --problem FILE"):
        parse_args(["--config", str(config)])
    config.write_text('[problem]\nname = "synthetic"\nn_train = 100\nrho = 0.5\n')
    settings = parse_args(["--config", str(config)])
    assert ProblemSpec.parse(settings.problem) == ProblemSpec.parse("synthetic:n_train=100,rho=0.5")
    config.write_text('problem = "data.csv"\ntarget = "y"\nfeatures = ["a", "b"]\n')
    settings = parse_args(["--config", str(config)])
    assert (settings.problem, settings.target, settings.features) == ("data.csv", "y", ("a", "b"))


def test_help_lists_every_problem_with_its_description(capsys: pytest.CaptureFixture[str]) -> None:
    import wdbench

    with pytest.raises(SystemExit):
        parse_args(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    for name, family in wdbench.PROBLEMS.items():
        assert f"{name} {family.description}" in out
        assert "parameters: " + ", ".join(p.name for p in family.params) in out
    assert "FILE.csv|.parquet" in out and "--target" in out


def test_report_rows_show_the_parameters_or_the_file() -> None:
    registered = {
        "kind": "registered",
        "description": "the lesson's data",
        "params": {"n_train": 100, "rho": 0.5},
        "splits": {"train": 100, "val": 100, "test": 1000},
    }
    rows = dict(data_rows(registered))
    assert rows["data: parameters"] == "n_train=100, rho=0.5"
    assert rows["data: splits (rows)"].startswith("train 100 · validation 100 · test 1000")
    file = {"kind": "file", "path": "/d/h.csv", "sha256": "ab12", "rows": 80, "columns": 6,
            "target": "price", "features": [f"f{i}" for i in range(25)]}  # fmt: skip
    rows = dict(data_rows(file))
    assert rows["data: SHA-256"] == "ab12" and rows["data: rows × columns"] == "80 × 6"
    assert rows["data: features"].endswith("f19, … (25 in all)")
    assert data_rows(None) == []


@pytest.mark.parametrize(
    ("run", "dense"),
    [
        ({"problem": "synthetic", "data": {"true_nonzero": 3, "dim": 30}}, False),
        (
            {"problem": "synthetic-sparse:sparsity=200", "data": {"true_nonzero": 200, "dim": 200}},
            True,
        ),
        ({"problem": "/d/h.csv", "data": {"true_nonzero": None, "dim": 5}}, None),
        ({"problem": "synthetic"}, True),
        ({"problem": "synthetic-sparse"}, False),
    ],
)
def test_the_lore_reads_the_truth_from_the_recorded_weights(
    run: dict[str, object], dense: bool | None
) -> None:
    data = RunData(Path("x"), dict(run), pd.DataFrame(), None, None, None, None)
    assert _dense_truth(data, str(run["problem"])) is dense
