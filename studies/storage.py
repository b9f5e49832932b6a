"""Where a study lives: safe run-directory slugs and Optuna storages.

``--storage`` takes a journal file path (``*.log`` / ``*.journal``, or the default
``<out>/<slug>/study.log``) or any SQLAlchemy URL Optuna's ``RDBStorage`` accepts
(``sqlite:///...``, ``postgresql://...``). A password inside a URL never leaves this module
unmasked (``reports.redact.mask``).
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import optuna

from reports.redact import mask
from studies.journal import JournalDamaged, JournalFile, complete_length
from studies.scaleout.faults import is_disk_full, is_storage_lost, retry_creation_race

__all__ = [
    "JOURNAL_NAME",
    "StorageError",
    "StorageSpec",
    "StorageUnavailable",
    "check_writable",
    "open_storage",
    "parse_storage",
    "run_directory",
    "slugify",
]

JOURNAL_NAME = "study.log"
JOURNAL_SUFFIXES = (".log", ".journal")
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
_SAFE = re.compile(r"[^a-z0-9._-]+")
#: libpq's connection timeout (seconds): an unreachable server fails fast instead of hanging.
CONNECT_TIMEOUT_S = 5


class StorageError(ValueError):
    """A storage the user named cannot be used (malformed, damaged, not writable): exit 2."""


class StorageUnavailable(StorageError):
    """A well-formed storage that does not answer now (database down, disk full): exit 3."""


@dataclass(frozen=True)
class StorageSpec:
    """A resolved storage: a journal file (``path``) or an RDB URL (``url``), never both."""

    path: Path | None = None
    url: str | None = None

    @property
    def is_journal(self) -> bool:
        return self.path is not None

    @property
    def display(self) -> str:
        """The storage as it may be printed or written (password masked)."""
        return str(self.path) if self.path is not None else mask(self.url or "")


def slugify(name: str) -> str:
    """A directory name for ``name``: ``[a-z0-9._-]`` only, never ``.``/``..``, never empty.

    A name that is already safe is its own slug; any other gets a short hash of the original
    appended, so two different names never share a run directory.
    """
    slug = _SAFE.sub("-", name.lower()).strip(".-_")[:64].strip(".-_")
    if slug == name:
        return slug
    digest = hashlib.blake2b(name.encode(), digest_size=4).hexdigest()
    return f"{slug}-{digest}" if slug else f"study-{digest}"


def parse_storage(storage: str | None, run_dir: Path) -> StorageSpec:
    """Resolve ``--storage`` (None ⇒ the embedded journal ``run_dir/study.log``)."""
    if storage is None:
        return StorageSpec(path=run_dir / JOURNAL_NAME)
    if not storage.strip():
        raise StorageError("--storage is empty")
    if _URL.match(storage):
        scheme = storage.split("://", 1)[0].lower()
        if storage.split("://", 1)[1].split("/", 1)[0].count("@") > 1:
            raise StorageError(
                f"the password in --storage {mask(storage)} holds an unencoded '@': write it as %40"
            )
        if scheme.startswith("sqlite") and _in_memory_sqlite(storage):
            raise StorageError(
                f"{storage} is an in-memory database: it cannot hold a study across workers "
                "or reruns (use sqlite:///FILE.db or a journal file)"
            )
        if scheme.startswith(("sqlite", "postgresql", "mysql")):
            return StorageSpec(url=storage)
        raise StorageError(
            f"unsupported storage URL scheme {scheme!r} in {mask(storage)} "
            "(use sqlite:///, postgresql:// or a journal file path)"
        )
    path = Path(storage).expanduser()
    if path.suffix not in JOURNAL_SUFFIXES:
        raise StorageError(
            f"storage {storage!r} is neither a URL nor a journal file (*.log, *.journal)"
        )
    return StorageSpec(path=path)


def _in_memory_sqlite(url: str) -> bool:
    path = url.split("://", 1)[1]
    path = path[1:] if path.startswith("/") else path
    path = path.split("?", 1)[0]
    return path in ("", ":memory:") or path.startswith("file::memory:")


def check_writable(directory: Path) -> None:
    """Raise ``StorageError`` unless ``directory`` exists writable or can be created.

    Nothing is created: the nearest existing ancestor must be a writable directory.
    """
    probe = directory.absolute()
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise StorageError(f"cannot create directory {directory} ({probe} is not writable)")


def open_storage(spec: StorageSpec) -> optuna.storages.BaseStorage:
    """Connect to the storage; any failure becomes a ``StorageError`` with secrets masked.

    A journal file is opened (and its directory created) only here, after validation.
    """
    if spec.path is not None:
        return _open_journal(spec.path)
    url = spec.url or ""
    engine_kwargs: dict[str, object] = {}
    if url.lower().startswith("postgresql"):
        engine_kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_S}
    try:
        # several machines starting on one empty database race to create the tables
        return retry_creation_race(
            lambda: optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)
        )
    except Exception as exc:  # SQLAlchemy / driver errors: their types vary by backend
        reason = " ".join(str(exc).split())[:300]
        # a database server that did not answer may come back (exit 3); a SQLite file that
        # cannot be opened is the user's to fix (exit 2)
        down = is_storage_lost(exc) and not url.lower().startswith("sqlite")
        raise (StorageUnavailable if down else StorageError)(
            f"cannot open storage {mask(url)}: {mask(reason)}"
        ) from None


def _open_journal(path: Path) -> optuna.storages.BaseStorage:
    """The journal at ``path``, created if absent; refused (``StorageError``) when damaged.

    Opening only reads: a torn tail is cut by the first append (``studies.journal``).
    """
    from optuna.storages.journal import JournalStorage

    if path.exists() and not path.is_file():
        raise StorageError(f"journal storage {path} exists and is not a file")
    try:
        if path.exists():
            complete_length(path)  # damaged before its last record: refused, left as it is
        path.parent.mkdir(parents=True, exist_ok=True)
        backend = JournalFile(path)
    except JournalDamaged as exc:
        raise StorageError(str(exc)) from None
    except OSError as exc:
        kind = StorageUnavailable if is_disk_full(exc) else StorageError
        raise kind(f"cannot open journal storage {path}: {exc.strerror}") from None
    try:
        return JournalStorage(backend)
    except Exception as exc:  # a complete record Optuna cannot replay (garbage, wrong op)
        reason = " ".join(f"{type(exc).__name__} {exc}".split())[:120]
        raise StorageError(
            f"journal {path} holds a record Optuna cannot replay ({reason}); it was left as it "
            "is: restore it from a copy, or choose another --out or --storage"
        ) from None


def run_directory(out: str | Path, study_name: str) -> Path:
    """``<out>/<slug>``: always a direct child of ``out``, whatever the study name."""
    return Path(out) / slugify(study_name)
