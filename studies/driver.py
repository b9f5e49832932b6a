"""The study run behind ``python -m studies.search``, once its flags are parsed.

Order of work: validate what flags alone cannot (device, ``--out``, storage URL) before anything
is written; connect to the storage; create or load the study; run the batched ask / train / tell
loop (``studies.ask_tell.run_worker``, through ``studies.scaleout.workers``) until the study
holds ``--n-trials`` COMPLETE trials; then, in this process only, export the trials, evaluate the
dense grid and the oracle, select and re-train the chosen configurations (the only use of the
test split), print the summary and build the report.

Exit codes: ``studies.cli.EPILOG``. A user error exits 2 with nothing written to storage; a study
in which no trial completed exits 2 too (exports are still written); a bug inside the report
exits 1 (the study and its exports are saved before the report starts). A rerun reuses
``grid.parquet`` when the settings it depends on are unchanged.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import torch
from optuna.trial import TrialState

from reports.redact import mask
from reports.stats import grid_summary, oracle_summary
from reports.verdicts import Budget, verdicts
from studies import exports
from studies.ahead import Ahead
from studies.ask_tell import count_trials
from studies.cli import EXIT_SIGINT, EXIT_STORAGE, EXIT_USAGE, Settings, UsageError
from studies.console import Regret, reach_line, summary_lines, time_to_regret
from studies.crn import StudySeeds
from studies.definition import open_study
from studies.grid import (
    best_grid_point,
    cached_dense_grid,
    grid_points,
    has_oracle,
    oracle_best,
    oracle_table,
)
from studies.phases import Phases
from studies.problem import StudyProblem
from studies.replicate import Replication, ReplicationSeeds, replicate
from studies.reporter import Reporter
from studies.scaleout.faults import is_disk_full, is_storage_lost, storage_lost_message
from studies.scaleout.workers import apply_thread_policy, run_workers, thread_record
from studies.space import enqueue_grid, make_sampler, penalty_order, with_train_defaults
from studies.storage import (
    StorageError,
    StorageSpec,
    StorageUnavailable,
    check_writable,
    open_storage,
    parse_storage,
    run_directory,
)
from wdbench import resolve_device

__all__ = ["Prepared", "execute", "prepare", "run"]


@dataclass(frozen=True, eq=False)
class Prepared:
    """A validated run: its directory, storage, study, device, seeds and problem."""

    settings: Settings
    run_dir: Path
    spec: StorageSpec
    study: optuna.Study
    device: torch.device
    seeds: StudySeeds
    problem: StudyProblem


def run(
    settings: Settings,
    args: Sequence[str],
    imports_s: float = 0.0,
    reporter: Reporter | None = None,
) -> int:
    """Prepare and execute the parsed command line ``args``; returns the exit code.
    ``imports_s``: the seconds the command took to import what it runs on (a phase);
    ``reporter``: builds the report (default: in this process, at the end)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    started = _now()
    phases = Phases()
    phases.add("imports", imports_s)
    apply_thread_policy(settings)
    try:
        prepared = prepare(settings)
    except StorageUnavailable as exc:
        print(f"error: {mask(str(exc))}; rerun once it is back", file=sys.stderr)
        return EXIT_STORAGE
    except (UsageError, StorageError) as exc:
        print(f"error: {mask(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return _interrupted()
    except Exception as exc:
        return _lost(exc)
    command = [mask(a) for a in ["python", "-m", "studies.search", *args]]
    try:
        return execute(prepared, command, started, phases, reporter)
    except KeyboardInterrupt:  # outside the workers (they handle their own): nothing in flight
        return _interrupted()
    except Exception as exc:
        return _lost(exc)


def _lost(exc: Exception) -> int:
    """A lost storage or a full disk outside the workers: one line, exit 3; else re-raised."""
    if not is_storage_lost(exc):
        raise exc
    print(mask(storage_lost_message(exc)), file=sys.stderr)
    return EXIT_STORAGE


def _interrupted() -> int:
    print("interrupted by SIGINT; rerun the same command to resume", file=sys.stderr)
    return EXIT_SIGINT


def prepare(settings: Settings) -> Prepared:
    """Validate what flags alone cannot, connect, and create or load the study.

    The returned ``Prepared.settings`` carry ``wdbench.TrainConfig``'s defaults for the budget
    flags left unset; use them (not the argument) from here on.
    """
    settings = with_train_defaults(settings)
    seeds = StudySeeds.from_settings(settings)
    try:
        problem = StudyProblem.from_settings(settings)
        drawn = problem.draws(seeds.data_seeds)  # a draw the data cannot fill is refused here
        if problem.table is not None:  # and so is a replication draw of a file (a rare class)
            problem.draws(ReplicationSeeds.derive(seeds, settings.replications).data_seeds)
        device = resolve_device(settings.device)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    n_train = min(p.n_train for p in drawn)
    if settings.batch_size is not None and settings.batch_size > n_train:
        raise UsageError(
            f"--batch-size {settings.batch_size} exceeds the {n_train} training rows of "
            f"{settings.problem}"
        )
    settings = dataclasses.replace(settings, problem=problem.label)
    run_dir = run_directory(settings.out, settings.study_name)
    check_writable(run_dir)
    _check_recorded_data(run_dir / "run.json", settings, problem)
    spec = parse_storage(settings.storage, run_dir)
    if spec.path is not None:
        check_writable(spec.path.parent)
    storage = open_storage(spec)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        kind = StorageUnavailable if is_disk_full(exc) else StorageError
        raise kind(f"cannot create {run_dir}: {exc.strerror}") from None
    study = open_study(storage, settings, problem, make_sampler(settings))
    settings = penalty_order(settings, study)
    return Prepared(settings, run_dir, spec, study, device, seeds, problem)


def _check_recorded_data(run_json: Path, settings: Settings, problem: StudyProblem) -> None:
    """Refuse a changed file against the hash a previous run recorded in ``run.json``, before the
    storage is opened (the study's own record, checked later, covers a run.json kept elsewhere)."""
    if problem.sha256 is None or not run_json.is_file():
        return
    try:
        data = json.loads(run_json.read_text()).get("data")
    except (OSError, ValueError, AttributeError):
        return  # a damaged run.json is rewritten at the end of this run
    if isinstance(data, dict):
        _check_data_hash(data.get("sha256"), settings, problem)


def _check_data_hash(old: Any, settings: Settings, problem: StudyProblem) -> None:
    if isinstance(old, str) and old != problem.sha256:
        raise UsageError(
            f"study {settings.study_name!r} ran on {settings.problem} with SHA-256 {old[:12]}…, "
            f"but the file now hashes to {str(problem.sha256)[:12]}…: one study must not mix two "
            "data sets (restore the file, or choose another --study-name)"
        )


def execute(
    prepared: Prepared,
    command: list[str],
    started: str,
    phases: Phases | None = None,
    reporter: Reporter | None = None,
) -> int:
    """Search, export, summarize and report; returns the exit code."""
    phases = phases or Phases()
    reporter = reporter or Reporter(beside=False)
    clock = time.perf_counter()
    ahead = _ahead(prepared)
    try:
        return _search_and_finish(prepared, command, started, phases, clock, ahead, reporter)
    except BaseException:
        ahead.cancel()  # never leave a kernel running under an exiting interpreter
        raise


def _search_and_finish(
    prepared: Prepared,
    command: list[str],
    started: str,
    phases: Phases,
    clock: float,
    ahead: Ahead,
    reporter: Reporter,
) -> int:
    settings, study, run_dir = prepared.settings, prepared.study, prepared.run_dir
    with phases.phase("search", quiet=True):  # the workers show a progress bar
        if settings.sampler == "grid":
            enqueue_grid(study, settings)
        code = run_workers(settings)  # exit codes: studies.cli.EPILOG
    if code != 0:
        ahead.cancel()
        return int(code)
    with phases.phase("exports"):
        trials = exports.trials_frame(study)
        exports.write_table(trials, run_dir / "trials.parquet")
    n_complete = count_trials(study, TrialState.COMPLETE)
    info = exports.run_info(
        settings,
        command,
        prepared.spec.display,
        prepared.device,
        prepared.seeds,
        (started, started),
        data=prepared.problem.record(prepared.problem.draw(prepared.seeds.data_seeds[0])),
    )
    info["threads"] = thread_record(settings)
    if n_complete == 0:
        ahead.cancel()
        exports.write_json({**info, "finished": _now()}, run_dir / "run.json")
        print(_short_line(study, settings, run_dir), file=sys.stderr)
        return EXIT_USAGE
    # what is known now (the report reads the model from it); completed at the end
    exports.write_json({**info, "finished": None}, run_dir / "run.json")
    ahead.search_done()  # what is left of the grid and the oracles may use the whole pool
    summary = _finish(prepared, info, trials, clock, phases, ahead, reporter)
    print("\n".join(summary))
    code = 0
    if n_complete < settings.n_trials:  # every worker gave up: its trials kept failing
        print(_short_line(study, settings, run_dir), file=sys.stderr)
        code = EXIT_USAGE
    if not settings.no_report:
        with phases.phase("report"):  # the wait for it, when its process ran beside
            code = reporter.finish(run_dir)
        if reporter.figures_s is not None:
            phases.beside("replication", "report figures", reporter.figures_s)
    info["threads"] = thread_record(settings)  # with the choices of the whole run
    info["phases"] = phases.record()
    info["phases_beside"] = phases.record_beside()
    exports.write_json({**info, "finished": _now()}, run_dir / "run.json")
    print(phases.line())
    return code


def _short_line(study: optuna.Study, settings: Settings, run_dir: Path) -> str:
    """One line for a study that ended short of ``--n-trials``: how many completed, and why the
    others failed (their ``fail_reason``s, by kind)."""
    failed = study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
    kinds = Counter(
        str(t.user_attrs.get("fail_reason", "unknown")).split(" ", 1)[0].rstrip(":") for t in failed
    )
    why = ", ".join(f"{n} {kind}" for kind, n in kinds.most_common())
    n_complete = count_trials(study, TrialState.COMPLETE)
    return (
        f"error: {n_complete} of {settings.n_trials} trials completed; {len(failed)} FAIL "
        f"({why or 'none'}; see {run_dir / 'trials.parquet'}): the workers gave up after "
        "--n-trials failures each; a smaller --lr may help"
    )


def _finish(
    prepared: Prepared,
    info: dict[str, Any],
    trials: pd.DataFrame,
    clock: float,
    phases: Phases,
    ahead: Ahead,
    reporter: Reporter,
) -> list[str]:
    """Grid, oracle, selection and their files; returns the summary lines."""
    settings, study, run_dir, seeds = (
        prepared.settings,
        prepared.study,
        prepared.run_dir,
        prepared.seeds,
    )
    problems = prepared.problem.draws(seeds.data_seeds)
    with phases.phase("grid"):  # the wait for it, when it ran beside the search
        grid = ahead.result("grid")
    with phases.phase("exports"):
        exports.write_table(grid, run_dir / "grid.parquet")
    if has_oracle(settings, problems):
        with phases.phase("oracles"):
            oracle = ahead.result("oracles")
    else:  # a network has no closed form: no oracle phase, the dense grid is the reference
        oracle = oracle_table(settings, problems, seeds)  # no rows
    if ahead.in_background:
        for name, seconds in ahead.seconds.items():
            phases.beside("search", name, seconds)
    with phases.phase("exports"):  # before the selection: the report reads it meanwhile
        exports.write_table(oracle, run_dir / "oracle.parquet")
    if not settings.no_report:
        reporter.tables(run_dir)  # trials, grid, oracle and run.json are written: read them now
    with phases.phase("selection"):
        selection = exports.select(study, settings, problems, seeds, prepared.device)
    with phases.phase("exports"):
        selected = exports.selected_frame(selection)
        exports.write_table(selected, run_dir / "selected.parquet")
        exports.write_table(exports.curves_frame(selection, seeds), run_dir / "curves.parquet")
    if not settings.no_report:
        reporter.figures(run_dir)  # figures 1–4 read no file the replication writes
    with phases.phase("replication"):
        replication = replication_phase(prepared, selection, oracle)
    regret = Regret(float(study.best_value), best_grid_point(grid), len(grid_points(settings)))
    best_oracle = oracle_best(oracle)
    reach = time_to_regret(trials, regret.grid_best)
    info["summary"] = {**_summary_record(study, regret, best_oracle), "time_to_1pct": reach}
    info["replication"] = dataclasses.asdict(replication.seeds)
    found = verdicts(
        selected,
        replication.comparisons,
        grid_summary(grid),
        oracle_summary(oracle) if not oracle.empty else None,
        Budget.from_settings(
            dataclasses.asdict(settings), network=not has_oracle(settings, problems)
        ),
    )
    info["verdicts"] = {"recommended": found.recommended, "lines": list(found.lines)}
    info["phases"] = phases.record()
    info["phases_beside"] = phases.record_beside()
    exports.write_json({**info, "finished": _now()}, run_dir / "run.json")
    n_fail = count_trials(study, TrialState.FAIL)
    header = (
        f"study {settings.study_name!r} · {settings.problem} · "
        f"{count_trials(study, TrialState.COMPLETE)} COMPLETE, {n_fail} FAIL trials · "
        f"{settings.seeds} data seeds · {prepared.spec.display} · "
        f"{time.perf_counter() - clock:.1f} s"
    )
    return [
        *summary_lines(
            header, selected, regret, best_oracle if has_oracle(settings, problems) else None
        ),
        reach_line(reach),
        "",
        *found.lines,
    ]


def _ahead(prepared: Prepared) -> Ahead:
    """The dense grid and the oracles (they read no trial), beside the search on the CPU."""
    settings, seeds = prepared.settings, prepared.seeds
    problems = prepared.problem.draws(seeds.data_seeds)
    jobs = {
        "grid": partial(
            cached_dense_grid,
            prepared.run_dir / "grid.parquet",
            settings,
            problems,
            seeds,
            prepared.device,
        ),
    }
    if has_oracle(settings, problems):  # a network has none
        jobs["oracles"] = partial(oracle_table, settings, problems, seeds)
    return Ahead(jobs, background=prepared.device.type == "cpu")


def replication_phase(prepared: Prepared, selection: exports.Selection, oracle: Any) -> Replication:
    """Retrain the chosen configurations and the null model on ``--replications`` fresh draws,
    compare them, and write ``replication.parquet`` and ``comparisons.parquet``."""
    replication = replicate(
        prepared.settings,
        selection.labelled,
        selection.val_means(),
        oracle,
        prepared.seeds,
        prepared.device,
    )
    exports.write_table(replication.rows, prepared.run_dir / "replication.parquet")
    exports.write_table(replication.comparisons, prepared.run_dir / "comparisons.parquet")
    return replication


def _summary_record(study: optuna.Study, regret: Regret, best_oracle: Any) -> dict[str, Any]:
    return {
        "best_trial": study.best_trial.number,
        "best_value": float(study.best_value),
        "best_params": dict(study.best_trial.params),
        "regret": regret.value,
        "grid_size": regret.grid_size,
        "grid_best": regret.grid_best,
        "oracle_best": best_oracle.to_dict(orient="records"),
    }


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
