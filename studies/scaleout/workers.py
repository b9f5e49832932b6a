"""Run a study's workers: in this process (``--workers 1``) or as N local worker processes.

Each worker runs ``studies.ask_tell.run_worker(settings, index)`` on the shared study: its sampler
seed is derived from ``--seed`` and its index — indices start after the workers that already ran
on the study, so a resumed run or a machine that joins later does not replay another worker's
proposals (a fresh one-worker study is worker 0, the reproducible reference) — and it asks
only while COMPLETE + RUNNING trials
are fewer than ``--n-trials``, so N workers asking at the same moment overshoot by at most
(N − 1) × ``--batch`` trials. The same command on several machines against one
``postgresql://`` URL cooperates the same way (N then counts the workers of every machine).

Processes: worker i is ``python -m studies.scaleout.workers i`` (settings pickled on stdin) in
its own process group, so a terminal's Ctrl-C reaches only this launcher, which forwards SIGTERM
to each worker: they fail and re-queue their in-flight trials and exit, and the launcher exits 130
(SIGINT) or 143 (SIGTERM). A worker that dies (SIGKILL, out of memory) has its RUNNING trials
failed and re-queued at once by the launcher — by any other worker, here or on another machine,
once they are silent for ``--stale-after`` seconds — and the survivors finish the study.
Exit codes: ``studies.cli.EPILOG``.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

import optuna
import torch
from optuna.trial import TrialState

from studies.ask_tell import count_trials, load_study, run_worker
from studies.cli import Settings, check_heartbeat
from studies.scaleout import faults, guard, heartbeat
from studies.storage import StorageError
from wdbench.threads import MAX_THREADS, choices, cpu_threads, set_cpu_threads, thread_source

__all__ = [
    "apply_thread_policy",
    "pool_threads",
    "run_here",
    "run_workers",
    "sweep_dead_worker",
    "thread_record",
    "worker_environment",
    "worker_prefix",
]

#: How often the launcher looks at its workers (seconds).
POLL_S = 0.2
_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def run_workers(settings: Settings) -> int:
    """Run ``settings.workers`` workers on the (already created) study; returns the exit code."""
    check_heartbeat(settings)
    try:
        first = len(heartbeat.known_workers(load_study(settings)))
    except Exception as exc:
        return _storage_lost(exc)
    if settings.workers == 1:
        return run_here(settings, first)
    return _Launcher(settings, first).run()


def run_here(
    settings: Settings, index: int = 0, progress: bool | None = None, quiet: bool = False
) -> int:
    """Run worker ``index`` in this process; returns its exit code (one line on a fault, unless
    ``quiet``: a launched worker leaves that line to its launcher, so N workers print one)."""
    interrupts = faults.Interrupts()
    interrupts.install()
    try:
        run_worker(settings, index, progress)
        interrupts.raise_pending()  # a signal that came after the last checkpoint
    except (KeyboardInterrupt, faults.Terminated) as exc:
        interrupts.acknowledge()
        signum = signal.SIGTERM if isinstance(exc, faults.Terminated) else signal.SIGINT
        return faults.exit_code_of_signal(signum) if quiet else _interrupted(signum)
    except Exception as exc:
        return _storage_lost(exc, quiet)
    finally:
        interrupts.restore()
    return faults.EXIT_OK


def _storage_lost(exc: Exception, quiet: bool = False) -> int:
    """Report a lost storage in one line (exit 3); any other error is a bug and re-raised."""
    if not (isinstance(exc, StorageError) or faults.is_storage_lost(exc)):
        raise exc
    if not quiet:
        print(faults.storage_lost_message(exc), file=sys.stderr)
    return faults.EXIT_STORAGE


def worker_prefix(pid: int) -> str:
    """The prefix of the worker ids (``heartbeat.new_worker_id``) of process ``pid`` here."""
    return f"{socket.gethostname()}:{pid}:"


def sweep_dead_worker(study: optuna.Study, pid: int, unclaimed_after_s: float) -> list[int]:
    """Fail and re-queue the RUNNING trials of the dead local worker process ``pid``.

    Its claimed trials go at once; a trial nobody claimed (the worker died inside an ask)
    once it is older than ``unclaimed_after_s``. Returns the numbers failed here.
    """
    prefix = worker_prefix(pid)
    mine = guard.sweep_stale(study, 0.0, owners=lambda o: o is not None and o.startswith(prefix))
    lost = guard.sweep_stale(study, unclaimed_after_s, owners=lambda o: o is None)
    return mine + lost


def pool_threads(settings: Settings) -> int:
    """Worker threads of the population kernel in each process (``wdbench.threads``):
    ``--threads``, else the usable cores shared out over ``--workers`` (at least 1); in one
    process without ``--threads``, ``$WDBENCH_THREADS`` where set."""
    if settings.threads is not None:
        return settings.threads
    if settings.workers == 1:
        return cpu_threads()
    cores = len(os.sched_getaffinity(0))
    return max(1, min(MAX_THREADS, cores) // settings.workers)


def apply_thread_policy(settings: Settings) -> None:
    """This process's CPU threads: the pool of ``pool_threads``, torch at one intra-op thread
    (its threads spin against any other busy process; the pool does not). In one process
    without ``--threads`` the library's default: each batch on the pool or on one worker,
    whichever measurably gets more CPU (``wdbench.threads``)."""
    exact = settings.threads is not None or settings.workers > 1
    set_cpu_threads(pool_threads(settings) if exact else None)
    torch.set_num_threads(1)


def thread_record(settings: Settings) -> dict[str, Any]:
    """What ``run.json`` keeps of the thread policy (``chosen``: batches run at each worker
    count so far, where the count was measured)."""
    if settings.threads is not None:
        source = "--threads"
    elif settings.workers > 1:
        source = "cores / --workers"
    else:
        source = thread_source()
    record: dict[str, Any] = {
        "pool": pool_threads(settings),
        "source": source,
        "torch_intra_op": 1,
        "workers": settings.workers,
        "cores": len(os.sched_getaffinity(0)),
    }
    if source == "measured":
        record["chosen"] = {str(n): count for n, count in sorted(choices().items())}
    return record


def worker_environment(settings: Settings) -> dict[str, str]:
    """The environment of a worker process: this package importable, and CPU threads split
    (``pool_threads`` each; N processes with a thread per core would oversubscribe the CPU)."""
    root = str(Path(__file__).resolve().parent.parent)
    paths = [root, os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    env["OMP_NUM_THREADS"] = "1"
    env["WDBENCH_THREADS"] = str(pool_threads(settings))
    return env


def _interrupted(signum: int) -> int:
    """One line for a run stopped by ``signum``; returns 130 (SIGINT) or 143 (SIGTERM)."""
    print(
        f"interrupted by {signal.Signals(signum).name}: in-flight trials were failed and "
        "re-queued; rerun the same command to resume",
        file=sys.stderr,
    )
    return faults.exit_code_of_signal(signum)


class _Launcher:
    """Starts, watches and stops the local worker processes of one run.

    The first SIGINT / SIGTERM is forwarded to the workers as SIGTERM (they fail and re-queue
    their in-flight trials); a second one kills them at once (the final sweep fails theirs).
    """

    def __init__(self, settings: Settings, first_index: int) -> None:
        self.settings = settings
        self.first_index = first_index
        self.procs: list[subprocess.Popen[bytes]] = []
        self.signum: int | None = None
        self.signals = 0
        self.swept: set[int] = set()
        self.lost: Exception | None = None
        self._study: optuna.Study | None = None

    def study(self) -> optuna.Study | None:
        """The launcher's own handle on the study; None once the storage was found lost."""
        if self._study is None and self.lost is None:
            try:
                self._study = load_study(self.settings)
            except Exception as exc:
                if not (isinstance(exc, StorageError) or faults.is_storage_lost(exc)):
                    raise
                self.lost = exc
        return self._study

    def run(self) -> int:
        previous = {signum: signal.signal(signum, self._forward) for signum in _SIGNALS}
        try:
            for index in range(self.settings.workers):
                self.procs.append(self._start(index))
            self._watch()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        return self._final_code()

    def _start(self, index: int) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "studies.scaleout.workers",
                str(self.first_index + index),
                str(index),
                "--parent",
                str(os.getpid()),
                "--quiet",
            ],
            stdin=subprocess.PIPE,
            env=worker_environment(self.settings),
            process_group=0,
        )
        assert proc.stdin is not None
        proc.stdin.write(pickle.dumps(self.settings))
        proc.stdin.close()
        if self.signum is not None:  # a signal came while starting: stop this one too
            proc.terminate()
        return proc

    def _forward(self, signum: int, frame: FrameType | None) -> None:
        self.signals += 1
        if self.signum is None:
            self.signum = signum
        for proc in self.procs:
            if proc.poll() is not None:
                continue
            if self.signals == 1:
                proc.terminate()
            else:
                proc.kill()

    def _watch(self) -> None:
        """Wait for every worker; sweep a killed one's trials as soon as it is seen dead."""
        while any(proc.poll() is None for proc in self.procs):
            for proc in self.procs:
                if proc.returncode is not None and proc.returncode < 0:
                    self._sweep(proc)
            time.sleep(POLL_S)
        for proc in self.procs:
            self._sweep(proc)

    def _probe(self) -> Exception | None:
        """The error a fresh look at the storage meets, if it is lost (None if it answers)."""
        try:
            count_trials(load_study(self.settings), TrialState.COMPLETE)
        except Exception as exc:
            if not (isinstance(exc, StorageError) or faults.is_storage_lost(exc)):
                raise
            return exc
        return None

    def _sweep(self, proc: subprocess.Popen[bytes]) -> None:
        study = self.study()
        if proc.pid in self.swept or study is None:
            return
        self.swept.add(proc.pid)
        try:
            sweep_dead_worker(study, proc.pid, self.settings.heartbeat_interval)
        except Exception as exc:
            if not faults.is_storage_lost(exc):
                raise
            self.lost = exc

    def _final_code(self) -> int:
        codes = [proc.returncode for proc in self.procs]
        if self.signum is not None:
            return _interrupted(self.signum)
        if faults.EXIT_STORAGE in codes:  # the workers are quiet: one line for all of them
            lost = self.lost or self._probe()
            print(
                faults.storage_lost_message(lost)
                if lost is not None
                else "error: a worker could not write to the study storage (lost, or a full "
                "disk); rerun the same command to resume once it is back",
                file=sys.stderr,
            )
            return faults.EXIT_STORAGE
        if any(code > 0 for code in codes):
            return faults.EXIT_FAILED
        for index, code in enumerate(codes):
            if code < 0:
                print(
                    f"worker {index} died (signal {-code}); its trials were re-queued",
                    file=sys.stderr,
                )
        study = self.study()
        if self.lost is not None:
            return _storage_lost(self.lost)
        assert study is not None
        if 0 in codes or count_trials(study, TrialState.COMPLETE) >= self.settings.n_trials:
            return faults.EXIT_OK  # a worker that ended by itself: the run reports the study
        print(
            "error: every worker died before the study finished; rerun the same command",
            file=sys.stderr,
        )
        return faults.EXIT_FAILED


