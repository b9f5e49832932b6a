"""The report of a study run, built beside it: a process of its own, started with the command.

``reports`` imports seaborn, matplotlib, pandas and scipy (≈ 1.6 s) and draws five figures
(≈ 1.4 s), all Python under one GIL. Started as a process before this one imports torch, it
imports beside those imports and the search, reads the search's tables (trials, grid, oracle)
while the selection runs (``tables``), draws figures 1–4 (``figures``) as soon as the selection
is exported — beside the replication — and writes the report once every file is there
(``finish``), reading again only the files written since. It reads only the exported files
(``reports.build.serve``): the report is the one ``python -m reports.build RUN_DIR`` rebuilds
from them.

Where the study runs on one core (``beside_possible``), the report is built in this process at
``finish``, as before. A report that fails prints why and ``finish`` returns 1; the study and
its exports are saved before. A run that stops early (``stop``) ends the process, which writes
nothing. Standard library only: it starts before torch is imported.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import traceback
from pathlib import Path

__all__ = ["Reporter", "beside_possible"]

_ROOT = Path(__file__).resolve().parent.parent
#: The report process: it ends as the study's command line does (``studies.search.exit_now``).
_SERVE = "from reports.build import serve; from studies.search import exit_now; exit_now(serve())"


def beside_possible(threads: int | None) -> bool:
    """Whether a report process can run beside the study: two usable cores, and ``--threads``
    (``threads``) not set to 1."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return cores >= 2 and (threads is None or threads >= 2)


class Reporter:
    """The report of a run: ``tables(run_dir)`` once the search's tables are exported,
    ``figures(run_dir)`` once the selection is exported,
    ``finish(run_dir)`` at the end (0, or 1 after printing why the report failed), ``stop()``
    for a run that ends without one. ``beside``: build it in a process started now."""

    def __init__(self, beside: bool) -> None:
        self._process: subprocess.Popen[str] | None = None
        self._staged = False
        #: seconds the process spent on figures 1–4 before ``finish`` (None: not beside)
        self.figures_s: float | None = None
        if beside:
            env = dict(os.environ)
            env["PYTHONPATH"] = os.pathsep.join(
                p for p in (str(_ROOT), env.get("PYTHONPATH", "")) if p
            )
            self._process = subprocess.Popen(
                [sys.executable, "-c", _SERVE],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                env=env,
                start_new_session=True,  # Ctrl-C stops this process, which then stops it
            )

    @property
    def beside(self) -> bool:
        """Whether the report is built in a process beside this one."""
        return self._process is not None

    def _send(self, step: str, run_dir: Path) -> None:
        assert self._process is not None and self._process.stdin is not None
        try:
            self._process.stdin.write(f"{step} {run_dir}\n")
            self._process.stdin.flush()
        except OSError:
            pass  # the process ended (it printed why): finish reports the failure

    def tables(self, run_dir: Path) -> None:
        """The search's tables (trials, grid, oracle) and run.json are written: read them now
        (beside the selection)."""
        if self._process is not None:
            self._send("tables", run_dir)

    def figures(self, run_dir: Path) -> None:
        """The selection is exported: draw figures 1–4 now (beside the replication)."""
        if self._process is not None:
            self._send("figures", run_dir)
            self._staged = True

    def finish(self, run_dir: Path) -> int:
        """Every file is written: write the report; 0, or 1 after printing why it failed."""
        process = self._process
        if process is None:
            return _in_process(run_dir)
        self._send("finish", run_dir)
        try:
            out, _ = process.communicate()
        except BaseException:
            self.stop()
            raise
        self._process = None
        lines = out.strip().splitlines()
        if process.returncode != 0 or not lines:
            return _failed(run_dir)
        for line in lines[:-1]:
            step, _, seconds = line.partition(" ")
            if step == "figures":
                self.figures_s = float(seconds)
        print(f"report: {lines[-1]}")
        return 0

    def stop(self) -> None:
        """End the report process without a report (a run that stopped early). Before
        ``figures`` it is killed (it wrote nothing); after, it is told to stop and waited for,
        so it removes what it staged."""
        process, self._process = self._process, None
        if process is None:
            return
        if not self._staged:
            process.kill()
        elif process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


def _in_process(run_dir: Path) -> int:
    from reports.build import build_report  # seaborn and matplotlib: only for a report

    try:
        path = build_report(run_dir)
    except Exception:
        traceback.print_exc()
        return _failed(run_dir)
    print(f"report: {path}")
    return 0


def _failed(run_dir: Path) -> int:
    print(f"report failed; the study and its exports are saved in {run_dir}", file=sys.stderr)
    return 1
