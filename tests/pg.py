"""A throwaway PostgreSQL server for the test run.

``PostgresServer.start()`` runs ``initdb`` on a fresh temporary directory, starts ``postgres``
listening on 127.0.0.1 only (on a free port, its Unix socket inside that directory) and returns a
handle whose ``stop()`` shuts it down (``pg_ctl stop -m fast``) and removes the directory.
PostgreSQL refuses to run as root, so under root every server command runs as the ``postgres``
user (``su postgres``), which then owns the directory.
"""

from __future__ import annotations

import os
import pwd
import shlex
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

__all__ = ["BINARIES", "PostgresServer", "missing_binaries"]

BINARIES = ("initdb", "pg_ctl", "postgres")
_SERVER_USER = "postgres"
_START_TRIES = 3


def missing_binaries() -> list[str]:
    """The PostgreSQL server programs not found on ``PATH``."""
    return [name for name in BINARIES if shutil.which(name) is None]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class PostgresServer:
    """A running server: superuser ``postgres``, trust authentication, loopback only."""

    root: Path
    port: int
    as_user: str | None

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @classmethod
    def start(cls) -> PostgresServer:
        """Create the cluster and start the server; raises ``RuntimeError`` with its log."""
        as_user = _SERVER_USER if os.geteuid() == 0 else None
        root = Path(tempfile.mkdtemp(prefix="wdbench-pg-"))
        if as_user is not None:
            entry = pwd.getpwnam(as_user)
            os.chown(root, entry.pw_uid, entry.pw_gid)
        server = cls(root=root, port=0, as_user=as_user)
        try:
            server._initdb()
            server._launch()
        except BaseException:
            server.stop()
            raise
        return server

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of ``database`` on this server (``postgresql://`` → psycopg 3)."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new empty database with a unique name; returns its URL."""
        name = f"wdbench_{uuid.uuid4().hex[:12]}"
        dsn = f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def stop(self) -> None:
        """Stop the server (fast shutdown) if it runs, then remove its directory."""
        try:
            self.halt()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def halt(self) -> None:
        """Stop the server (fast shutdown: clients are disconnected), keeping its data."""
        if (self.data_dir / "postmaster.pid").exists():
            self._run(["pg_ctl", "stop", "-D", str(self.data_dir), "-m", "fast", "-w"])

    def resume(self) -> None:
        """Start a halted server again on the same port."""
        self._launch(port=self.port)

    def _initdb(self) -> None:
        self._run(
            ["initdb", "-D", str(self.data_dir), "-U", "postgres", "--auth=trust",
             "--encoding=UTF8", "--no-sync", "--no-instructions"]
        )  # fmt: skip

    def _launch(self, port: int | None = None) -> None:
        """``pg_ctl start`` on ``port`` or a free one (retried if another process took it)."""
        log = self.root / "server.log"
        for _ in range(_START_TRIES if port is None else 1):
            self.port = _free_port() if port is None else port
            options = (
                f"-c listen_addresses=127.0.0.1 -c port={self.port} "
                f"-c unix_socket_directories={self.root} -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
            )
            command = ["pg_ctl", "start", "-D", str(self.data_dir), "-l", str(log), "-w",
                       "-t", "60", "-o", options]  # fmt: skip
            if self._run(command, check=False).returncode == 0:
                return
        text = log.read_text(errors="replace") if log.exists() else "(no server log)"
        raise RuntimeError(f"PostgreSQL did not start; server log:\n{text}")

    def _run(self, argv: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        resolved = [shutil.which(argv[0]) or argv[0], *argv[1:]]
        if self.as_user is not None:
            resolved = ["su", self.as_user, "-s", "/bin/bash", "-c", shlex.join(resolved)]
        result = subprocess.run(resolved, capture_output=True, text=True, timeout=120, check=False)
        if check and result.returncode != 0:
            raise RuntimeError(
                f"{shlex.join(argv)} failed ({result.returncode}): {result.stderr.strip()}"
            )
        return result
