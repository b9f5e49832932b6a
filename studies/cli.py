"""Command line of ``python -m studies.search``: flags, TOML config, and validated ``Settings``.

Precedence: built-in defaults < ``--config FILE.toml`` (keys are the flag names, with ``-`` or
``_``) < flags. Every invalid value raises ``UsageError`` with one line naming the problem.
"""

from __future__ import annotations

import argparse
import math
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, NoReturn

from wdbench import PENALTIES, PROBLEMS

__all__ = ["DEFAULTS", "SAMPLERS", "Settings", "UsageError", "parse_args"]

SAMPLERS = ("tpe", "random", "grid")
DEVICES = ("auto", "cpu", "cuda")


class UsageError(ValueError):
    """An input the user can fix; reported as one line, exit code 2."""


@dataclass(frozen=True)
class Settings:
    """Every resolved option of one study run (picklable: worker processes receive it)."""

    problem: str = "synthetic"
    penalties: tuple[str, ...] = ("none", "l2", "l1", "elastic")
    lam_range: tuple[float, float] = (1e-5, 1e2)
    n_trials: int = 200
    seeds: int = 5
    batch: int = 50
    sampler: str = "tpe"
    storage: str | None = None
    study_name: str = "weight-decay"
    workers: int = 1
    heartbeat_interval: float = 5.0
    stale_after: float = 30.0
    device: str = "auto"
    lr: float = 0.003
    epochs: int = 100
    init_scale: float = 1.0
    seed: int = 0
    out: str = "runs"
    no_report: bool = False
    grid_points: int = 256
    config: str | None = None


DEFAULTS = Settings()
_FIELDS = {f.name for f in fields(Settings)}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="python -m studies.search",
        description="Search penalty type × λ (× update rule) against validation loss with Optuna.",
        argument_default=argparse.SUPPRESS,
        allow_abbrev=False,
    )
    d = DEFAULTS
    add = p.add_argument
    add("--problem", help=f"one of {', '.join(PROBLEMS)} (default {d.problem})")
    add("--penalties", help="comma-separated subset of none,l2,l1,elastic (default all)")
    add("--lam-range", nargs=2, metavar=("LOW", "HIGH"), help="λ search range (log-uniform)")
    add("--n-trials", help=f"COMPLETE trials the study should hold (default {d.n_trials})")
    add("--seeds", help=f"data seeds per trial (default {d.seeds})")
    add("--batch", help=f"trials asked and trained together (default {d.batch})")
    add("--sampler", help=f"one of {', '.join(SAMPLERS)} (default {d.sampler})")
    add("--storage", help="journal file (*.log) or sqlite:/// / postgresql:// URL")
    add("--study-name", help=f"study name (default {d.study_name})")
    add("--workers", help="local worker processes on this study (default 1); workers asking at "
        "once overshoot --n-trials by at most (workers on all machines - 1) x --batch trials")
    add("--heartbeat-interval", help=f"seconds between a worker's heartbeats "
        f"(default {d.heartbeat_interval:g})")
    add("--stale-after", help=f"seconds of silence after which a worker's RUNNING trials are "
        f"failed and re-queued (default {d.stale_after:g}; > --heartbeat-interval)")
    add("--device", help=f"one of {', '.join(DEVICES)} (default {d.device})")
    add("--lr", help=f"learning rate η (default {d.lr})")
    add("--epochs", help=f"epochs per run (default {d.epochs})")
    add("--init-scale", help=f"w₀ ~ N(0, scale²) (default {d.init_scale})")
    add("--seed", help="seeds the sampler and derives the data and train seeds (default 0)")
    add("--out", help=f"output root (default {d.out}/)")
    add("--grid-points", help=f"dense-grid λ points per penalty and rule (default {d.grid_points})")
    add("--no-report", action="store_true", help="do not build the HTML report")
    add("--config", help="TOML file with the same keys as the flags (flags win)")
    return p


