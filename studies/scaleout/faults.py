"""Faults a study run survives or reports: signals, a lost storage, and creation races.

Exit codes: ``studies.cli.EPILOG`` (shown by ``--help``); the ``EXIT_*`` names are re-exported.

Signals: ``Interrupts`` records the first SIGINT / SIGTERM and raises it as
``KeyboardInterrupt`` / ``Terminated`` in the main thread where that is safe — at once while
training or waiting, otherwise at the next checkpoint, never in the middle of a storage call.
"""

from __future__ import annotations

import errno
import os
import random
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any, TypeVar

from optuna.exceptions import StorageInternalError

from studies.cli import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_SIGINT,
    EXIT_SIGTERM,
    EXIT_STORAGE,
    EXIT_USAGE,
)

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
    "is_disk_full",
    "is_storage_lost",
    "retry_creation_race",
    "storage_lost_message",
]

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
    """SIGINT / SIGTERM of one process, raised only where that is safe.

    A signal is recorded and raised as ``KeyboardInterrupt`` / ``Terminated`` at the next
    checkpoint (``raise_pending()``), or at once inside ``interruptible()`` (training, waiting).
    Storage calls are never cut in half: an exception raised inside Optuna's journal lock or a
    database transaction could leave a lock file or a half-written record behind. A second
    signal is raised at once wherever it lands (the way out of a hung storage call).

    An exception raised from a signal handler can be swallowed by library code that clears
    errors (seen inside pandas / NumPy attribute probing), so every checkpoint raises it again
    until the code that handles it calls ``acknowledge()``; after that, clean-up runs to its
    end and later signals are ignored.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._received = 0
        self._open = 0
        self.acknowledged = False
        self._previous: dict[int, Handler] = {}

    @classmethod
    def installed(cls) -> Interrupts | None:
        """The instance whose handlers this process runs now, if any (signals are per process)."""
        owner = getattr(signal.getsignal(signal.SIGINT), "__self__", None)
        return owner if isinstance(owner, cls) else None

    def install(self) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._handle)

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    @contextmanager
    def interruptible(self) -> Iterator[None]:
        """A block a signal interrupts at once (no storage call may run inside)."""
        self.raise_pending()
        self._open += 1
        try:
            yield
        finally:
            self._open -= 1

    def acknowledge(self) -> None:
        """The signal's exception reached its handler: stop raising it."""
        self.acknowledged = True

    def raise_pending(self) -> None:
        """Checkpoint: raise the exception of a received signal, until acknowledged."""
        if self.signum is None or self.acknowledged:
            return
        if self.signum == signal.SIGTERM:
            raise Terminated()
        raise KeyboardInterrupt()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self._received += 1
        if self.signum is None:
            self.signum = signum
        if self._open > 0 or self._received == 2:
            self.raise_pending()


#: ``errno`` values of a write that found no room: a full disk, a quota, a file-size limit.
DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` is a write that found no room (the disk, a quota or a size limit)."""
    return isinstance(exc, OSError) and exc.errno in DISK_FULL


def _sqlalchemy_errors(*names: str) -> tuple[type[BaseException], ...]:
    """SQLAlchemy's exception classes ``names`` once SQLAlchemy is imported, else none.

    A database storage imports SQLAlchemy before it can raise one of its errors; a journal file
    never imports it, and importing it here would cost every command line ≈ 0.2 s."""
    module = sys.modules.get("sqlalchemy.exc")
    return () if module is None else tuple(getattr(module, name) for name in names)


def is_storage_lost(exc: BaseException) -> bool:
    """Whether ``exc`` means the study's storage stopped answering (database gone, disk full)."""
    lost: tuple[type[BaseException], ...] = (
        StorageInternalError,
        *_sqlalchemy_errors("OperationalError", "InterfaceError"),
    )
    return is_disk_full(exc) or isinstance(exc, lost)


def storage_lost_message(exc: BaseException) -> str:
    """One line: what was lost and what to do (no traceback, no SQL)."""
    if is_disk_full(exc):
        assert isinstance(exc, OSError)
        where = f": {os.fsdecode(exc.filename)}" if exc.filename else ""
        return (
            f"error: no room to write ({exc.strerror or os.strerror(exc.errno or 0)}{where}); "
            "free some space and rerun the same command to resume"
        )
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
        except Exception as exc:
            if attempt == tries or not isinstance(
                exc, _sqlalchemy_errors("IntegrityError", "ProgrammingError")
            ):
                raise
            sleep(_JITTER.uniform(0.05, 0.25) * attempt)
    raise AssertionError("unreachable")
