"""The sections of the report, each built from the loaded files (figures are drawn here)."""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

import pandas as pd

from reports.bench_results import PRODUCE_HINT, BenchData
from reports.conclusions import conclusions, problem_name
from reports.document import Block, Bullets, Code, Figure, Paragraph, Section, Table
from reports.figures_bench import loops_figure, population_figure
from reports.figures_lam import VAL_ACC, VAL_LOSS, W_NORM, lam_figure, zero_fraction_figure
from reports.figures_lr import heatmap_figure, heatmap_penalty, optimum_figure
from reports.figures_run import curves_figure, history_figure
from reports.load import RunData
from reports.lr_lambda import has_lr_axis, lr_lambda_means, optima, slopes, steps_per_epoch
from reports.plotting import Missing
from reports.redact import mask
from reports.tables import bench_table, best_table, comparison_table, failure_table, state_table

__all__ = [
    "ACCURACY_FIGURE",
    "STUDY_FIGURES",
    "bench_section",
    "environment_section",
    "study_figures",
    "study_sections",
]


def _blocks(result: Figure | Missing) -> tuple[Block, ...]:
    """A drawn figure, or a paragraph saying why it was not drawn."""
    if isinstance(result, Missing):
        return (Paragraph(f"Not drawn: {result.reason}."),)
    return (result,)


#: The study's figures drawn from the trials, the grid, the oracle, the selection and the curves
#: alone (none reads the replication or run.json), by file name.
STUDY_FIGURES = (
    "fig3a_wnorm_vs_lambda.png",
    "fig3b_zero_fraction.png",
    "fig1_curves.png",
    "fig2_val_vs_lambda.png",
    "fig4_history.png",
)
#: Classification only: the validation accuracy against λ, drawn with ``STUDY_FIGURES``.
ACCURACY_FIGURE = "fig2b_val_accuracy.png"


def study_figures(
    run: RunData,
    grid: pd.DataFrame | None,
    oracle: pd.DataFrame | None,
    out: Path,
    lam_grid: pd.DataFrame | None = None,
    only: Collection[str] = STUDY_FIGURES,
) -> dict[str, Figure | Missing]:
    """Draw the study figures 1–4 named in ``only`` (default all, ``STUDY_FIGURES``) into
    ``out``: ``{file name: figure or why it is missing}``; for classification the validation
    accuracy (``ACCURACY_FIGURE``) with the validation loss.

    They read ``run.trials``, ``grid``, ``oracle``, ``run.selected`` and ``run.curves`` only, so
    they can be drawn as soon as the selection is exported, before the replication ends."""
    lam_grid = grid if lam_grid is None else lam_grid
    draw: dict[str, Callable[[Path], Figure | Missing]] = {
        "fig3a_wnorm_vs_lambda.png": lambda p: lam_figure(run, lam_grid, oracle, W_NORM, p),
        "fig3b_zero_fraction.png": lambda p: zero_fraction_figure(run, lam_grid, oracle, p),
        "fig1_curves.png": lambda p: curves_figure(run, p),
        "fig2_val_vs_lambda.png": lambda p: lam_figure(run, lam_grid, oracle, VAL_LOSS, p),
        "fig4_history.png": lambda p: history_figure(run, grid, p),
    }
    if run.classification:  # the validation accuracy, drawn beside the loss it goes with
        draw[ACCURACY_FIGURE] = lambda p: lam_figure(run, lam_grid, oracle, VAL_ACC, p)
    wanted = [*only, ACCURACY_FIGURE] if "fig2_val_vs_lambda.png" in only else list(only)
    return {
        name: draw[name](out / name)
        for name in (*STUDY_FIGURES, ACCURACY_FIGURE)
        if name in wanted and name in draw
    }


