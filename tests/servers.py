"""Real PostgreSQL and Redis servers for the tests: started on a free loopback port in a
temporary directory, stopped (and the directory removed) when the test session ends.

Both come from Debian's packages, installed by ``scripts/install-test-deps.sh``. A missing
server binary fails the test that needs it: ``make test-deps`` installs it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

PG_ROOT = Path("/usr/lib/postgresql")
# PostgreSQL's server refuses to run as root; as root the tests start it as this user.
PG_USER = "postgres"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pg_bin() -> Path:
    versions = sorted(
        (p for p in PG_ROOT.glob("*/bin") if (p / "initdb").exists()),
        key=lambda p: int(p.parent.name),
    )
    if not versions:
        raise RuntimeError(
            f"No PostgreSQL server under {PG_ROOT}: run `make test-deps` (Debian's postgresql)"
        )
    return versions[-1]


def _wait_for_port(port: int, process: subprocess.Popen[bytes] | None, what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} within 30 s")


@dataclasses.dataclass
class PostgresServer:
    """A throwaway PostgreSQL cluster: ``trust`` authentication, loopback only, fsync off
    (the tests check behaviour, not durability across power loss)."""

    directory: Path
    port: int
    bin: Path

    def url(self, database: str, driver: str = "asyncpg") -> str:
        return f"postgresql+{driver}://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> None:
        server_user = pwd.getpwnam(PG_USER).pw_uid if os.geteuid() == 0 else None
        subprocess.run(
            [str(self.bin / args[0]), *args[1:]],
            check=True,
            capture_output=True,
            user=server_user,
            group=pwd.getpwnam(PG_USER).pw_gid if server_user is not None else None,
        )

    def start(self) -> None:
        data = self.directory / "data"
        if not data.exists():
            self._run("initdb", "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
                      "--no-sync")  # fmt: skip
        options = (
            f"-h 127.0.0.1 -p {self.port} -k {self.directory} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
        )
        self._run("pg_ctl", "-D", str(data), "-o", options, "-l", str(self.directory / "log"),
                  "-w", "-t", "30", "start")  # fmt: skip
        _wait_for_port(self.port, None, "PostgreSQL")

    def stop(self, mode: str = "fast") -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run("pg_ctl", "-D", str(self.directory / "data"), "-m", mode, "-w", "stop")

    def sql(self, statement: str, database: str = "postgres") -> str:
        """Runs one statement with psql; returns its unaligned output."""
        done = subprocess.run(
            ["psql", "-X", "-A", "-t", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
             "-d", database, "-v", "ON_ERROR_STOP=1", "-c", statement],
            check=True,
            capture_output=True,
            text=True,
        )  # fmt: skip
        return done.stdout.strip()

    def create_database(self, name: str, template: str | None = None) -> None:
        suffix = f' TEMPLATE "{template}"' if template else ""
        self.sql(f'CREATE DATABASE "{name}"{suffix}')


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    directory = Path(tempfile.mkdtemp(prefix="shopfront-pg-"))
    os.chmod(directory, 0o755)
    if os.geteuid() == 0:
        entry = pwd.getpwnam(PG_USER)
        os.chown(directory, entry.pw_uid, entry.pw_gid)
    server = PostgresServer(directory, free_port(), pg_bin())
    try:
        server.start()
        yield server
    finally:
        server.stop("immediate")
        shutil.rmtree(directory, ignore_errors=True)


@dataclasses.dataclass
class RedisServer:
    directory: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("No redis-server on PATH: run `make test-deps`")
        with (self.directory / "log").open("ab") as log:
            self.process = subprocess.Popen(
                [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
                 "--appendonly", "no", "--dir", str(self.directory), "--protected-mode", "yes"],
                stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        _wait_for_port(self.port, self.process, "Redis")

    def restart(self) -> None:
        """Start again on the same port (after ``kill`` or ``stop``), empty."""
        assert self.process is None, "still running"
        self.start()

    def pause(self) -> None:
        """SIGSTOP: connections stay open, nothing answers (a Redis stuck or swapping)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)  # a paused server cannot stop
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None


@contextlib.contextmanager
def redis_server() -> Iterator[RedisServer]:
    directory = Path(tempfile.mkdtemp(prefix="shopfront-redis-"))
    server = RedisServer(directory, free_port())
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)
