"""Several Shopfront processes on the same databases: API processes (``shopfront serve``,
with projectors inline or off) and projector processes (``shopfront project``), on
SQLite files or on a real PostgreSQL server, each on a free loopback port, all stopped
at the test's end."""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from migrations.runner import upgrade
from projections.engine.leadership import read_leader
from tests.conftest import ROOT, free_port, server_env, start_server, stop_server
from tests.servers import PostgresServer, RedisServer, postgres_server, redis_server

WAIT = 30.0


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    """A real Redis server of this test's own (tests may kill, pause or restart it)."""
    with redis_server() as server:
        yield server


@dataclasses.dataclass
class Cluster:
    """The processes of one test on one pair of databases."""

    write_url: str
    read_url: str
    work: Path
    processes: list[subprocess.Popen[bytes]] = dataclasses.field(default_factory=list)

    def env(self, **extra: str) -> dict[str, str]:
        env = server_env(self.write_url, self.read_url)
        env.update(extra)
        return env

    def api(self, name: str, projectors: str, **extra: str) -> str:
        """``shopfront serve`` with SHOPFRONT_PROJECTORS=``projectors``, ready; its URL."""
        port = free_port()
        env = self.env(SHOPFRONT_PROJECTORS=projectors, **extra)
        self.processes.append(start_server(env, port, self.work / f"{name}.log"))
        return f"http://127.0.0.1:{port}"

    def projector(self, name: str, **extra: str) -> subprocess.Popen[bytes]:
        """``shopfront project``, started (leading or standing by)."""
        log = self.work / f"{name}.log"
        with log.open("ab") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "api", "project"],
                cwd=ROOT,
                env=self.env(**extra),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.processes.append(process)
        until(lambda: "leading or standing by" in log.read_text(), f"{name} to start", process)
        return process

    def leader(self) -> str | None:
        """The process id recorded as the projector leader (host:pid:id), or None."""
        engine = sa.create_engine(self.read_url.replace("+asyncpg", "+psycopg").replace(
            "+aiosqlite", ""))  # fmt: skip
        try:
            with engine.connect() as conn:
                found = read_leader(conn)
        finally:
            engine.dispose()
        return None if found is None else found[0]

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                stop_server(process)

    def logs(self) -> str:
        return "\n".join(f"== {p.name}\n{p.read_text()[-3000:]}" for p in self.work.glob("*.log"))


def until(
    condition: Callable[[], bool],
    what: str,
    process: subprocess.Popen[bytes] | None = None,
    timeout: float = WAIT,
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"process exited ({process.returncode}) waiting for {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def pid_of(holder: str | None) -> int | None:
    return None if holder is None else int(holder.split(":")[1])


@contextlib.contextmanager
def sqlite_cluster(template_dir: Path, work: Path) -> Iterator[Cluster]:
    db = work / "db"
    db.mkdir(parents=True)
    for name in ("write.db", "read.db"):
        shutil.copy(template_dir / name, db / name)
    cluster = Cluster(
        f"sqlite+aiosqlite:///{db}/write.db", f"sqlite+aiosqlite:///{db}/read.db", work
    )
    try:
        yield cluster
    finally:
        cluster.stop()


@contextlib.contextmanager
def postgres_cluster(server: PostgresServer, work: Path) -> Iterator[Cluster]:
    suffix = uuid.uuid4().hex[:8]
    for name in (f"cw_{suffix}", f"cr_{suffix}"):
        server.create_database(name)
    cluster = Cluster(server.url(f"cw_{suffix}"), server.url(f"cr_{suffix}"), work)
    upgrade(cluster.write_url, cluster.read_url)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def cluster(
    request: pytest.FixtureRequest, template_dir: Path, tmp_path: Path
) -> Iterator[Cluster]:
    """Databases for several processes, on SQLite files and on PostgreSQL."""
    if request.param == "sqlite":
        with sqlite_cluster(template_dir, tmp_path) as found:
            yield found
    else:
        with postgres_cluster(request.getfixturevalue("postgres"), tmp_path) as found:
            yield found


@pytest.fixture
def lite_cluster(template_dir: Path, tmp_path: Path) -> Iterator[Cluster]:
    """Databases for several processes, on SQLite files only."""
    with sqlite_cluster(template_dir, tmp_path) as found:
        yield found


@pytest.fixture
def pg_cluster(postgres: PostgresServer, tmp_path: Path) -> Iterator[Cluster]:
    with postgres_cluster(postgres, tmp_path) as found:
        yield found
