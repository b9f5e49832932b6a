"""Problem registry: name → builder(seed, dtype, **params), with a one-line description.

The names are the ones the command line, result rows and reports use. A ``ProblemSpec`` is a name
with parameter values, written ``name`` or ``name:key=value,key=value`` (``synthetic:n_train=100,
rho=0.5``) or given as a mapping (a TOML table); values are typed by the parameter's default and
checked when the spec is made, so a bad value is refused before anything is built.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from wdbench.problems._diabetes import check_diabetes, diabetes
from wdbench.problems._digits import check_digits, digits
from wdbench.problems._problem import Problem
from wdbench.problems._synthetic import check_synthetic, synthetic

__all__ = ["PROBLEMS", "SPARSE_SUPPORT", "Param", "ProblemFamily", "ProblemSpec", "get_problem"]

Value = int | float | None

#: Non-zero true weights of the ``synthetic-sparse`` problem (out of 200).
SPARSE_SUPPORT = 10


@dataclass(frozen=True)
class Param:
    """A builder parameter: its type, default and meaning; ``optional`` ones also take None
    (``none`` on the command line)."""

    name: str
    kind: type[int] | type[float]
    default: Value
    help: str
    optional: bool = False

    def coerce(self, value: Any, problem: str) -> Value:
        """``value`` (a string from the command line, or a TOML number) as this parameter's type."""
        where = f"problem {problem}: {self.name}"
        if isinstance(value, str):
            text = value.strip()
            if text.lower() == "none" and self.optional:
                return None
            try:
                return self.kind(text)
            except ValueError:
                raise ValueError(f"{where} must be {self._noun()}, got {text!r}") from None
        if value is None and self.optional:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{where} must be {self._noun()}, got {value!r}")
        if self.kind is int and not float(value).is_integer():
            raise ValueError(f"{where} must be {self._noun()}, got {value!r}")
        return self.kind(value)

    def _noun(self) -> str:
        return "an integer" if self.kind is int else "a number"


@dataclass(frozen=True)
class ProblemFamily:
    """A registered problem: ``build(seed, dtype, **params)`` draws one instance."""

    name: str
    description: str
    params: tuple[Param, ...]
    builder: Callable[..., Problem]
    checker: Callable[..., None]

    def defaults(self) -> dict[str, Value]:
        return {p.name: p.default for p in self.params}

    def resolve(self, params: Mapping[str, Any]) -> dict[str, Value]:
        """Every parameter's value (defaults for those not given), typed and checked."""
        known = {p.name: p for p in self.params}
        unknown = sorted(set(params) - set(known))
        if unknown:
            raise ValueError(
                f"problem {self.name} has no parameter {unknown[0]!r} "
                f"(parameters: {', '.join(known)})"
            )
        values = self.defaults()
        values.update({k: known[k].coerce(v, self.name) for k, v in params.items()})
        try:
            self.checker(**values)
        except ValueError as e:
            raise ValueError(f"problem {self.name}: {e}") from None
        return values

    def build(self, seed: int, dtype: torch.dtype = torch.float32, **params: Any) -> Problem:
        """One draw (``seed``) of the problem with ``params`` (the others at their defaults)."""
        return self.builder(seed=seed, dtype=dtype, **self.resolve(params))


