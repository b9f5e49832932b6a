"""The problem a study runs on: a registered problem with its parameters, or a table file.

Resolved once per process from ``Settings``: a spec is parsed and checked; a file is read, checked
and hashed (SHA-256). Each data seed draws its own problem (``draws``). ``record`` is the ``data``
object of ``run.json`` (docs/outputs.md), so the report shows what the study ran on (its task and,
for classification, its classes with their rows) and a rerun can refuse a file whose content
changed. A ``ValueError`` from here is the user's mistake, one line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from studies.cli import Settings
from wdbench import Problem, ProblemSpec, Table, read_table
from wdbench.problems import TEST_FRACTION, VAL_FRACTION, is_table_path, split_sizes

__all__ = ["StudyProblem"]


@dataclass(frozen=True, eq=False)
class StudyProblem:
    """A registered problem (``spec``) or a file's rows (``table``) with its split settings.

    ``label`` is the canonical ``--problem``: the spec as ``ProblemSpec.label`` writes it, or the
    file's absolute path.
    """

    label: str
    spec: ProblemSpec | None = None
    table: Table | None = None
    n_train: int | None = None
    val_fraction: float = VAL_FRACTION
    test_fraction: float = TEST_FRACTION
    #: the last ``draws``: the search's draws are asked for again by the grid and the selection
    _last: dict[tuple[int, ...], list[Problem]] = field(
        default_factory=dict, init=False, repr=False
    )

    @classmethod
    def from_settings(cls, settings: Settings) -> StudyProblem:
        """Parse the spec, or read and check the file and that its rows fill the splits."""
        if not is_table_path(settings.problem):
            spec = ProblemSpec.parse(settings.problem)
            return cls(spec.label, spec=spec)
        table = read_table(settings.problem, settings.target, settings.features)
        val = VAL_FRACTION if settings.val_fraction is None else settings.val_fraction
        test = TEST_FRACTION if settings.test_fraction is None else settings.test_fraction
        split_sizes(table.n_rows, settings.n_train, val, test, source=table.source)
        return cls(
            str(Path(settings.problem).resolve()),
            table=table,
            n_train=settings.n_train,
            val_fraction=val,
            test_fraction=test,
        )

    @property
    def sha256(self) -> str | None:
        """The file's SHA-256 (None for a registered problem)."""
        return None if self.table is None else self.table.sha256

    def draw(self, data_seed: int) -> Problem:
        """The problem drawn by ``data_seed`` (on the CPU; the kernel casts it)."""
        if self.table is None:
            assert self.spec is not None
            return self.spec.build(data_seed)
        return Problem.from_table(
            self.table,
            seed=data_seed,
            n_train=self.n_train,
            val_fraction=self.val_fraction,
            test_fraction=self.test_fraction,
        )

    def draws(self, data_seeds: Sequence[int]) -> list[Problem]:
        """One problem per data seed, in data-seed order (the same ``Problem`` objects as the
        last call's, for the same seeds: a problem is immutable)."""
        key = tuple(data_seeds)
        if key not in self._last:
            self._last.clear()
            self._last[key] = [self.draw(s) for s in key]
        return list(self._last[key])

    def record(self, problem: Problem) -> dict[str, Any]:
        """The ``data`` object of ``run.json``; ``problem`` is one draw (the split sizes)."""
        true_w = problem.meta.get("true_w")
        common = {
            "label": self.label,
            "splits": {s: int(problem.split(s)[1].shape[0]) for s in ("train", "val", "test")},
            "dim": problem.dim,
            "true_nonzero": None if true_w is None else int((true_w != 0).sum()),
            "task": problem.task,
        }
        if self.table is None:
            assert self.spec is not None
            family = self.spec.family
            classes = {"classes": _draw_classes(problem)} if problem.n_classes else {}
            return {
                "kind": "registered",
                "name": family.name,
                "description": family.description,
                "params": self.spec.resolved(),
                **common,
                **classes,
            }
        return {
            "kind": "file",
            "name": Path(self.table.source).name,
            **self.table.provenance(),
            "path": self.label,
            "val_fraction": self.val_fraction,
            "test_fraction": self.test_fraction,
            **common,
        }


def _draw_classes(problem: Problem) -> list[dict[str, Any]]:
    """Each class of a registered classification problem with its rows in the draw's splits."""
    names = problem.meta.get("classes") or [str(c) for c in range(problem.n_classes)]
    labels = torch.cat([problem.split(s)[1] for s in ("train", "val", "test")])
    counts = torch.bincount(labels.cpu(), minlength=problem.n_classes).tolist()
    return [{"name": str(n), "rows": int(c)} for n, c in zip(names, counts, strict=True)]
