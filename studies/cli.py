"""Command line of ``python -m studies.search``: flags, TOML config, and validated ``Settings``.

Precedence: built-in defaults < ``--config FILE.toml`` (keys are the flag names, with ``-`` or
``_``) < flags. The TOML values pass through the same argparse types and choices as the flags.
Every invalid value raises ``UsageError`` with one line naming the problem.

Standard library only: ``--help`` and every refusal of bad input answer before torch, Optuna or
pandas are imported. ``lr``, ``epochs``, ``init_scale`` and ``batch_size`` left unset mean the
problem's study defaults where it has them (``studies.defaults``: digits) and
``wdbench.TrainConfig``'s (the lesson's) otherwise, which the driver fills in
(``studies.space.with_train_defaults``); so are ``hidden`` and ``layers`` of ``--model mlp``.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, NoReturn

from studies.defaults import problem_default
from studies.names import (
    DECAYS,
    MODELS,
    OPTIMIZERS,
    PENALTIES,
    PROBLEM_PARAMS,
    PROBLEMS,
    TABLE_SUFFIXES,
)

__all__ = [
    "DEFAULTS",
    "DEVICES",
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_SIGINT",
    "EXIT_SIGTERM",
    "EXIT_STORAGE",
    "EXIT_USAGE",
    "FILE_FLAGS",
    "SAMPLERS",
    "Settings",
    "UsageError",
    "check_heartbeat",
    "parse_args",
]

SAMPLERS = ("tpe", "random", "grid")
DEVICES = ("auto", "cpu", "cuda")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_STORAGE = 3
EXIT_SIGINT = 128 + signal.SIGINT
EXIT_SIGTERM = 128 + signal.SIGTERM

_PROBLEM_LINES = "\n".join(
    f"  {name:<17} {text}\n  {'':<17} parameters: {', '.join(PROBLEM_PARAMS[name])}"
    for name, text in PROBLEMS.items()
)
EPILOG = f"""\
problems (--problem NAME, or NAME:key=value,..., e.g. synthetic:n_train=100,rho=0.5):
{_PROBLEM_LINES}
  {"FILE.csv|.parquet":<17} your own rows: --target (default: the last column) on --features
                    (default: the other columns); splits drawn by each data seed; a
                    categorical target (text, booleans) is classified

