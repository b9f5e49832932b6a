"""Networks and classification in the study: the model flags, the problem's budget defaults, the
majority-class null model, comparisons on test accuracy, and a scaled-down digits study whose
printed and reported numbers are recomputed from its exported files."""

from __future__ import annotations

import contextlib
import dataclasses
import html as html_lib
import io
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

import wdbench
from reports.sections import data_rows
from reports.stats import compare
from reports.verdicts import NO_ORACLE, Budget, verdicts
from studies import names
from studies.cli import UsageError, parse_args
from studies.definition import check_definition, definition_of
from studies.grid import has_oracle
from studies.problem import StudyProblem
from studies.search import main
from studies.space import SearchPoint, with_train_defaults
from wdbench import Problem, oracle

# ---------------------------------------------------------------- flags, defaults, definition


def test_cli_models_are_the_libraries() -> None:
    assert names.MODELS == wdbench.config.MODELS


def test_model_flags_reach_every_train_config() -> None:
    settings = with_train_defaults(parse_args(["--problem", "digits", "--model", "mlp"]))
    assert (settings.model, settings.hidden, settings.layers) == ("mlp", 64, 1)
    assert (settings.epochs, settings.batch_size, settings.lr) == (30, 20, 0.05)
    assert settings.grid_points == 64 and parse_args([]).grid_points == 256
    given = parse_args(["--problem", "digits:n_train=300", "--grid-points", "9", "--epochs", "5"])
    assert given.grid_points == 9 and with_train_defaults(given).epochs == 5
    point = SearchPoint.of("l2", "subgradient", 1e-3, optimizer="adam", lr=0.01)
    config = point.config(settings, train_seed=7)
    assert (config.model, config.hidden, config.layers, config.batch_size) == ("mlp", 64, 1, 20)
    assert (config.epochs, config.lr, config.seed) == (30, 0.01, 7)
    wide = with_train_defaults(parse_args(["--model", "mlp", "--hidden", "8", "--layers", "2"]))
    config = point.config(wide, 0)
    assert (config.hidden, config.layers, config.epochs, config.batch_size) == (8, 2, 100, 5)


def test_the_lessons_budget_is_unchanged_for_the_linear_default() -> None:
    settings = with_train_defaults(parse_args([]))
    defaults = wdbench.TrainConfig()
    assert (settings.model, settings.hidden, settings.layers) == ("linear", None, None)
    assert settings.batch_size == defaults.batch_size and settings.epochs == defaults.epochs
    config = SearchPoint.of("l2", "subgradient", 1.0).config(settings, 0)
    assert (config.model, config.batch_size) == ("linear", defaults.batch_size)


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--model", "cnn"], "argument --model: invalid choice: 'cnn'"),
        (["--hidden", "8"], "--hidden applies to --model mlp, not to --model linear"),
        (["--layers", "2"], "--layers applies to --model mlp"),
        (["--model", "mlp", "--hidden", "0"], "must be >= 1"),
        (["--model", "mlp", "--layers", "17"], "must be <= 16"),
        (["--batch-size", "0"], "must be >= 1"),
    ],
)
def test_bad_model_flags_are_refused_in_one_line(argv: list[str], words: str) -> None:
    with pytest.raises(UsageError, match=words.replace("(", r"\(").replace(")", r"\)")):
        parse_args(argv)


