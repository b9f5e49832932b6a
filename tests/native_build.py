"""What the tests of the compiled kernels need to know of this machine: whether a C++ compiler is
on PATH, whether ``WDBENCH_NATIVE=0`` turned the kernels off, and whether this is CI
(``CI=true``, where ``.ci/run`` installs a compiler, so a missing one is a failure)."""

from __future__ import annotations

import os
import shutil

HAS_COMPILER = any(shutil.which(c) for c in (os.environ.get("CXX") or "c++", "g++", "clang++"))
TURNED_OFF = os.environ.get("WDBENCH_NATIVE") == "0"
IN_CI = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}