def study_sections(
    run: RunData,
    grid: pd.DataFrame | None,
    oracle: pd.DataFrame | None,
    bench: BenchData,
    out: Path,
    lam_grid: pd.DataFrame | None = None,
    figures: dict[str, Figure | Missing] | None = None,
) -> list[Section]:
    """Conclusions, choices and trials, and the study figures 1–4 and 6 (written into ``out``).

    ``grid`` summarizes the whole dense grid; ``lam_grid`` (default ``grid``) the slice the
    figures against λ show (``reports.lr_lambda.reference_slice``). ``figures``: figures 1–4
    already drawn into ``out`` by ``study_figures`` (else they are drawn here)."""
    lam_grid = grid if lam_grid is None else lam_grid
    if figures is None:
        figures = study_figures(run, grid, oracle, out, lam_grid)
    choice: list[Block] = []
    if run.selected is not None:
        choice.append(best_table(run.selected, grid))
        if run.comparisons is not None:
            choice.append(comparison_table(run.comparisons))
    else:
        choice.append(Paragraph("selected.parquet is missing: no configuration was selected."))
    choice.append(state_table(run.trials))
    failures = failure_table(run.trials)
    if failures is not None:
        choice.append(failures)
    weights = (
        *_blocks(figures["fig3a_wnorm_vs_lambda.png"]),
        *_blocks(figures["fig3b_zero_fraction.png"]),
    )
    sections = [
        Section("Conclusions", "conclusions", (Bullets(conclusions(run, grid, oracle, bench)),)),
        Section("Chosen configurations and trials", "choice", tuple(choice)),
        Section("Loss curves", "curves", _blocks(figures["fig1_curves.png"])),
        Section(
            "Validation loss against λ",
            "lambda",
            (
                *_blocks(figures["fig2_val_vs_lambda.png"]),
                *(_blocks(figures[ACCURACY_FIGURE]) if ACCURACY_FIGURE in figures else ()),
            ),
        ),
        Section("Weights: norm and exact zeros", "weights", weights),
        Section("Optimisation history", "history", _blocks(figures["fig4_history.png"])),
    ]
    if run.grid is not None and has_lr_axis(run.grid):
        sections.insert(4, lr_section(run, run.grid, out))
    return sections


def lr_section(run: RunData, raw_grid: pd.DataFrame, out: Path) -> Section:
    """Figures 6a–b: the lr × λ heatmaps, the optimum against lr and its timescale."""
    means = lr_lambda_means(raw_grid)
    opt = optima(means, steps_per_epoch(raw_grid))
    penalty = heatmap_penalty(means)
    blocks: list[Block] = [
        Paragraph(
            "The dense grid varies the learning rate and / or the optimizer and coupling: the "
            "figures against λ above show the chosen optimizer at the grid learning rate nearest "
            "the chosen one; this section shows the whole lattice."
        ),
        *_blocks(heatmap_figure(run, means, opt, out / "fig6a_lr_lambda_heatmap.png")),
    ]
    if penalty is not None and not opt.empty:
        blocks += _blocks(optimum_figure(opt, slopes(opt), penalty, out / "fig6b_lambda_vs_lr.png"))
    return Section("Learning rate × λ", "lr-lambda", tuple(blocks))


def bench_section(bench: BenchData, directory: Path, out: Path) -> Section:
    """Figure 5 and the benchmark tables, or how to produce the benchmark files."""
    blocks: list[Block] = []
    for reason in bench.skipped:
        blocks.append(Paragraph(f"Skipped a file that is not pytest-benchmark JSON: {reason}"))
    if bench.table.empty:
        blocks += [
            Paragraph(f"No benchmark results were found under {directory}. Produce them with:"),
            Code(PRODUCE_HINT),
            Paragraph(
                "then rebuild this report (python -m reports.build RUN_DIR, or pass "
                "--benchmarks DIR to read them from elsewhere)."
            ),
        ]
        return Section("Cost of each update path", "benchmarks", tuple(blocks))
    blocks += [
        *_blocks(loops_figure(bench, out / "fig5a_loops.png")),
        *_blocks(population_figure(bench, out / "fig5b_population.png")),
    ]
    for group in ("update-loops-run", "update-loops-step", "population", "scaling", "study"):
        table = bench_table(bench, group)
        if table is not None:
            blocks.append(table)
    blocks.append(Bullets(tuple(f"machine: {m}" for m in bench.machines)))
    return Section("Cost of each update path", "benchmarks", tuple(blocks))


