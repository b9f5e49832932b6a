"""The compiled CPU kernel: built where a compiler is, the same numbers on any thread count,
and the torch kernels in its place where it cannot be built."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from native_build import HAS_COMPILER, IN_CI, TURNED_OFF

from wdbench import Problem, TrainConfig, train_population
from wdbench.networks import _native
from wdbench.population import config_columns, make_group, plan_groups, stack
from wdbench.population.native import (
    _build,
    native_applies,
    native_available,
    train_group_native,
    unavailable_reason,
)
from wdbench.threads import set_cpu_threads


@pytest.mark.skipif(
    (not HAS_COMPILER and not IN_CI) or TURNED_OFF, reason="no C++ compiler on PATH"
)
def test_builds_where_a_compiler_is() -> None:
    assert native_available(), unavailable_reason()


@pytest.mark.skipif(
    (not HAS_COMPILER and not IN_CI) or TURNED_OFF, reason="no C++ compiler on PATH"
)
def test_an_edited_header_rebuilds_the_kernels_that_include_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kernel's cached library is keyed on the headers it includes, followed through: the
    shared optimizer step (``optimizer.h``) reaches both kernels, and an edit to a header
    builds a new library instead of loading the old one."""
    sources = _build._sources(_build.SOURCE)
    header = (_build.INCLUDE / "optimizer.h").read_bytes()
    assert header in sources
    assert header in _build._sources(Path(_native.__file__).with_name("kernel.cpp"))
    monkeypatch.setenv("WDBENCH_CACHE", str(tmp_path / "cache"))
    (tmp_path / "outer.h").write_text('#include "inner.h"\n')
    (tmp_path / "inner.h").write_text("#define WD_VALUE 1\n")
    kernel = tmp_path / "probe.cpp"
    kernel.write_text('#include "outer.h"\nextern "C" int wd_value() { return WD_VALUE; }\n')
    assert _build._load(kernel, "probe").wd_value() == 1
    (tmp_path / "inner.h").write_text("#define WD_VALUE 2\n")
    assert _build._load(kernel, "probe").wd_value() == 2
    assert len(list((tmp_path / "cache").glob("probe-*.so"))) == 2


def mixed_configs(dtype: str) -> list[TrainConfig]:
    return [
        TrainConfig(
            penalty=pen,
            lam=lam,
            loop=loop,
            lr=0.01,
            epochs=5,
            batch_size=5,
            seed=1,
            l1_ratio=0.3,
            dtype=dtype,
        )
        for pen in ("l2", "l1", "elastic")
        for loop in ("scratch", "proximal")
        for lam in (0.0, 0.1, 0.5, 1.0, 2.0, 3.0, 5.0, 9.0, 11.0)
    ]


@pytest.mark.skipif(not native_available(), reason="the native kernel is not built here")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_thread_count_never_changes_a_number(dtype: str) -> None:
    """Blocks of configurations are independent: 1, 2 or 3 workers give bit-identical results
    (9 configurations per group: a partial block of lanes in every chunking)."""
    problem = Problem.synthetic(n_train=23, n_val=7, n_test=9, dim=30, seed=2)
    configs = mixed_configs(dtype)
    results = []
    for threads in (1, 2, 3):
        set_cpu_threads(threads)
        try:
            results.append(train_population(problem, configs))
        finally:
            set_cpu_threads(None)
    for other in results[1:]:
        assert torch.equal(other.w, results[0].w)  # type: ignore[arg-type]
        assert torch.equal(other.b, results[0].b)
        assert torch.equal(other.val_loss, results[0].val_loss)


@pytest.mark.skipif(not native_available(), reason="the native kernel is not built here")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_thread_count_never_changes_a_stateful_number(dtype: str) -> None:
    """Momentum (heavy ball, Nesterov) and Adam groups (state per configuration in the block):
    1, 2 or 3 workers give bit-identical results."""
    problem = Problem.synthetic(n_train=23, n_val=7, n_test=9, dim=30, seed=2)
    configs = [
        TrainConfig(
            penalty=pen,
            lam=lam,
            rule=rule,
            optimizer=opt,
            nesterov=nesterov,
            impl="functional",
            lr=0.01,
            epochs=5,
            batch_size=5,
            seed=1,
            l1_ratio=0.3,
            dtype=dtype,
        )
        for opt, nesterov in (("momentum", False), ("momentum", True), ("adam", False))
        for pen, rule in (("l2", "coupled"), ("l2", "decoupled"), ("elastic", "proximal"))
        for lam in (0.0, 0.1, 0.5, 1.0, 2.0, 3.0, 5.0, 9.0, 11.0)
    ]
    results = []
    for threads in (1, 2, 3):
        set_cpu_threads(threads)
        try:
            results.append(train_population(problem, configs))
        finally:
            set_cpu_threads(None)
    for other in results[1:]:
        assert torch.equal(other.w, results[0].w)  # type: ignore[arg-type]
        assert torch.equal(other.b, results[0].b)
        assert torch.equal(other.val_loss, results[0].val_loss)


def test_applies_to_cpu_groups_with_a_known_rule_only() -> None:
    problem = Problem.synthetic(n_train=20, n_val=5, n_test=5, dim=10, seed=0)
    configs = (TrainConfig(penalty="l1", lam=0.1, loop="proximal", epochs=2, seed=0),)
    columns = config_columns(configs)
    (plan,) = plan_groups(columns)
    group = make_group(stack((problem,), torch.device("cpu"), torch.float32), plan, plan.index,
                       columns)  # fmt: skip
    assert native_applies(group)
    pooled = make_group(stack((problem,), torch.device("cpu"), torch.float32),
                        plan, plan.index, columns)  # fmt: skip
    object.__setattr__(pooled, "order", pooled.order.expand(2, -1, -1))
    assert not native_applies(pooled)
    half = make_group(stack((problem,), torch.device("cpu"), torch.float16), plan, plan.index,
                      columns)  # fmt: skip
    assert not native_applies(half)
    if not native_available():
        with pytest.raises(ValueError, match="unavailable"):
            train_group_native(group)


def test_turned_off_falls_back_to_the_torch_kernels() -> None:
    """WDBENCH_NATIVE=0: the kernel says why it is off and ``auto`` trains with torch kernels,
    to the same numbers."""
    code = (
        "import torch; from wdbench import Problem, TrainConfig, train_population;"
        "from wdbench.population.native import native_available, unavailable_reason;"
        "assert not native_available(); print(unavailable_reason());"
        "p = Problem.synthetic(n_train=20, n_val=5, n_test=5, dim=10, seed=0);"
        "r = train_population(p, [TrainConfig(penalty='l1', lam=0.1, loop='proximal', epochs=2,"
        " seed=0, dtype='float64')]);"
        "print(repr(float(r.val_loss[0, 0])))"
    )
    env = {**os.environ, "WDBENCH_NATIVE": "0", "PYTHONPATH": os.getcwd()}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True)  # fmt: skip
    why, loss = done.stdout.strip().splitlines()
    assert why == "turned off by WDBENCH_NATIVE=0"
    p = Problem.synthetic(n_train=20, n_val=5, n_test=5, dim=10, seed=0)
    config = TrainConfig(penalty="l1", lam=0.1, loop="proximal", epochs=2, seed=0, dtype="float64")
    ref = train_population(p, [config], backend="reference")
    assert float(loss) == pytest.approx(float(ref.val_loss[0, 0]), rel=1e-10)