models (--model): linear (the lesson's x·w + b; softmax regression on a classification problem)
  or mlp (--layers hidden layers of --hidden ReLU units). A network has no closed-form oracle:
  the dense grid is the reference. Classification reports accuracy beside the cross-entropy, and
  the replication compares test accuracy.

exit codes:
  {EXIT_OK:<4} the study holds --n-trials COMPLETE trials (and its exports and report are written)
  {EXIT_FAILED:<4} a bug (with its traceback), a failed report, or every worker was killed
  {EXIT_USAGE:<4} a usage error, a changed setting or a damaged journal (one line, nothing
       written); or trials kept failing short of --n-trials (one line with the counts)
  {EXIT_STORAGE:<4} the storage is unreachable or the disk is full; rerun the same command to
       resume once it is back
  {EXIT_SIGINT:<4} interrupted by SIGINT: in-flight trials were failed and re-queued
  {EXIT_SIGTERM:<4} terminated by SIGTERM; same as {EXIT_SIGINT}
"""


class UsageError(ValueError):
    """An input the user can fix; reported as one line, exit code 2."""


@dataclass(frozen=True)
class Settings:
    """Every resolved option of one study run (picklable: worker processes receive it).

    ``lr``, ``epochs``, ``init_scale`` and ``batch_size`` are None until the driver fills in the
    problem's or ``wdbench.TrainConfig``'s defaults; ``hidden`` and ``layers`` are None for
    ``model == "linear"`` (they do not apply) and filled in for ``"mlp"``.
    """

    problem: str = "synthetic"
    target: str | None = None
    features: tuple[str, ...] | None = None
    n_train: int | None = None
    val_fraction: float | None = None
    test_fraction: float | None = None
    penalties: tuple[str, ...] = PENALTIES
    lam_range: tuple[float, float] = (1e-5, 1e2)
    n_trials: int = 200
    seeds: int = 5
    batch: int = 50
    sampler: str = "tpe"
    storage: str | None = None
    study_name: str = "weight-decay"
    workers: int = 1
    threads: int | None = None
    heartbeat_interval: float = 5.0
    stale_after: float = 30.0
    device: str = "auto"
    lr: float | None = None
    epochs: int | None = None
    init_scale: float | None = None
    batch_size: int | None = None
    model: str = "linear"
    hidden: int | None = None
    layers: int | None = None
    seed: int = 0
    out: str = "runs"
    no_report: bool = False
    grid_points: int = 256
    replications: int = 20
    config: str | None = None
    optimizers: tuple[str, ...] = ("sgd",)
    decay: tuple[str, ...] = DECAYS
    lr_range: tuple[float, float] | None = None


DEFAULTS = Settings()
_FIELDS = {f.name for f in fields(Settings)}


#: Sane maxima, checked before anything is created (docs: README, "Limits").
MAX_N_TRIALS = 1_000_000
MAX_SEEDS = 1_000
MAX_GRID_POINTS = 100_000
MAX_BATCH = 100_000
MAX_EPOCHS = 1_000_000
MAX_BATCH_SIZE = 1_000_000
MAX_HIDDEN = 4_096
MAX_LAYERS = 16
MAX_REPLICATIONS = 10_000
MAX_HEARTBEAT_S = 3_600.0
MAX_STALE_AFTER_S = 7 * 86_400.0
#: The longest study name every storage holds (Optuna's RDB column: 512 characters).
MAX_STUDY_NAME = 512


def _integer(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"must be <= {maximum:,}, got {value:,}")
        return value

    parse.__name__ = "integer"
    return parse


def _number(positive: bool) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be finite, got {text!r}")
        if value < 0 or (positive and value == 0):
            raise argparse.ArgumentTypeError(
                f"must be {'> 0' if positive else '>= 0'}, got {text!r}"
            )
        return value

    parse.__name__ = "number"
    return parse


def _names(choices: tuple[str, ...]) -> Callable[[str], tuple[str, ...]]:
    """A comma-separated subset of ``choices`` (duplicates dropped, order kept)."""

    def parse(text: str) -> tuple[str, ...]:
        names = [v.strip() for v in text.split(",") if v.strip()]
        if not names:
            raise argparse.ArgumentTypeError(f"is empty (choose from {', '.join(choices)})")
        for name in names:
            if name not in choices:
                raise argparse.ArgumentTypeError(f"{name!r} is not one of {', '.join(choices)}")
        return tuple(dict.fromkeys(names))

    parse.__name__ = "list"
    return parse


_penalties = _names(PENALTIES)
_LISTS = {"penalties": _penalties, "optimizers": _names(OPTIMIZERS), "decay": _names(DECAYS)}


def _problem(text: str) -> str:
    text = text.strip()
    if Path(text).suffix.lower() in TABLE_SUFFIXES:
        return text
    name = text.partition(":")[0].strip()
    if name not in PROBLEMS:
        raise argparse.ArgumentTypeError(
            f"{name!r} is not one of {', '.join(PROBLEMS)}, nor a {'/'.join(TABLE_SUFFIXES)} file"
        )
    return text


def _columns(text: str) -> tuple[str, ...]:
    names = tuple(v.strip() for v in text.split(","))
    if not all(names):
        raise argparse.ArgumentTypeError(f"must be comma-separated column names, got {text!r}")
    return names


def _fraction(text: str) -> float:
    value = _number(positive=True)(text)
    if not value < 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1), got {text!r}")
    return value


def _text(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    if "\x00" in text:
        raise argparse.ArgumentTypeError("must not contain a NUL character")
    return text


def _study_name(text: str) -> str:
    text = _text(text)
    if len(text) > MAX_STUDY_NAME:
        raise argparse.ArgumentTypeError(
            f"is {len(text)} characters long; storages hold at most {MAX_STUDY_NAME}"
        )
    return text


def _seconds(maximum: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = _number(positive=True)(text)
        if value > maximum:
            raise argparse.ArgumentTypeError(f"must be <= {maximum:g} s, got {text!r}")
        return value

    parse.__name__ = "seconds"
    return parse


def usable_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class _Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Defaults shown (except unset ones and switches); the epilog kept as written."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False or action.default == argparse.SUPPRESS:
            return action.help
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _parser() -> argparse.ArgumentParser:
    d = DEFAULTS
    positive, at_least_0 = _number(positive=True), _number(positive=False)
    p = _Parser(
        prog="python -m studies.search",
        description="Search penalty type × λ (× update rule) against validation loss with Optuna "
        "(the cross-entropy for classification).",
        epilog=EPILOG,
        formatter_class=_Formatter,
        allow_abbrev=False,
    )
    g = p.add_argument_group("problem and training budget")
    g.add_argument(
        "--problem",
        type=_problem,
        default=d.problem,
        metavar="PROBLEM",
        help="a registered problem, NAME or NAME:key=value,... (listed below), or a "
        ".csv/.parquet FILE of your own",
    )
    g.add_argument(
        "--lr", type=positive, help="learning rate η (default: TrainConfig's 0.003; digits: 0.05)"
    )
    g.add_argument(
        "--epochs",
        type=_integer(1, MAX_EPOCHS),
        help="epochs per run (default: TrainConfig's 100; digits: 30)",
    )
    g.add_argument(
        "--init-scale",
        type=at_least_0,
        help="w₀ ~ N(0, scale²); for mlp, the scale of torch's nn.Linear init (default: "
        "TrainConfig's)",
    )
    g.add_argument(
        "--batch-size",
        type=_integer(1, MAX_BATCH_SIZE),
        help="minibatch size, <= the training rows (default: TrainConfig's 5; digits: 20)",
    )
    g.add_argument(
        "--model",
        choices=MODELS,
        default=d.model,
        help="linear: x·w + b (softmax regression for classification); mlp: a ReLU network",
    )
    g.add_argument(
        "--hidden",
        type=_integer(1, MAX_HIDDEN),
        help="units per hidden layer of --model mlp (default: TrainConfig's 64)",
    )
    g.add_argument(
        "--layers",
        type=_integer(1, MAX_LAYERS),
        help="hidden layers of --model mlp (default: TrainConfig's 1)",
    )
    g.add_argument(
        "--seeds", type=_integer(1, MAX_SEEDS), default=d.seeds, help="data draws per trial"
    )
    g.add_argument(
        "--seed",
        type=_integer(0),
        default=d.seed,
        help="seeds the sampler and derives the data and train seeds",
    )
    g = p.add_argument_group("your own data (--problem FILE)")
    g.add_argument("--target", type=_text, help="the column to predict (default: the last)")
    g.add_argument(
        "--features", type=_columns, metavar="COL,COL", help="default: every other column"
    )
    g.add_argument("--n-train", type=_integer(2), help="training rows (default: the rest)")
    g.add_argument(
        "--val-fraction", type=_fraction, help="validation rows, as a fraction (default: 0.2)"
    )
    g.add_argument(
        "--test-fraction", type=_fraction, help="test rows, as a fraction (default: 0.2)"
    )
    g = p.add_argument_group("search space and sampler")
    g.add_argument(
        "--penalties",
        type=_penalties,
        default=",".join(d.penalties),
        help="comma-separated subset of the penalties",
    )
    g.add_argument(
        "--lam-range",
        type=positive,
        nargs=2,
        metavar=("LOW", "HIGH"),
        default=d.lam_range,
        help="λ search range (log-uniform)",
    )
    g.add_argument(
        "--optimizers",
        type=_LISTS["optimizers"],
        default=",".join(d.optimizers),
        help="comma-separated optimizers searched (sgd, momentum, adam)",
    )
    g.add_argument(
        "--decay",
        type=_LISTS["decay"],
        default=",".join(d.decay),
        help="where the penalty goes: coupled (in the optimizer's gradient: SGD/Adam "
        "weight_decay) and/or decoupled (AdamW / SGDW decay; the proximal step for l1 and "
        "elastic); plain SGD's l2 is one update either way",
    )
    g.add_argument(
        "--lr-range",
        type=positive,
        nargs=2,
        metavar=("LOW", "HIGH"),
        default=None,
        help="search the learning rate too, log-uniform in [LOW, HIGH] (default: fixed --lr)",
    )
    g.add_argument(
        "--sampler", choices=SAMPLERS, default=d.sampler, help="Optuna sampler; grid = a λ grid"
    )
    g.add_argument(
        "--n-trials",
        type=_integer(1, MAX_N_TRIALS),
        default=d.n_trials,
        help="COMPLETE trials the study should hold",
    )
    g.add_argument(
        "--batch",
        type=_integer(1, MAX_BATCH),
        default=d.batch,
        help="trials asked and trained together",
    )
    g.add_argument(
        "--grid-points",
        type=_integer(2, MAX_GRID_POINTS),
        default=None,
        help=f"dense-grid λ points per penalty and rule, the regret's reference (default: "
        f"{d.grid_points}; digits: {problem_default('digits', 'grid_points')})",
    )
    g.add_argument(
        "--replications",
        type=_integer(2, MAX_REPLICATIONS),
        default=d.replications,
        help="fresh data draws (each with a fresh train seed) on which the chosen "
        "configurations and the null model are retrained and compared, on the test split",
    )
    g = p.add_argument_group("storage and workers")
    g.add_argument(
        "--storage",
        type=_text,
        help="journal file (*.log) or sqlite:/// / postgresql:// URL "
        "(default: <out>/<study>/study.log)",
    )
    g.add_argument(
        "--study-name", type=_study_name, default=d.study_name, help="also names the run directory"
    )
    g.add_argument(
        "--workers",
        type=_integer(1),
        default=d.workers,
        help="local worker processes; workers asking at once overshoot --n-trials by "
        "at most (workers on all machines - 1) x --batch trials",
    )
    g.add_argument(
        "--threads",
        type=_integer(1),
        help="CPU threads of the population kernel per worker process (default: with one "
        "worker, a pool of the usable cores or one thread, whichever measurably gets more CPU; "
        "else the usable cores / --workers); torch itself runs one thread",
    )
    g.add_argument(
        "--heartbeat-interval",
        type=_seconds(MAX_HEARTBEAT_S),
        default=d.heartbeat_interval,
        help="seconds between a worker's heartbeats",
    )
    g.add_argument(
        "--stale-after",
        type=_seconds(MAX_STALE_AFTER_S),
        default=d.stale_after,
        help="seconds of silence after which a worker's RUNNING trials are failed "
        "and re-queued (> --heartbeat-interval)",
    )
    g = p.add_argument_group("device and output")
    g.add_argument("--device", choices=DEVICES, default=d.device, help="auto: CUDA when available")
    g.add_argument("--out", type=_text, default=d.out, help="output root")
    g.add_argument("--no-report", action="store_true", help="do not build the HTML report")
    g.add_argument("--config", help="TOML file with the same keys as the flags (flags win)")
    return p


def parse_args(argv: Sequence[str]) -> Settings:
    """Flags (and the TOML file they name) → validated ``Settings``."""
    argv = list(argv)
    parser = _parser()
    config = _config_path(argv)
    base: list[str] = []
    if config is not None:
        base = _toml_flags(config)
        try:
            parser.parse_args(base)
        except UsageError as exc:
            raise UsageError(f"config file {config}: {exc}") from None
    args = vars(parser.parse_args([*base, *argv]))
    if args["grid_points"] is None:  # the problem's default, else the suite's
        default = problem_default(args["problem"], "grid_points") or DEFAULTS.grid_points
        args["grid_points"] = int(default)
    args["lam_range"] = tuple(args["lam_range"])
    if args["lr_range"] is not None:
        args["lr_range"] = tuple(args["lr_range"])
    for name, parse in _LISTS.items():
        if isinstance(args[name], str):  # the default, which argparse parses only when used
            args[name] = parse(args[name])
    settings = Settings(**args)
    for flag, bounds in (("--lam-range", settings.lam_range), ("--lr-range", settings.lr_range)):
        if bounds is not None and bounds[0] >= bounds[1]:
            raise UsageError(f"{flag} must have LOW < HIGH, got {bounds[0]:g} {bounds[1]:g}")
    if settings.lr_range is not None and settings.lr is not None:
        raise UsageError("--lr and --lr-range exclude each other (--lr-range searches the lr)")
    check_heartbeat(settings)
    _check_file_flags(settings)
    _check_model_flags(settings)
    _check_workers(settings)
    return settings


#: Local worker processes per usable core, at most (a little oversubscription is harmless).
WORKERS_PER_CORE = 2
#: Memory a worker process holds (torch, Optuna, the data), measured ≈ 370 MB on CPU.
WORKER_BYTES = 400 * 2**20


def _check_workers(settings: Settings) -> None:
    """Refuse more local worker processes than the cores, the memory or the trials allow."""
    cores = usable_cores()
    if settings.workers > WORKERS_PER_CORE * cores:
        raise UsageError(
            f"--workers {settings.workers} exceeds {WORKERS_PER_CORE} per usable CPU core "
            f"({cores} here)"
        )
    if settings.workers > settings.n_trials:
        raise UsageError(
            f"--workers {settings.workers} exceeds --n-trials {settings.n_trials}: "
            "the extra workers would have nothing to do"
        )
    available = _available_memory()
    if (
        settings.workers > 1
        and available is not None
        and settings.workers * WORKER_BYTES > available
    ):
        raise UsageError(
            f"--workers {settings.workers} needs about "
            f"{settings.workers * WORKER_BYTES / 2**30:.1f} GiB; "
            f"{available / 2**30:.1f} GiB is available"
        )


def _available_memory() -> int | None:
    """MemAvailable of /proc/meminfo in bytes (None where there is none)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


#: Flags that describe a table file, meaningless for a registered problem.
FILE_FLAGS = ("target", "features", "n_train", "val_fraction", "test_fraction")


def _check_file_flags(settings: Settings) -> None:
    if Path(settings.problem).suffix.lower() in TABLE_SUFFIXES:
        return
    for name in FILE_FLAGS:
        if getattr(settings, name) is not None:
            flag = "--" + name.replace("_", "-")
            raise UsageError(
                f"{flag} applies to --problem FILE (.csv/.parquet), not to {settings.problem!r}"
                + (" (write NAME:n_train=N)" if name == "n_train" else "")
            )


def _check_model_flags(settings: Settings) -> None:
    if settings.model == "mlp":
        return
    for name in ("hidden", "layers"):
        if getattr(settings, name) is not None:
            raise UsageError(f"--{name} applies to --model mlp, not to --model {settings.model}")


def check_heartbeat(settings: Settings) -> None:
    """Raise ``UsageError`` unless the heartbeat settings can tell a live worker from a dead one."""
    if not settings.stale_after > settings.heartbeat_interval:
        raise UsageError(
            f"--stale-after ({settings.stale_after:g} s) must exceed --heartbeat-interval "
            f"({settings.heartbeat_interval:g} s)"
        )


def _problem_table(table: dict[str, Any], path: Path) -> str:
    """``problem = {name = "synthetic", n_train = 100}`` in TOML as ``synthetic:n_train=100``."""
    name = table.get("name")
    params = {k: v for k, v in table.items() if k != "name"}
    if not isinstance(name, str) or any(isinstance(v, dict | list) for v in params.values()):
        raise UsageError(
            f'config file {path}: a problem table needs name = "..." and single values'
        )
    return name + "".join(f"{',' if i else ':'}{k}={v}" for i, (k, v) in enumerate(params.items()))


def _config_path(argv: list[str]) -> Path | None:
    pre = _Parser(add_help=False, allow_abbrev=False)
    pre.add_argument("--config")
    known, _ = pre.parse_known_args(argv)
    return None if known.config is None else Path(known.config)


def _toml_flags(path: Path) -> list[str]:
    """The TOML file as flags, placed before the command line's so that flags win."""
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise UsageError(f"config file {path} does not exist") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"config file {path} is not UTF-8 text: {exc.reason}") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"config file {path} is not valid TOML: {exc}") from None
    flags: list[str] = []
    for key, value in data.items():
        name = key.replace("-", "_")
        if name not in _FIELDS or name == "config":
            raise UsageError(f"config file {path}: unknown key {key!r}")
        flags += _as_flags(f"--{name.replace('_', '-')}", value, path)
    return flags


def _as_flags(flag: str, value: Any, path: Path) -> list[str]:
    if flag == "--no-report":
        if not isinstance(value, bool):
            raise UsageError(f"config file {path}: {flag} must be true or false, got {value!r}")
        return [flag] if value else []
    ranges = ("--lam-range", "--lr-range")
    lists = ("--penalties", "--features", "--optimizers", "--decay")
    if flag in (*ranges, *lists) and isinstance(value, list):
        items = [str(v) for v in value]
        return [flag, *items] if flag in ranges else [flag, ",".join(items)]
    if flag == "--problem" and isinstance(value, dict):
        return [flag, _problem_table(value, path)]
    if isinstance(value, bool | list | dict):
        raise UsageError(f"config file {path}: {flag} must be a single value, got {value!r}")
    return [flag, str(value)]