def environment_section(run: RunData, bench_dir: Path) -> Section:
    """Versions, device, dates, seeds, the command (passwords masked), and what was missing."""
    info = run.run
    rows: list[tuple[str, str]] = [
        ("study", run.name),
        ("problem", _show(info.get("problem", problem_name(run)))),
        *data_rows(info.get("data"), info.get("settings")),
        ("storage", mask(_show(info.get("storage", "")))),
        ("device", _show(info.get("device", ""))),
        ("started", _show(info.get("started", ""))),
        ("finished", _show(info.get("finished", ""))),
        ("seeds", _show(info.get("seeds", ""))),
    ]
    versions = info.get("versions")
    if isinstance(versions, dict):
        rows += [(f"version: {k}", _show(v)) for k, v in sorted(versions.items())]
    settings = info.get("settings")
    if isinstance(settings, dict):
        rows += [
            (f"setting: {k}", mask(_show(v)))
            for k, v in sorted(settings.items())
            if not _shown_elsewhere(k, v)
        ]
    blocks: list[Block] = [
        Table(("item", "value"), tuple((k, v or "—") for k, v in rows)),
        Paragraph("The command that produced the run (passwords masked):"),
        Code(_command(info.get("command"))),
        Paragraph(f"Benchmarks read from {bench_dir}."),
    ]
    if run.notes:
        blocks.append(Bullets(tuple(f"{n}: the sections that need it say so" for n in run.notes)))
    return Section("Environment", "environment", tuple(blocks))


#: Settings the data section shows as the model (``model_rows``), not as settings rows.
MODEL_SETTINGS = ("model", "hidden", "layers")
#: The lesson's minibatch size: a study at it (every linear regression study before the flag
#: existed) shows no ``batch_size`` row.
LESSON_BATCH = 5


def _shown_elsewhere(key: str, value: Any) -> bool:
    return key in MODEL_SETTINGS or (key == "batch_size" and value in (None, LESSON_BATCH))


def model_rows(settings: Any, data: Any) -> list[tuple[str, str]]:
    """The model of a network study (an MLP, or softmax regression on a classification
    problem): model, hidden units and layers; none for the lesson's linear regression."""
    if not isinstance(settings, dict):
        return []
    model = str(settings.get("model") or "linear")
    classify = isinstance(data, dict) and data.get("task") == "classification"
    if model == "mlp":
        layers, hidden = settings.get("layers"), settings.get("hidden")
        return [
            (
                "model",
                f"mlp: {layers} hidden layer{'s' * (layers != 1)} of {hidden} ReLU units "
                f"(hidden {hidden}, layers {layers})",
            )
        ]
    if classify:
        return [("model", "linear: softmax regression (a network with no hidden layer)")]
    return []


def data_rows(data: Any, settings: Any = None) -> list[tuple[str, str]]:
    """What the study ran on (run.json ``data``): the problem's parameters, or the file's path,
    SHA-256, size and columns; the split sizes; and for classification the task and its classes
    with their rows; and the model of a network study (``model_rows``)."""
    if not isinstance(data, dict):
        return []
    rows: list[tuple[str, str]] = []
    if data.get("kind") == "file":
        features = [str(f) for f in data.get("features") or []]
        shown = ", ".join(features[:20]) + (
            f", … ({len(features)} in all)" if len(features) > 20 else ""
        )
        rows += [
            ("data: file", _show(data.get("path", ""))),
            ("data: SHA-256", _show(data.get("sha256", ""))),
            ("data: rows × columns", f"{data.get('rows', '?')} × {data.get('columns', '?')}"),
            ("data: target", _show(data.get("target", ""))),
            ("data: features", shown),
        ]
    else:
        params = data.get("params")
        rows.append(("data: description", _show(data.get("description", ""))))
        if isinstance(params, dict):
            rows.append(("data: parameters", ", ".join(f"{k}={v}" for k, v in params.items())))
    splits = data.get("splits")
    if isinstance(splits, dict):
        rows.append(
            (
                "data: splits (rows)",
                f"train {splits.get('train')} · validation {splits.get('val')} · "
                f"test {splits.get('test')}, drawn afresh by each data seed",
            )
        )
    if data.get("task") == "classification":
        classes = [c for c in data.get("classes") or [] if isinstance(c, dict)]
        shown = ", ".join(f"{c.get('name')} ({c.get('rows')} rows)" for c in classes[:20])
        rows.append(("data: task", "classification (accuracy beside the cross-entropy)"))
        rows.append(
            (f"data: classes ({len(classes)})", shown + (", …" if len(classes) > 20 else ""))
        )
    return rows + model_rows(settings, data)


def _command(command: Any) -> str:
    """The recorded argv as one shell line, passwords masked."""
    if not command:
        return "(not recorded)"
    if isinstance(command, str):
        return mask(command)
    return shlex.join(mask(str(a)) for a in command)


def _show(value: Any) -> str:
    """A run.json value as one line of text."""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
