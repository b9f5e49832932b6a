"""The kernel compiles for an H100 (sm_90) without a GPU, and its hot loop has the intended shape.

Runs ``python -m benchmarks.tools.triton_sass --json`` in a subprocess without ``TRITON_INTERPRET``
(the interpreter compiles nothing). The ``thread`` layout must keep each configuration's dot
products in one thread (no ``SHFL``) and its weights in registers (no local-memory traffic in the
loop); the ``warp`` layout must not spill in the loop either. Skips when Triton's NVIDIA backend
(bundled ``ptxas``/``cuobjdump``) is absent.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# Located, not imported: importing Triton here would fix its mode (compiled or interpreted) for
# the other kernel tests of this process.
TRITON = importlib.util.find_spec("triton")
if TRITON is None or not TRITON.submodule_search_locations:
    pytest.skip("Triton is not installed", allow_module_level=True)
TOOLS = Path(next(iter(TRITON.submodule_search_locations))) / "backends" / "nvidia" / "bin"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def reports() -> list[dict[str, object]]:
    if not all((TOOLS / tool).exists() for tool in ("ptxas", "cuobjdump")):
        pytest.skip(f"Triton's NVIDIA tools are not in {TOOLS}")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "benchmarks.tools.triton_sass", "--json"]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_every_variant_compiles(reports: list[dict[str, object]]) -> None:
    from benchmarks.tools.triton_sass import VARIANTS

    assert [r["name"] for r in reports] == [v.name for v in VARIANTS]
    assert all(int(r["loop_FFMA"]) > 0 for r in reports)  # type: ignore[call-overload]


def test_thread_layout_reduces_within_a_thread(reports: list[dict[str, object]]) -> None:
    for report in (r for r in reports if r["d_major"]):
        assert report["loop_SHFL"] == 0, report["name"]


def test_no_spills_in_the_loop(reports: list[dict[str, object]]) -> None:
    for report in reports:
        assert report["loop_LDL"] == 0 and report["loop_STL"] == 0, report["name"]