@dataclass(frozen=True)
class ProblemSpec:
    """A registered problem's name and the parameter values given for it (checked; those equal
    to their default are dropped, so equal problems have equal specs and labels)."""

    name: str
    params: tuple[tuple[str, Value], ...] = ()

    def __post_init__(self) -> None:
        resolved = get_problem(self.name).resolve(dict(self.params))
        defaults = self.family.defaults()
        order = [p.name for p in self.family.params]
        given = sorted(
            (k for k in dict(self.params) if resolved[k] != defaults[k]), key=order.index
        )
        object.__setattr__(self, "params", tuple((k, resolved[k]) for k in given))

    @classmethod
    def parse(cls, text: str) -> ProblemSpec:
        """``name`` or ``name:key=value,key=value``."""
        name, _, rest = text.strip().partition(":")
        params: dict[str, str] = {}
        for item in filter(None, (part.strip() for part in rest.split(","))):
            key, eq, value = item.partition("=")
            if not eq or not key.strip():
                raise ValueError(f"problem {name}: expected key=value, got {item!r}")
            if key.strip() in params:
                raise ValueError(f"problem {name}: {key.strip()} given twice")
            params[key.strip()] = value
        return cls.of(name.strip(), params)

    @classmethod
    def of(cls, name: str, params: Mapping[str, Any] | None = None) -> ProblemSpec:
        """The spec of ``name`` with ``params`` (strings or numbers, e.g. a TOML table)."""
        return cls(name, tuple((params or {}).items()))

    @property
    def family(self) -> ProblemFamily:
        return PROBLEMS[self.name]

    @property
    def label(self) -> str:
        """The spec as ``parse`` reads it: ``synthetic:n_train=100,rho=0.5``."""
        given = ",".join(f"{k}={v}" for k, v in self.params)
        return f"{self.name}:{given}" if given else self.name

    def resolved(self) -> dict[str, Value]:
        """Every parameter's value, defaults included (what the report shows)."""
        return self.family.resolve(dict(self.params))

    def build(self, seed: int, dtype: torch.dtype = torch.float32) -> Problem:
        """One draw of the problem by ``seed``."""
        return self.family.build(seed, dtype, **dict(self.params))


def get_problem(name: str) -> ProblemFamily:
    """The registered problem ``name`` (``ValueError`` naming the choices otherwise)."""
    try:
        return PROBLEMS[name]
    except KeyError:
        raise ValueError(
            f"problem must be one of {', '.join(PROBLEMS)} or a .csv/.parquet file, got {name!r}"
        ) from None


def _synthetic_params(sparsity: int | None) -> tuple[Param, ...]:
    return (
        Param("n_train", int, 50, "training rows"),
        Param("n_val", int, 100, "validation rows"),
        Param("n_test", int, 1000, "test rows"),
        Param("dim", int, 200, "features"),
        Param("noise", float, 0.01, "standard deviation of the label noise ε"),
        Param("sparsity", int, sparsity, "non-zero true weights (none: all)", optional=True),
        Param("rho", float, 0.0, "feature correlation ρ^|i−j| (Toeplitz)"),
        Param("true_w", float, 0.01, "value of each non-zero true weight"),
        Param("true_b", float, 0.1, "true bias"),
    )


def _check_synthetic(**v: Any) -> None:
    check_synthetic(
        v["n_train"], v["n_val"], v["n_test"], v["dim"], v["noise"], v["sparsity"], v["rho"]
    )


def _check_diabetes(**v: Any) -> None:
    check_diabetes(v["n_train"], v["degree"], v["n_val"])


def _check_digits(**v: Any) -> None:
    check_digits(v["n_train"], v["n_val"])


PROBLEMS: dict[str, ProblemFamily] = {
    f.name: f
    for f in (
        ProblemFamily(
            "synthetic",
            "the lesson's data: y = 0.1 + Σ 0.01·xᵢ + ε, x ~ N(0, I₂₀₀), 50 training rows",
            _synthetic_params(None),
            synthetic,
            _check_synthetic,
        ),
        ProblemFamily(
            "synthetic-sparse",
            f"the lesson's data with {SPARSE_SUPPORT} of the 200 true weights non-zero",
            _synthetic_params(SPARSE_SUPPORT),
            synthetic,
            _check_synthetic,
        ),
        ProblemFamily(
            "diabetes",
            "scikit-learn's diabetes data, 285 polynomial features, 50 training rows",
            (
                Param("n_train", int, 50, "training rows"),
                Param("degree", int, 3, "degree of the polynomial features"),
                Param("n_val", int, 100, "validation rows (the rest of the 442 are test rows)"),
            ),
            diabetes,
            _check_diabetes,
        ),
        ProblemFamily(
            "digits",
            "scikit-learn's handwritten digits: 8×8 pixels, 10 classes, 200 training rows",
            (
                Param("n_train", int, 200, "training rows"),
                Param("n_val", int, 300, "validation rows (the rest of the 1,797 are test rows)"),
            ),
            digits,
            _check_digits,
        ),
    )
}
