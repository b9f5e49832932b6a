"""Faults a study run survives or reports: signals, a lost storage, and creation races.

Exit codes of ``python -m studies.search`` (and of each worker process):

====  ==============================================================================
0     the study holds ``--n-trials`` COMPLETE trials
1     a bug (with its traceback), or every worker died before the study finished
2     a usage error (one line)
3     the storage went away mid-study (one line); rerun the same command to resume
130   interrupted by SIGINT (Ctrl-C); in-flight trials were failed and re-queued
143   terminated by SIGTERM; same as 130
====  ==============================================================================

Signals: ``Interrupts`` turns the first SIGINT / SIGTERM into ``KeyboardInterrupt`` /
``Terminated`` in the main thread and ignores any later one (a Ctrl-C reaches every process of
the terminal's group, and the launcher forwards it too), so the clean-up after the first one is
never cut short. Inside ``shielded()`` the exception is deferred to the end of the block, so a
batch is never interrupted halfway through an ask or a tell.
"""

from __future__ import annotations

import random
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any, TypeVar

import sqlalchemy.exc
from optuna.exceptions import StorageInternalError

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_SIGINT",
    "EXIT_SIGTERM",
    "EXIT_STORAGE",
    "EXIT_USAGE",
    "Interrupts",
    "Terminated",
    "exit_code_of_signal",
    "is_storage_lost",
    "retry_creation_race",
    "storage_lost_message",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_STORAGE = 3
EXIT_SIGINT = 128 + signal.SIGINT
EXIT_SIGTERM = 128 + signal.SIGTERM

T = TypeVar("T")
#: Jitter for retries only (entropy from the OS; no experiment's RNG is touched).
_JITTER = random.SystemRandom()
Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


class Terminated(BaseException):
    """SIGTERM, raised in the main thread (the counterpart of ``KeyboardInterrupt``)."""


def exit_code_of_signal(signum: int) -> int:
    """130 for SIGINT, 143 for SIGTERM (128 + the signal number)."""
    return 128 + signum


class Interrupts:
    """SIGINT / SIGTERM handling for one process: first signal wins, raised or deferred.

    ``install()`` replaces the handlers (main thread only); ``restore()`` puts the previous ones
    back. ``signum`` is the first signal received, if any.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._depth = 0
        self._raised = False
        self._previous: dict[int, Handler] = {}

    def install(self) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._handle)

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    @contextmanager
    def shielded(self) -> Iterator[None]:
        """Defer a signal that arrives inside the block to its end."""
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
        self.raise_pending()

    def raise_pending(self) -> None:
        """Raise the exception of a received signal, once, unless shielded."""
        if self.signum is None or self._raised or self._depth > 0:
            return
        self._raised = True
        if self.signum == signal.SIGTERM:
            raise Terminated()
        raise KeyboardInterrupt()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is None:
            self.signum = signum
        self.raise_pending()


def is_storage_lost(exc: BaseException) -> bool:
    """Whether ``exc`` means the study's storage stopped answering (database gone)."""
    return isinstance(
        exc,
        StorageInternalError | sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError,
    )


def storage_lost_message(exc: BaseException) -> str:
    """One line: what was lost and what to do (no traceback, no SQL)."""
    cause = exc.__cause__ if isinstance(exc, StorageInternalError) and exc.__cause__ else exc
    detail = getattr(cause, "orig", None) or cause
    first = (str(detail).strip().splitlines() or [type(detail).__name__])[0][:200]
    return (
        f"error: lost the study storage ({first}); rerun the same command to resume once it is back"
    )


def retry_creation_race(
    create: Callable[[], T], tries: int = 8, sleep: Callable[[float], None] = time.sleep
) -> T:
    """Call ``create`` again when a concurrent first use of a database raced it.

    Several machines starting on one empty PostgreSQL database all create Optuna's tables and
    version row at once; all but one fail with a duplicate-key or duplicate-table error. Once
    the winner has committed, a retry finds everything in place.
    """
    for attempt in range(1, tries + 1):
        try:
            return create()
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
            if attempt == tries:
                raise
            sleep(_JITTER.uniform(0.05, 0.25) * attempt)
    raise AssertionError("unreachable")
