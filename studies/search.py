"""``python -m studies.search``: search penalty type × λ (× update rule) against validation loss.

This module parses and refuses bad input with the standard library only, so ``--help`` and every
usage error answer at once; torch, Optuna and pandas are imported (``studies.driver``) only for a
command line that will run. Exit codes: ``python -m studies.search --help``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

from reports.redact import mask
from studies.cli import EXIT_USAGE, UsageError, parse_args
from studies.reporter import Reporter, beside_possible

__all__ = ["main"]

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


if __name__ == "__main__":
    sys.exit(main())
