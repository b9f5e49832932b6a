"""Trials per second of a study run with 1, 2, … workers: ``python -m studies.scaleout.throughput``.

For each worker count a fresh study (unique name) is created on the storage and run exactly as
``python -m studies.search --workers N`` runs it (``workers.run_workers``); the clock covers the
search only — worker start-up included, exports and report excluded. One Markdown row per run:
storage, workers, batch, COMPLETE trials, seconds, trials/s.

    python -m studies.scaleout.throughput --workers 1 2                      # embedded journal file
    python -m studies.scaleout.throughput --workers 1 2 --storage postgresql://user@host/db
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import optuna
from optuna.trial import TrialState

from reports.redact import mask
from studies.ask_tell import count_trials
from studies.cli import parse_args
from studies.driver import prepare
from studies.scaleout.workers import run_workers

__all__ = ["main", "measure"]


def measure(flags: Sequence[str], workers: int) -> tuple[int, float]:
    """Run one fresh study with ``workers`` workers; (COMPLETE trials, wall seconds)."""
    name = f"bench-{workers}w-{uuid.uuid4().hex[:8]}"
    settings = parse_args([*flags, "--workers", str(workers), "--study-name", name])
    prepared = prepare(settings)
    start = time.perf_counter()
    code = run_workers(prepared.settings)
    seconds = time.perf_counter() - start
    if code != 0:
        raise RuntimeError(f"the study run with {workers} workers exited {code}")
    return count_trials(prepared.study, TrialState.COMPLETE), seconds


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m studies.scaleout.throughput", description=__doc__)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--storage", help="postgresql:// URL (default: a journal file in a temp dir)")
    p.add_argument("--n-trials", type=int, default=200)
    p.add_argument("--batch", type=int, default=20)
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--device", default="cpu")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="wdbench-bench-") as tmp:
        flags = [
            "--n-trials", str(args.n_trials), "--batch", str(args.batch),
            "--epochs", str(args.epochs), "--seeds", str(args.seeds), "--device", args.device,
            "--out", str(Path(tmp) / "runs"), "--no-report",
        ]  # fmt: skip
        if args.storage:
            flags += ["--storage", args.storage]
        kind = "postgresql" if args.storage else "journal"
        print("| storage | workers | batch | COMPLETE | seconds | trials/s |")
        print("|---|---|---|---|---|---|")
        for workers in args.workers:
            complete, seconds = measure(flags, workers)
            print(f"| {kind} | {workers} | {args.batch} | {complete} | {seconds:.1f} | "
                  f"{complete / seconds:.2f} |", flush=True)  # fmt: skip
    if args.storage:
        print(f"storage: {mask(args.storage)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
