"""The settings that define a study: recorded with its creation, compared on every rerun.

A study's trials are comparable only under one search space and one objective, so every setting
that shapes either is listed once, in ``DEFINING``, and stored as the study user attribute
``DEFINITION_ATTR`` by the process that creates the study — and only by it. Every other process
(a rerun, another worker, another machine) reads the record and refuses, with one line naming
the setting and before it writes anything, a run whose settings differ. Two processes that
start a study at once race on Optuna's study creation, which exactly one wins (the storage holds
study names unique); the losers wait for the winner's record and compare, so no two objectives
ever enter one study.

To make a new setting part of the definition, add one ``Defining`` row: how its value is read
from ``Settings`` and the resolved ``StudyProblem`` (a JSON value, canonical: order-only
differences must compare equal), how it is named in the refusal, and, where equality is too
strict, when two values are the same.
"""

from __future__ import annotations

import dataclasses
import math
import operator
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.exceptions import DuplicatedStudyError
from optuna.study import StudyDirection

from studies.cli import Settings, UsageError
from studies.names import DECAYS, OPTIMIZERS, PENALTIES
from studies.problem import StudyProblem
from wdbench import TrainConfig

__all__ = ["DEFINING", "DEFINITION_ATTR", "Defining", "definition_of", "open_study"]

#: The study user attribute holding the definition (the name older studies used for theirs).
DEFINITION_ATTR = "objective"
#: How long a process that did not create the study waits for its creator's record.
RECORD_WAIT_S = 5.0
_TRAIN_DEFAULTS: dict[str, Any] = {f.name: f.default for f in dataclasses.fields(TrainConfig)}


def _show(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(_show(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _same_sampler(a: Any, b: Any) -> bool:
    """tpe and random draw from one space (either may continue the other); grid does not."""
    return bool((a == "grid") == (b == "grid"))


def _same_number(a: Any, b: Any) -> bool:
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same_number(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=0.0)
    return bool(a == b)


Value = Callable[[Settings, StudyProblem], Any]


@dataclass(frozen=True)
class Defining:
    """One setting of a study's definition."""

    key: str  # the key in the stored record
    value: Value  # its canonical JSON value under (settings, problem)
    label: str  # how a refusal names it (the flag)
    same: Callable[[Any, Any], bool] = operator.eq
    show: Callable[[Any], str] = _show


def _plain(value: Any) -> Any:
    """A settings value as JSON keeps it (Optuna stores user attributes as JSON)."""
    return list(value) if isinstance(value, tuple) else value


def _flag(name: str, same: Callable[[Any, Any], bool] = _same_number) -> Defining:
    def value(settings: Settings, problem: StudyProblem) -> Any:
        return _plain(getattr(settings, name))

    return Defining(name, value, "--" + name.replace("_", "-"), same)


def _short_hash(value: Any) -> str:
    return f"{value[:12]}…" if isinstance(value, str) else str(value)


DEFINING: tuple[Defining, ...] = (
    _flag("problem", operator.eq),  # the canonical label: a spec with parameters, or a path
    Defining("data_sha256", lambda s, p: p.sha256, "the data file's SHA-256", show=_short_hash),
    _flag("target", operator.eq),
    _flag("features", operator.eq),
    _flag("n_train"),
    _flag("val_fraction"),
    _flag("test_fraction"),
    Defining(
        "penalties",
        lambda s, p: sorted(s.penalties, key=PENALTIES.index),
        "--penalties",
        show=",".join,
    ),
    Defining("lam_range", lambda s, p: list(s.lam_range), "--lam-range", _same_number),
    Defining(
        "optimizers",
        lambda s, p: sorted(s.optimizers, key=OPTIMIZERS.index),
        "--optimizers",
        show=",".join,
    ),
    Defining("decay", lambda s, p: sorted(s.decay, key=DECAYS.index), "--decay", show=",".join),
    Defining(
        "lr_range",
        lambda s, p: None if s.lr_range is None else list(s.lr_range),
        "--lr-range",
        _same_number,
    ),
    _flag("seeds"),
    _flag("seed"),
    _flag("epochs"),
    _flag("lr"),
    _flag("init_scale"),
    Defining(
        "batch_size",
        lambda s, p: _TRAIN_DEFAULTS["batch_size"] if s.batch_size is None else s.batch_size,
        "--batch-size",
        _same_number,
    ),
    _flag("model", operator.eq),
    _flag("hidden"),
    _flag("layers"),
    Defining("sampler", lambda s, p: s.sampler, "--sampler", _same_sampler),
)


def definition_of(settings: Settings, problem: StudyProblem) -> dict[str, Any]:
    """The record of ``settings`` (budget defaults filled in) and ``problem`` as it is stored."""
    return {d.key: d.value(settings, problem) for d in DEFINING}


def check_definition(stored: dict[str, Any], settings: Settings, problem: StudyProblem) -> None:
    """Raise ``UsageError`` naming the first setting ``settings`` would change.

    Keys missing from ``stored`` (a study recorded before they were defining) are not compared.
    """
    for d in DEFINING:
        if d.key not in stored:
            continue
        wanted = d.value(settings, problem)
        if not d.same(stored[d.key], wanted):
            raise UsageError(
                f"study {settings.study_name!r} was created with {d.label} "
                f"{d.show(stored[d.key])}, not {d.show(wanted)}: its trials would not be "
                "comparable (choose another --study-name)"
            )


def open_study(
    storage: optuna.storages.BaseStorage,
    settings: Settings,
    problem: StudyProblem,
    sampler: optuna.samplers.BaseSampler,
    wait_s: float = RECORD_WAIT_S,
) -> optuna.Study:
    """Create the study with its definition, or load it after checking the definition.

    A refused run (``UsageError``) has written nothing to the storage.
    """
    name = settings.study_name
    try:
        study_id = storage.get_study_id_from_name(name)
    except KeyError:
        try:
            study_id = storage.create_new_study([StudyDirection.MINIMIZE], name)
        except DuplicatedStudyError:  # another process created it meanwhile: compare below
            study_id = storage.get_study_id_from_name(name)
        else:
            storage.set_study_user_attr(study_id, DEFINITION_ATTR, definition_of(settings, problem))
            return optuna.load_study(study_name=name, storage=storage, sampler=sampler)
    stored = _recorded(storage, study_id, wait_s)
    if stored is None:  # a study from before definitions were recorded, or its creator died
        storage.set_study_user_attr(study_id, DEFINITION_ATTR, definition_of(settings, problem))
    else:
        check_definition(stored, settings, problem)
    return optuna.load_study(study_name=name, storage=storage, sampler=sampler)


def _recorded(
    storage: optuna.storages.BaseStorage, study_id: int, wait_s: float
) -> dict[str, Any] | None:
    """The stored definition; waits up to ``wait_s`` for a creator that has not written it."""
    if storage.get_all_trials(study_id, deepcopy=False):
        wait_s = 0.0  # a study with trials: its creator is long done
    deadline = time.monotonic() + wait_s
    while True:
        stored = storage.get_study_user_attrs(study_id).get(DEFINITION_ATTR)
        if isinstance(stored, dict):
            return stored
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.05)
