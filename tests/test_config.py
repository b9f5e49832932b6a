"""TrainConfig validation: every invalid value is a one-line ``ValueError`` naming its field."""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

import pytest
import torch

from wdbench import DTYPES, LOOPS, OPTIM_IMPLS, PENALTIES, Problem, TrainConfig, train
from wdbench.config import COMBOS, IMPLS, LEGACY_LOOPS, loop_name, split_loop

INVALID: list[tuple[str, Any]] = [
    ("lam", -1e-9),
    ("lam", -3.0),
    ("lam", math.inf),
    ("lam", math.nan),
    ("lam", True),
    ("lam", "1.0"),
    ("lr", 0.0),
    ("lr", -0.1),
    ("lr", math.inf),
    ("lr", math.nan),
    ("lr", False),
    ("l1_ratio", -0.01),
    ("l1_ratio", 1.01),
    ("l1_ratio", math.nan),
    ("init_scale", -1.0),
    ("init_scale", math.inf),
    ("init_scale", math.nan),
    ("epochs", 0),
    ("epochs", -5),
    ("epochs", True),
    ("epochs", 10.0),
    ("batch_size", 0),
    ("batch_size", True),
    ("batch_size", 5.0),
    ("seed", True),
    ("seed", 1.5),
    ("seed", "0"),
    ("penalty", "l3"),
    ("penalty", "L2"),
    ("loop", "adam"),
    ("dtype", "float16"),
    ("optim_impl", "cuda-graph"),
]


def _raises_naming(field: str, **fields: Any) -> str:
    with pytest.raises(ValueError, match=rf"\b{re.escape(field)}\b") as info:
        TrainConfig(**fields)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_defaults_are_the_lessons_setting() -> None:
    c = TrainConfig()
    assert (c.lr, c.epochs, c.batch_size, c.init_scale) == (0.003, 100, 5, 1.0)
    assert (c.penalty, c.loop, c.lam, c.dtype) == ("l2", "scratch", 0.0, "float32")
    assert c.torch_dtype is torch.float32


def test_config_is_frozen_and_varied_by_replace() -> None:
    c = TrainConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.lam = 1.0  # type: ignore[misc]
    d = dataclasses.replace(c, lam=3.0)
    assert d.lam == 3.0 and c.lam == 0.0 and hash(d) != hash(c)


@pytest.mark.parametrize(("field", "value"), INVALID)
def test_invalid_value_is_a_value_error_naming_the_field(field: str, value: Any) -> None:
    _raises_naming(field, **{field: value})


@pytest.mark.parametrize("field", ["lam", "lr", "l1_ratio", "init_scale"])
@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_non_finite_numbers_are_rejected(field: str, value: float) -> None:
    _raises_naming(field, **{field: value})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("lam", 0),
        ("lam", 5),
        ("l1_ratio", 0),
        ("l1_ratio", 1),
        ("init_scale", 0.0),
        ("lr", 1),
        ("epochs", 1),
        ("batch_size", 1),
        ("seed", -3),
        ("seed", 2**40),
    ],
)
def test_boundary_values_are_accepted(field: str, value: Any) -> None:
    assert getattr(TrainConfig(**{field: value}), field) == value


@pytest.mark.parametrize("dtype", sorted(DTYPES))
@pytest.mark.parametrize("impl", OPTIM_IMPLS)
def test_registered_dtypes_and_optim_impls_are_accepted(dtype: Any, impl: str) -> None:
    c = TrainConfig(dtype=dtype, optim_impl=impl, loop="optim")
    assert c.torch_dtype is DTYPES[dtype]


@pytest.mark.parametrize(
    ("loop", "penalty"), [(lp, p) for lp in LOOPS for p in PENALTIES if p not in LOOPS[lp]]
)
def test_penalty_the_loop_cannot_apply_names_both(loop: str, penalty: str) -> None:
    message = _raises_naming("penalty", loop=loop, penalty=penalty)
    assert loop in message


@pytest.mark.parametrize(("loop", "penalty"), [(lp, p) for lp in LOOPS for p in LOOPS[lp]])
def test_every_supported_combination_is_accepted(loop: str, penalty: str) -> None:
    assert TrainConfig(loop=loop, penalty=penalty, lam=1.0).loop == loop