def parse_args(argv: Sequence[str]) -> Settings:
    """Flags (and the TOML file they name) → validated ``Settings``."""
    given = {k: v for k, v in vars(_parser().parse_args(list(argv))).items()}
    raw: dict[str, Any] = {}
    config = given.get("config")
    if config is not None:
        raw.update(_read_toml(Path(config)))
    raw.update(given)
    return _build(raw)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise UsageError(f"config file {path} does not exist") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"config file {path} is not valid TOML: {exc}") from None
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = key.replace("-", "_")
        if name not in _FIELDS or name == "config":
            raise UsageError(f"config file {path}: unknown key {key!r}")
        out[name] = value
    return out


def _build(raw: dict[str, Any]) -> Settings:
    d = DEFAULTS
    get = raw.get
    return Settings(
        problem=_choice(get("problem", d.problem), "--problem", PROBLEMS),
        penalties=_penalties(get("penalties", d.penalties)),
        lam_range=_lam_range(get("lam_range", d.lam_range)),
        n_trials=_int(get("n_trials", d.n_trials), "--n-trials", 1),
        seeds=_int(get("seeds", d.seeds), "--seeds", 1),
        batch=_int(get("batch", d.batch), "--batch", 1),
        sampler=_choice(get("sampler", d.sampler), "--sampler", SAMPLERS),
        storage=_optional_str(get("storage", d.storage), "--storage"),
        study_name=_name(get("study_name", d.study_name)),
        workers=_int(get("workers", d.workers), "--workers", 1),
        heartbeat_interval=_float(
            get("heartbeat_interval", d.heartbeat_interval), "--heartbeat-interval", positive=True
        ),
        stale_after=_float(get("stale_after", d.stale_after), "--stale-after", positive=True),
        device=_choice(get("device", d.device), "--device", DEVICES),
        lr=_float(get("lr", d.lr), "--lr", positive=True),
        epochs=_int(get("epochs", d.epochs), "--epochs", 1),
        init_scale=_float(get("init_scale", d.init_scale), "--init-scale", positive=False),
        seed=_int(get("seed", d.seed), "--seed", 0),
        out=_path(get("out", d.out)),
        no_report=_bool(get("no_report", d.no_report), "--no-report"),
        grid_points=_int(get("grid_points", d.grid_points), "--grid-points", 2),
        config=_optional_str(get("config", d.config), "--config"),
    )


def _int(value: Any, flag: str, minimum: int) -> int:
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise UsageError(f"{flag} must be an integer, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int):
        raise UsageError(f"{flag} must be an integer, got {value!r}")
    if value < minimum:
        raise UsageError(f"{flag} must be >= {minimum}, got {value}")
    return value


def _float(value: Any, flag: str, positive: bool) -> float:
    number: float
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise UsageError(f"{flag} must be a number, got {value!r}") from None
    elif isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    else:
        raise UsageError(f"{flag} must be a number, got {value!r}")
    if not math.isfinite(number):
        raise UsageError(f"{flag} must be finite, got {value!r}")
    if number < 0 or (positive and number == 0):
        raise UsageError(f"{flag} must be {'> 0' if positive else '>= 0'}, got {value!r}")
    return number


def _choice(value: Any, flag: str, choices: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise UsageError(f"{flag} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _penalties(value: Any) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(v, str) for v in items):
        raise UsageError(f"--penalties must be a comma-separated list, got {value!r}")
    names = [v.strip() for v in items if v.strip()]
    if not names:
        raise UsageError("--penalties is empty (choose from none, l2, l1, elastic)")
    for name in names:
        _choice(name, "--penalties", tuple(PENALTIES))
    return tuple(dict.fromkeys(names))


def _lam_range(value: Any) -> tuple[float, float]:
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise UsageError(f"--lam-range takes two numbers LOW HIGH, got {value!r}")
    low, high = (_float(v, "--lam-range", positive=True) for v in value)
    if low >= high:
        raise UsageError(f"--lam-range must have LOW < HIGH, got {low:g} {high:g}")
    return low, high


def _name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise UsageError(f"--study-name must be a non-empty string, got {value!r}")
    return value


def _optional_str(value: Any, flag: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise UsageError(f"{flag} must be a string, got {value!r}")


def _path(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise UsageError(f"--out must be a non-empty path, got {value!r}")
    return value


def _bool(value: Any, flag: str) -> bool:
    if not isinstance(value, bool):
        raise UsageError(f"{flag} must be true or false, got {value!r}")
    return value