def stop_with_parent(parent_pid: int) -> None:
    """SIGTERM this process when its launcher ``parent_pid`` dies (its trials are then failed
    and re-queued as on any SIGTERM): at once on Linux (``PR_SET_PDEATHSIG``), else within a
    second (a thread that watches the parent pid)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    else:
        threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()
    if os.getppid() != parent_pid:  # the launcher died before this process could watch it
        os.kill(os.getpid(), signal.SIGTERM)


def _watch_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(1.0)
    os.kill(os.getpid(), signal.SIGTERM)


def _settings_from_stdin() -> Settings:
    settings = pickle.loads(sys.stdin.buffer.read())
    if not isinstance(settings, Settings):
        raise TypeError(f"expected Settings on stdin, got {type(settings).__name__}")
    return settings


def _child_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m studies.scaleout.workers",
        description="One worker process of a study, started by the launcher of "
        "`python -m studies.search --workers N` with the pickled Settings on stdin. "
        "To run a study, use `python -m studies.search`.",
    )
    p.add_argument("index", type=int, help="worker index in the study (seeds its sampler)")
    p.add_argument("local", type=int, help="index among its launcher's workers (0 shows progress)")
    p.add_argument("--parent", type=int, help="the launcher's pid: the worker stops when it dies")
    p.add_argument(
        "--quiet", action="store_true", help="leave the one-line fault report to the launcher"
    )
    return p


def _child_main(argv: list[str]) -> int:
    """Worker INDEX of the study, LOCAL-th of its launcher (only the first shows a progress
    bar); returns its exit code."""
    args = _child_parser().parse_args(argv)
    if sys.stdin.isatty():
        _child_parser().error("the pickled Settings are read from stdin (the launcher sends them)")
    if args.parent is not None:
        stop_with_parent(args.parent)
    settings = _settings_from_stdin()
    apply_thread_policy(settings)
    return run_here(
        settings, args.index, progress=None if args.local == 0 else False, quiet=args.quiet
    )


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