@pytest.mark.parametrize(
    ("loop", "allowed"),
    [
        ("decoupled", {"none", "l2"}),
        ("concise", {"none", "l2"}),
        ("scratch", {"none", "l2", "l1", "elastic"}),
        ("optim", {"none", "l2", "l1", "elastic"}),
        ("proximal", {"none", "l2", "l1", "elastic"}),
    ],
)
def test_decoupled_and_concise_take_only_none_and_l2(loop: str, allowed: set[str]) -> None:
    accepted = set()
    for penalty in PENALTIES:
        try:
            TrainConfig(loop=loop, penalty=penalty)
        except ValueError:
            continue
        accepted.add(penalty)
    assert accepted == allowed


def test_batch_larger_than_the_training_set_fails_at_train_time() -> None:
    problem = Problem.synthetic(n_train=4, n_val=2, n_test=2, dim=3)
    config = TrainConfig(batch_size=5, epochs=1)
    with pytest.raises(ValueError, match=r"batch_size \(5\).*training set \(4 rows\)") as info:
        train(problem, config)
    assert "\n" not in str(info.value)
    assert train(problem, dataclasses.replace(config, batch_size=4)).status == "ok"


@pytest.mark.parametrize(("loop", "pair"), list(LEGACY_LOOPS.items()))
def test_legacy_loop_names_build_the_same_config(loop: str, pair: tuple[str, str]) -> None:
    """``loop=`` (old callers, old run files) sets (rule, impl); reading it back gives the name."""
    rule, impl = pair
    assert split_loop(loop) == pair and loop_name(rule, impl) == loop
    old = TrainConfig(penalty="l2", lam=0.5, loop=loop)
    assert old == TrainConfig(penalty="l2", lam=0.5, rule=rule, impl=impl)
    assert (old.rule, old.impl, old.loop) == (rule, impl, loop)
    assert dataclasses.replace(old, lam=1.0).loop == loop
    assert dataclasses.replace(TrainConfig(), loop=loop).impl == impl
    assert LOOPS[loop] == COMBOS[impl, rule]


@pytest.mark.parametrize("loop", list(LEGACY_LOOPS))
def test_legacy_loop_names_train_the_same_numbers(loop: str) -> None:
    rule, impl = split_loop(loop)
    problem = Problem.synthetic(n_train=12, n_val=5, n_test=5, dim=8, seed=1, dtype=torch.float64)
    fields: dict[str, Any] = {"penalty": "l2", "lam": 0.4, "epochs": 2, "dtype": "float64"}
    old = train(problem, TrainConfig(loop=loop, **fields), curves=False)
    new = train(problem, TrainConfig(rule=rule, impl=impl, **fields), curves=False)
    assert torch.equal(old.w, new.w) and old.b == new.b
    assert old.to_row() == new.to_row()
    assert (new.to_row()["rule"], new.to_row()["impl"], new.to_row()["loop"]) == (rule, impl, loop)


def test_an_old_run_files_loop_column_converts() -> None:
    import pandas as pd

    old = pd.DataFrame({"loop": ["scratch", "proximal", "decoupled"], "lam": [0.1, 0.2, 0.3]})
    rule, impl = zip(*old["loop"].map(split_loop), strict=True)
    assert list(rule) == ["coupled", "proximal", "decoupled"]
    assert list(impl) == ["scratch", "functional", "functional"]
    with pytest.raises(ValueError, match="loop must be one of"):
        split_loop("adam")


def test_new_pairs_get_a_composite_loop_name() -> None:
    assert TrainConfig(rule="coupled", impl="functional", penalty="l1").loop == "coupled-functional"


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"rule": "adam"}, "rule"),
        ({"impl": "jax"}, "impl"),
        ({"rule": "proximal", "impl": "scratch"}, "impl"),
        ({"rule": "decoupled", "impl": "functional", "penalty": "l1"}, "penalty"),
        ({"impl": "concise", "penalty": "elastic"}, "penalty"),
    ],
)
def test_invalid_rule_impl_pairs_are_refused(fields: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        TrainConfig(**fields)


def test_combos_cover_every_impl_and_rule() -> None:
    assert {impl for impl, _ in COMBOS} == set(IMPLS) == {"scratch", "optim", "concise",
                                                          "functional"}  # fmt: skip
    assert {rule for _, rule in COMBOS} == {"coupled", "decoupled", "proximal"}


def test_replace_keeps_a_new_rule_over_the_loop_read_back() -> None:
    """``dataclasses.replace`` passes ``config.loop`` back; it must not undo a new rule/impl."""
    old = TrainConfig(penalty="l1", loop="proximal")
    new = dataclasses.replace(old, rule="coupled", impl="optim")
    assert (new.rule, new.impl, new.loop) == ("coupled", "optim", "optim")
    mixed = TrainConfig(rule="coupled", impl="functional", penalty="l1")
    assert dataclasses.replace(mixed, lam=1.0).impl == "functional"