def test_bad_model_flags_exit_2_and_write_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "runs"
    for argv in (["--hidden", "8"], ["--problem", "digits", "--batch-size", "201"]):
        assert main([*argv, "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: "), err
        assert not out.exists()
    assert "exceeds the 200 training rows of digits" in err[0]


@pytest.mark.parametrize(
    ("other", "label"),
    [
        (["--model", "mlp", "--hidden", "32"], "--hidden 64, not 32"),
        (["--model", "mlp", "--layers", "2"], "--layers 1, not 2"),
        ([], "--model mlp, not linear"),
        (["--model", "mlp", "--batch-size", "10"], "--batch-size 20, not 10"),
    ],
)
def test_a_rerun_with_another_model_is_refused(other: list[str], label: str) -> None:
    def resolved(argv: list[str]) -> tuple[object, StudyProblem]:
        settings = with_train_defaults(parse_args(["--problem", "digits", *argv]))
        return settings, StudyProblem.from_settings(settings)

    settings, problem = resolved(["--model", "mlp"])
    stored = definition_of(settings, problem)  # type: ignore[arg-type]
    check_definition(stored, settings, problem)  # type: ignore[arg-type]
    again, problem = resolved(other)
    with pytest.raises(UsageError, match=label):
        check_definition(stored, again, problem)  # type: ignore[arg-type]


def test_networks_and_classification_have_no_oracle() -> None:
    def oracle_for(argv: list[str]) -> bool:
        settings = with_train_defaults(parse_args(argv))
        problem = StudyProblem.from_settings(settings)
        return has_oracle(settings, problem.draws([0]))

    assert oracle_for([]) and oracle_for(["--problem", "diabetes"])
    assert not oracle_for(["--model", "mlp"])
    assert not oracle_for(["--problem", "digits"])  # softmax regression is a network


# ---------------------------------------------------------------- the null model


def test_the_null_classifier_predicts_the_majority_class_of_the_training_rows() -> None:
    p = Problem.digits(seed=3)
    null = oracle.null_classifier(p)
    y_train = p.y_train.numpy()
    counts = np.bincount(y_train, minlength=10)
    assert null.majority == int(np.flatnonzero(counts == counts.max())[0])
    freq = counts / counts.sum()
    for split in ("train", "val", "test"):
        y = p.split(split)[1].numpy()
        assert null.accuracies[split] == pytest.approx(np.mean(y == null.majority), abs=1e-15)
        assert null.losses[split] == pytest.approx(-np.mean(np.log(freq[y])), rel=1e-12)
    with pytest.raises(ValueError, match="classification problem"):
        oracle.null_classifier(Problem.synthetic(seed=0))


# ---------------------------------------------------------------- comparisons on accuracy

Z = np.array([1.2, -0.7, 0.3, -1.5, 0.9, 0.1, -0.4, 1.6, -1.1, -0.4])


def _accuracy_rows(gap: float) -> pd.DataFrame:
    """best (l2) beats no decay by ``gap`` of accuracy on average; the null model far below."""
    base = 0.9 + 0.01 * np.sin(np.arange(10))
    accs = {"best": base, "best-l2": base, "no-decay": base - gap + 0.002 * Z, "null": base * 0.1}
    penalty = {"best": "l2", "best-l2": "l2", "no-decay": "none", "null": "null"}
    return pd.DataFrame(
        [
            dict(
                regime="budget",
                label=label,
                penalty=penalty[label],
                data_seed=r,
                test_acc=float(v),
                test_loss=1 - float(v),
                zero_fraction=1.0 if label == "null" else 0.0,
            )
            for label, values in accs.items()
            for r, v in enumerate(values)
        ]
    )


PAIRS = [("budget", "best-l2", "no-decay"), ("budget", "best", "null")]


def test_accuracy_comparisons_are_paired_t_tests_where_higher_is_better() -> None:
    rows = _accuracy_rows(gap=0.02)
    table = compare(rows, PAIRS, metric="accuracy")
    assert set(table["metric"]) == {"accuracy"}
    row = table.iloc[0]
    a = rows[rows["label"] == "best-l2"]["test_acc"].to_numpy()
    b = rows[rows["label"] == "no-decay"]["test_acc"].to_numpy()
    assert row["mean_diff"] == pytest.approx((a - b).mean(), rel=1e-12) and row["mean_diff"] > 0
    assert row["p_value"] == pytest.approx(sps.ttest_rel(a, b).pvalue, rel=1e-9)
    assert "metric" not in compare(rows, PAIRS).columns  # the loss: the regression file's columns
    with pytest.raises(ValueError, match="metric"):
        compare(rows, PAIRS, metric="f1")


def _selected() -> pd.DataFrame:
    return pd.DataFrame(
        [
            dict(label=label, penalty=p, loop="scratch", lam=lam, l1_ratio=math.nan,
                 val_mean=v, val_ci95=0.01, val_acc_mean=acc, val_acc_ci95=0.01, empty=e)
            for label, p, lam, v, acc, e in [
                ("best", "l2", 1e-3, 0.3, 0.9, False),
                ("best-l2", "l2", 1e-3, 0.3, 0.9, False),
                ("no-decay", "none", 0.0, 0.35, 0.88, False),
                ("null", "null", math.inf, 2.3, 0.1, True),
            ]
        ]
    )  # fmt: skip


MLP = Budget(30, 0.05, 1.0, "mlp", 64, 1, 20, network=True)


def test_verdicts_on_accuracy_say_how_much_decay_helps_in_points() -> None:
    rows = _accuracy_rows(gap=0.02)
    table = compare(rows, PAIRS, metric="accuracy")
    found = verdicts(_selected(), table, budget=MLP)
    text = "\n".join(found.lines)
    d = 100 * table.iloc[0]["mean_diff"]
    assert "l2 (best-l2) beats no decay: test accuracy 90" in text
    assert f"{d:.3g} points higher (d = acc(best-l2) − acc(no-decay) = {d:+.3g} points" in text
    assert "predict the majority class" in text and "predicting the mean" not in text
    setting = "30 epochs of SGD at lr 0.05, minibatch 20, init scale 1, an MLP of 1 hidden layer"
    assert f"({setting} of 64 ReLU units)" in found.lines[0]
    assert found.recommended == "l2" and "points of test accuracy above predicting" in text
    null = table.iloc[1]
    assert f"test accuracy {100 * null['mean_b']:.4g} % on the 10 fresh draws" in text


def test_a_network_budget_names_the_searched_optimizers_and_lr() -> None:
    settings = dataclasses.asdict(
        with_train_defaults(
            parse_args(
                ["--problem", "digits", "--optimizers", "sgd,adam", "--lr-range", "1e-3", "0.1"]
            )
        )
    )
    budget = Budget.from_settings(settings, network=True)
    assert budget is not None and budget.describe() == (
        "30 epochs of SGD or Adam at the searched lr (0.001 to 0.1), minibatch 20, init scale 1, "
        "softmax regression"
    )
    linear = Budget.from_settings(settings)  # the lesson's wording, as every linear study's
    assert linear is not None and linear.describe() == "30 epochs of SGD, lr 0.05, init scale 1"


def test_the_replication_overrules_the_search_when_another_penalty_beats_its_choice() -> None:
    rows = _accuracy_rows(gap=0.02)
    rows.loc[rows["label"] == "best-l2", "penalty"] = "l2"
    rows.loc[rows["label"] == "best", "penalty"] = "elastic"
    rows.loc[rows["label"] == "best", "test_acc"] -= 0.01 + 0.001 * Z  # the choice does worse
    table = compare(rows, [("budget", "best-l2", "best"), *PAIRS[1:]], metric="accuracy")
    selected = _selected().assign(penalty=["elastic", "l2", "none", "null"])
    found = verdicts(selected, table, budget=MLP)
    assert found.recommended == "l2"
    assert (
        "l2 (best-l2 beats the search's choice, elastic, on the 10 fresh draws; below); "
        in (found.lines[0])
    )
    assert "the search's choice is " in found.lines[0]


def test_verdicts_say_when_the_data_cannot_separate_decay_from_none() -> None:
    table = compare(_accuracy_rows(gap=0.0), PAIRS, metric="accuracy")
    found = verdicts(_selected(), table, budget=MLP)
    assert any(
        "l2 (best-l2) and no decay cannot be separated: test accuracy" in x for x in found.lines
    )
    assert found.recommended == "none"  # the simpler of the two


def test_the_data_section_shows_task_classes_and_model() -> None:
    data = {"kind": "registered", "task": "classification", "splits": {"train": 200},
            "classes": [{"name": "0", "rows": 178}, {"name": "1", "rows": 182}]}  # fmt: skip
    rows = dict(data_rows(data, {"model": "mlp", "hidden": 64, "layers": 2}))
    assert rows["data: task"].startswith("classification")
    assert rows["data: classes (2)"] == "0 (178 rows), 1 (182 rows)"
    assert rows["model"] == "mlp: 2 hidden layers of 64 ReLU units (hidden 64, layers 2)"
    linear = dict(data_rows(data, {"model": "linear", "hidden": None, "layers": None}))
    assert linear["model"].startswith("linear: softmax regression")
    regression = dict(data_rows({"kind": "registered"}, {"model": "linear"}))
    assert "model" not in regression and "data: task" not in regression


# ---------------------------------------------------------------- a scaled-down digits study

R = 4
STUDY = [
    "--problem", "digits", "--model", "mlp", "--hidden", "16", "--optimizers", "sgd,adam",
    "--decay", "coupled,decoupled", "--lr-range", "1e-3", "1e-1", "--penalties", "none,l2",
    "--sampler", "grid", "--n-trials", "16", "--seeds", "2", "--epochs", "2",
    "--grid-points", "4", "--batch", "16", "--replications", str(R),
]  # fmt: skip


@pytest.fixture(scope="module")
def digits_study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("runs")
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main([*STUDY, "--out", str(out)])
    assert code == 0
    return out / "weight-decay", buffer.getvalue()


def _read(run_dir: Path, name: str) -> pd.DataFrame:
    return pd.read_parquet(run_dir / f"{name}.parquet")


def _holm(p: np.ndarray) -> np.ndarray:
    out, running = np.empty_like(p), 0.0
    for rank, i in enumerate(np.argsort(p)):
        running = max(running, min(1.0, (len(p) - rank) * p[i]))
        out[i] = running
    return out


@pytest.mark.slow
def test_accuracy_comparisons_recomputed_from_the_replication(
    digits_study: tuple[Path, str],
) -> None:
    run_dir, printed = digits_study
    rows, comparisons = _read(run_dir, "replication"), _read(run_dir, "comparisons")
    assert set(comparisons["regime"]) == {"budget"} and set(comparisons["metric"]) == {"accuracy"}
    pairs = set(zip(comparisons["a"], comparisons["b"], strict=True))
    assert ("best-adam-decoupled", "best-adam-coupled") in pairs  # does decoupling matter
    assert any(b == "no-decay" and a.startswith("best-") for a, b in pairs)  # does decay help
    p_values = []
    for _, c in comparisons.iterrows():
        a = rows[rows["label"] == c["a"]].set_index("data_seed")["test_acc"].sort_index()
        b = rows[rows["label"] == c["b"]].set_index("data_seed")["test_acc"].loc[a.index]
        assert c["n"] == R and c["mean_diff"] == pytest.approx((a - b).mean(), abs=1e-12)
        spread = (a - b).std() > 0  # no spread: p = 1 for no difference, else 0
        p_values.append(sps.ttest_rel(a, b).pvalue if spread else float((a == b).all()))
        d = f"d = acc({c['a']}) − acc({c['b']}) = {100 * (a - b).mean():+.3g} points"
        assert d in printed, d
    assert comparisons["p_holm"].to_numpy() == pytest.approx(_holm(np.array(p_values)), rel=1e-9)


@pytest.mark.slow
def test_null_rows_are_the_majority_class_of_each_fresh_draw(
    digits_study: tuple[Path, str],
) -> None:
    run_dir, _ = digits_study
    rows = _read(run_dir, "replication")
    null = rows[rows["label"] == "null"]
    assert len(null) == R
    for _, row in null.iterrows():
        p = Problem.digits(seed=int(row["data_seed"]))
        majority = np.bincount(p.y_train.numpy()).argmax()
        assert row["test_acc"] == pytest.approx(np.mean(p.y_test.numpy() == majority))
        assert row["val_acc"] == pytest.approx(np.mean(p.y_val.numpy() == majority))


@pytest.mark.slow
def test_every_record_carries_accuracy_beside_the_loss(digits_study: tuple[Path, str]) -> None:
    run_dir, _ = digits_study
    for name, columns in {
        "trials": ("value", "val_acc", "train_acc"),
        "grid": ("val_loss", "val_acc", "train_acc"),
        "selected": ("val_mean", "val_acc_mean", "test_acc_mean", "test_acc_ci95"),
        "replication": ("test_loss", "train_acc", "val_acc", "test_acc"),
    }.items():
        table = _read(run_dir, name)
        if name == "trials":  # a FAIL trial (diverged) has no statistics
            table = table[table["state"] == "COMPLETE"]
        assert set(columns) <= set(table.columns), name
        accuracy = table[[c for c in columns if "acc" in c and "ci95" not in c]]
        assert ((accuracy >= 0) & (accuracy <= 1)).all().all(), name
    assert _read(run_dir, "oracle").empty
    info = json.loads((run_dir / "run.json").read_text())
    assert info["data"]["task"] == "classification" and len(info["data"]["classes"]) == 10
    assert sum(c["rows"] for c in info["data"]["classes"]) == 1797
    assert "oracles" not in info["phases"]
    assert (info["settings"]["model"], info["settings"]["hidden"]) == ("mlp", 16)


@pytest.mark.slow
def test_console_run_json_summary_and_report_give_the_same_verdicts(
    digits_study: tuple[Path, str],
) -> None:
    run_dir, printed = digits_study
    lines = json.loads((run_dir / "run.json").read_text())["verdicts"]["lines"]
    page = html_lib.unescape((run_dir / "report" / "index.html").read_text(encoding="utf-8"))
    summary = (run_dir / "report" / "summary.md").read_text(encoding="utf-8")
    assert lines and any(x.startswith("Null baseline (predict the majority class") for x in lines)
    for line in [*lines, NO_ORACLE]:
        assert line in printed.splitlines()
        assert line in page
        assert line.replace("[", "\\[").replace("]", "\\]").replace("_", "\\_") in summary
    assert "fig2b_val_accuracy.png" in page and "validation accuracy" in summary
    assert "cross-entropy" in summary and "½·MSE" not in summary


@pytest.mark.slow
def test_a_file_with_a_text_target_is_a_softmax_regression_study(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 3))
    kinds = np.array(["bream", "perch", "pike"])[np.argmax(X @ rng.normal(size=(3, 3)), axis=1)]
    path = tmp_path / "fish.csv"
    pd.DataFrame(X, columns=["a", "b", "c"]).assign(kind=kinds).to_csv(path, index=False)
    out = tmp_path / "runs"
    tiny = ["--n-trials", "4", "--seeds", "2", "--epochs", "3", "--grid-points", "3"]
    argv = ["--problem", str(path), "--penalties", "none,l2", *tiny, "--replications", "3"]
    assert main([*argv, "--out", str(out)]) == 0
    run_dir = out / "weight-decay"
    info = json.loads((run_dir / "run.json").read_text())
    counts = {str(k): int(n) for k, n in zip(*np.unique(kinds, return_counts=True), strict=True)}
    assert info["data"]["task"] == "classification" and info["settings"]["model"] == "linear"
    assert {c["name"]: c["rows"] for c in info["data"]["classes"]} == counts
    replication = _read(run_dir, "replication")
    null = replication[replication["label"] == "null"]
    table = wdbench.read_table(path)
    for _, row in null.iterrows():  # the majority class of each fresh draw's training rows
        draw = Problem.from_table(table, seed=int(row["data_seed"]))
        majority = np.bincount(draw.y_train.numpy()).argmax()
        assert row["test_acc"] == pytest.approx(np.mean(draw.y_test.numpy() == majority))
    assert (replication["test_acc"].between(0, 1)).all()
    page = (run_dir / "report" / "index.html").read_text(encoding="utf-8")
    assert "softmax regression" in page and "bream (" in page
    assert "oracle: none" in page and _read(run_dir, "oracle").empty
