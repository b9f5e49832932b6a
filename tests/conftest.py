"""Shared fixtures: a throwaway PostgreSQL server for the whole test run; the ``slow`` lane.

``postgres_server`` starts one server per session (see ``pg.PostgresServer``) and stops it at the
end, also when tests fail. ``postgres_url`` gives each test its own fresh database. Without the
PostgreSQL binaries the tests that use them skip with the reason — except under CI (``CI=true``),
where a missing server is a failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import torch

# Without CUDA, Triton kernels can only run in Triton's interpreter, and the variable must be set
# before anything in this process imports Triton.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest
from pg import PostgresServer, missing_binaries

#: Tests that the fast lane (``pytest -m "not slow"``, under a minute on 2 cores) leaves out
#: besides those marked ``slow`` in place: Triton kernels under Triton's interpreter, every test on
#: a real PostgreSQL, the modules that run whole studies, worker processes or signals, and the
#: optimizer parity cases through the ``scratch`` and ``optim`` paths (the ``functional`` path
#: stays in the lane against the same torch.optim references) and, of the network population,
#: the ``torch.func.vmap`` form and the regression cases (the compiled and the stacked kernel on
#: classification stay in the lane). CI runs everything.
SLOW_MODULE_PREFIX = "test_triton"
SLOW_FIXTURES = frozenset({"postgres_url", "postgres_server"})
SLOW_MODULES = frozenset(
    {
        "test_benchmarks_interrupt.py",
        "test_replication.py",
        "test_rowspace_divergence.py",
        "test_scaleout_faults.py",
        "test_scaleout_heartbeat.py",
        "test_scaleout_workers.py",
        "test_search.py",
        "test_search_definition.py",
        "test_search_journal.py",
        "test_search_optimizers.py",
        "test_study_phases.py",
    }
)
SLOW_CASES = (
    "test_optimizers.py::test_each_optimizer_and_rule_is_the_torch_class_it_names[scratch-",
    "test_optimizers.py::test_each_optimizer_and_rule_is_the_torch_class_it_names[optim-",
    "test_search_inputs.py::test_bad_input_from_the_command_line_has_no_traceback",
    "test_network_population.py::test_population_equals_train[reference-",
    "test_network_population.py::test_population_equals_train[auto-regression-",
    "test_network_population.py::test_population_equals_train[torch-regression-",
    "test_network_native.py::test_kernel_equals_train[regression-",
)


def _slow(item: pytest.Item) -> bool:
    fixtures = set(getattr(item, "fixturenames", ()))
    name = item.path.name
    case = f"{name}::{item.name}"
    return (
        name.startswith(SLOW_MODULE_PREFIX)
        or name in SLOW_MODULES
        or bool(fixtures & SLOW_FIXTURES)
        or case.startswith(SLOW_CASES)
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _slow(item):
            item.add_marker(pytest.mark.slow)


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the session, on 127.0.0.1 and a temporary data directory."""
    missing = missing_binaries()
    if missing:
        reason = f"PostgreSQL server binaries not on PATH: {', '.join(missing)}"
        if _in_ci():
            pytest.fail(f"{reason} (required under CI)")
        pytest.skip(reason)
    server = PostgresServer.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """The ``postgresql://`` URL of a fresh, empty database on the session's server."""
    return postgres_server.create_database()
