"""Compiling ``kernel.cpp`` once per machine and loading it (``ctypes``; no Python headers).

``compiled(source, stem)`` does the same for another kernel source (the networks' kernel, the
oracles' coordinate descent). Every kernel is built with this folder on the include path, for
the headers they share (``optimizer.h``: the optimizer's step).

The library is built with the system C++ compiler (``$CXX``, else ``c++`` / ``g++`` / ``clang++``)
into ``$WDBENCH_CACHE`` (default ``~/.cache/wdbench``), under a name that hashes the source and
the headers it includes (``#include "..."``, followed through), the compiler command and this
CPU's instruction-set flags (the build targets the CPU it runs on). It
is written to a temporary name and renamed, so concurrent workers never load half a file.
``WDBENCH_NATIVE=0`` turns the kernel off. Without a compiler, or when the build fails, the
kernel is unavailable and ``unavailable_reason`` says why; the torch kernels then train the group.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import re
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

__all__ = ["compiled", "library", "unavailable_reason"]

SOURCE = Path(__file__).with_name("kernel.cpp")
FLAGS = ("-O3", "-march=native", "-shared", "-fPIC", "-std=c++17", "-fno-math-errno")
STEM = "wdbench-population"
#: The folder of the shared headers, on every kernel's include path.
INCLUDE = SOURCE.parent
_INCLUDE_LINE = re.compile(rb'^\s*#\s*include\s*"([^"]+)"', re.MULTILINE)
_lock = threading.Lock()
_state: dict[Path, tuple[ctypes.CDLL | None, str | None]] = {}


def library() -> ctypes.CDLL | None:
    """The loaded kernel library, built on first use; ``None`` when unavailable."""
    return compiled(SOURCE, STEM)[0]


def unavailable_reason() -> str | None:
    """Why the kernel cannot be used here (``None`` once it is loaded)."""
    return compiled(SOURCE, STEM)[1]


def compiled(source: Path, stem: str) -> tuple[ctypes.CDLL | None, str | None]:
    """``source`` built on first use into ``<cache>/<stem>-<hash>.so`` and loaded: the library,
    or ``None`` and why it is unavailable."""
    with _lock:
        if source not in _state:
            try:
                _state[source] = (_load(source, stem), None)
            except _Unavailable as exc:
                _state[source] = (None, str(exc))
        return _state[source]


class _Unavailable(Exception):
    pass


def _load(path: Path, stem: str) -> ctypes.CDLL:
    if os.environ.get("WDBENCH_NATIVE", "1") == "0":
        raise _Unavailable("turned off by WDBENCH_NATIVE=0")
    compiler = _compiler()
    sources = _sources(path)
    key = hashlib.sha256(
        b"\0".join([*sources, compiler.encode(), " ".join(FLAGS).encode(), _cpu_flags().encode()])
    ).hexdigest()[:16]
    target = _cache_dir() / f"{stem}-{key}.so"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
        os.close(fd)
        try:
            done = subprocess.run(
                [compiler, *FLAGS, "-I", str(INCLUDE), "-o", tmp, str(path)],
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode != 0:
                raise _Unavailable(f"{compiler} failed: {done.stderr.strip()[-500:]}")
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return ctypes.CDLL(str(target))


def _sources(path: Path) -> list[bytes]:
    """The bytes of ``path`` and of every header it includes with quotes, followed through
    (found beside the including file, else in ``INCLUDE``), each once, in the order met."""
    seen: dict[Path, bytes] = {}
    todo = [path.resolve()]
    while todo:
        file = todo.pop(0)
        if file in seen:
            continue
        try:
            seen[file] = file.read_bytes()
        except OSError as exc:
            raise _Unavailable(f"cannot read {file}: {exc}") from exc
        for name in _INCLUDE_LINE.findall(seen[file]):
            header = name.decode()
            beside = file.parent / header
            todo.append((beside if beside.exists() else INCLUDE / header).resolve())
    return list(seen.values())


def _compiler() -> str:
    for name in (os.environ.get("CXX"), "c++", "g++", "clang++"):
        if name and shutil.which(name):
            return name
    raise _Unavailable("no C++ compiler on PATH (set CXX)")


def _cache_dir() -> Path:
    root = os.environ.get("WDBENCH_CACHE")
    if root:
        return Path(root)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "wdbench"


def _cpu_flags() -> str:
    """This CPU's model and instruction-set flags (``-march=native`` builds for them)."""
    try:
        with open("/proc/cpuinfo") as f:
            lines = [line for line in f if line.startswith(("flags", "model name"))]
        return "".join(sorted(set(lines)))
    except OSError:
        return platform.machine() + platform.processor()
