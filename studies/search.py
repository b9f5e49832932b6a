"""``python -m studies.search``: search penalty type × λ (× update rule) against validation loss.

This module parses and refuses bad input with the standard library only, so ``--help`` and every
usage error answer at once; torch, Optuna and pandas are imported (``studies.driver``) only for a
command line that will run. Exit codes: ``python -m studies.search --help``.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import time
from collections.abc import Sequence
from typing import NoReturn

from reports.redact import mask
from studies.cli import EXIT_USAGE, UsageError, parse_args
from studies.reporter import Reporter, beside_possible

__all__ = ["exit_now", "main"]

_STARTED = [time.perf_counter()]  # where the imports phase of a command line starts


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    # the imports phase: a command line (argv None) counts from this module's import, a call
    # from Python (tests, benchmarks) from here
    first = _STARTED.pop() if _STARTED else None
    started = first if first is not None and argv is None else time.perf_counter()
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        settings = parse_args(args)
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    except UsageError as exc:
        print(f"error: {mask(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    # the report's process starts first: it imports matplotlib beside this one's imports
    reporter = Reporter(beside=not settings.no_report and beside_possible(settings.threads))
    try:
        from studies import driver  # torch, Optuna, pandas: only for a command line that runs

        return driver.run(
            settings, args, imports_s=time.perf_counter() - started, reporter=reporter
        )
    finally:
        reporter.stop()  # a run that ended without its report (else nothing left to stop)


def exit_now(code: int) -> NoReturn:
    """End the command line (or the report's process) with ``code`` once its work has returned:
    every file is written and closed, so after the exit handlers and a flush it leaves without
    the interpreter's teardown, which frees torch, pandas and Optuna (or matplotlib) object by
    object: ≈ 0.5 s of the default study, and ≈ 0.3 s of its report, which the study waits for.
    Where a thread other than a daemon or an idle pool worker is still alive, it exits as usual
    (the interpreter waits for that thread)."""
    pools = sys.modules.get("wdbench.threads")  # imported by a command line that ran
    prefix = getattr(pools, "POOL_THREAD_PREFIX", None)
    others = [
        t
        for t in threading.enumerate()
        if t is not threading.main_thread()
        and not t.daemon
        and not (prefix and t.name.startswith(prefix))
    ]
    if others:
        sys.exit(code)
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    exit_now(main())
