"""The phases of a study run: their wall time (``run.json``, the closing line) and progress.

``Phases.phase(name)`` times a block. A phase still running after ``QUIET_S`` seconds shows that
it is running on stderr — on a terminal a line that counts the seconds, elsewhere one line when
it passes ``QUIET_S`` and one when it ends — so no part of a run is silent for long.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

__all__ = ["PHASES", "QUIET_S", "Phases"]

#: The phases of ``python -m studies.search``, in order.
PHASES = (
    "imports",
    "search",
    "grid",
    "oracles",
    "selection",
    "replication",
    "exports",
    "report",
)
#: Seconds a phase may run before it shows progress.
QUIET_S = 1.0


class Phases:
    """Wall seconds per phase, in the order they first ran."""

    def __init__(self, stream: TextIO | None = None, tick_s: float = 0.5) -> None:
        self.seconds: dict[str, float] = {}
        #: work that ran beside a phase, on another thread: {host phase: {name: seconds}}
        self.beside_seconds: dict[str, dict[str, float]] = {}
        self.stream = stream if stream is not None else sys.stderr
        self.tick_s = tick_s

    def add(self, name: str, seconds: float) -> None:
        """Count ``seconds`` towards phase ``name`` (one timed elsewhere, e.g. the imports)."""
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    def beside(self, host: str, name: str, seconds: float) -> None:
        """Record ``seconds`` of work ``name`` that ran beside phase ``host`` (not in the total:
        the phase called ``name`` keeps only the time spent waiting for it)."""
        self.beside_seconds.setdefault(host, {})[name] = seconds

    @contextmanager
    def phase(self, name: str, quiet: bool = False) -> Iterator[None]:
        """Time the block as phase ``name``; show progress after ``QUIET_S`` unless ``quiet``
        (a phase with a progress display of its own)."""
        start = time.perf_counter()
        stop = threading.Event()
        ticker = None
        if not quiet:
            ticker = threading.Thread(target=self._tick, args=(name, start, stop), daemon=True)
            ticker.start()
        try:
            yield
        finally:
            stop.set()
            if ticker is not None:
                ticker.join()
            self.add(name, time.perf_counter() - start)

    def _tick(self, name: str, start: float, stop: threading.Event) -> None:
        if stop.wait(QUIET_S):
            return
        tty = self.stream.isatty()
        if not tty:
            self.stream.write(f"{name} …\n")
            self.stream.flush()
        while True:
            if tty:
                self.stream.write(f"\r{name} … {time.perf_counter() - start:.0f} s")
                self.stream.flush()
            if stop.wait(self.tick_s):
                break
        end = f"{name} done in {time.perf_counter() - start:.1f} s"
        self.stream.write(f"\r{end}\033[K\n" if tty else f"{end}\n")
        self.stream.flush()

    def record(self) -> dict[str, float]:
        """``{phase: seconds}`` (rounded to ms) plus ``total``: what ``run.json`` keeps."""
        out = {name: round(s, 3) for name, s in self.seconds.items()}
        out["total"] = round(sum(self.seconds.values()), 3)
        return out

    def record_beside(self) -> dict[str, dict[str, float]]:
        """``{host phase: {work: seconds}}`` (rounded to ms): what ran beside which phase."""
        return {
            host: {name: round(s, 3) for name, s in work.items()}
            for host, work in self.beside_seconds.items()
        }

    def line(self) -> str:
        """The closing line: every phase's seconds (and what ran beside it) and the total."""
        parts = " · ".join(
            f"{name} {s:.1f} s{self._beside(name)}" for name, s in self.seconds.items()
        )
        return f"time: {parts} · total {sum(self.seconds.values()):.1f} s"

    def _beside(self, host: str) -> str:
        work = self.beside_seconds.get(host)
        if not work:
            return ""
        return " (beside it: " + ", ".join(f"{n} {s:.1f} s" for n, s in work.items()) + ")"
