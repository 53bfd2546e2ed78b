"""Shared fixtures: migrated SQLite files, wired services, and a running server."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from api.auth import make_token
from api.bootstrap import Services
from api.settings import Settings
from migrations.runner import upgrade

ROOT = Path(__file__).resolve().parent.parent
TEST_SECRET = "test-secret-" + "x" * 40


@pytest.fixture(scope="session")
def template_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both databases migrated once with Alembic; tests get copies."""
    path = tmp_path_factory.mktemp("template")
    upgrade(f"sqlite+aiosqlite:///{path}/write.db", f"sqlite+aiosqlite:///{path}/read.db")
    return path


def fresh_settings(template: Path, target: Path, **overrides: object) -> Settings:
    target.mkdir(parents=True, exist_ok=True)
    for name in ("write.db", "read.db"):
        shutil.copy(template / name, target / name)
    values: dict[str, object] = {
        "write_database_url": f"sqlite+aiosqlite:///{target}/write.db",
        "read_database_url": f"sqlite+aiosqlite:///{target}/read.db",
        "jwt_secret": TEST_SECRET,
        "projection_poll_interval": 0.2,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings(template_dir: Path, tmp_path: Path) -> Settings:
    return fresh_settings(template_dir, tmp_path / "db")


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Services]:
    wired = Services.create(settings)
    await wired.start()
    try:
        yield wired
    finally:
        await wired.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclasses.dataclass
class LiveApp:
    base_url: str
    ws_url: str
    customer_token: str
    staff_token: str
    customer_id: str
    env: dict[str, str]
    process: subprocess.Popen[bytes]


def _env_for(settings: Settings) -> dict[str, str]:
    return server_env(settings.write_database_url, settings.read_database_url, settings.jwt_secret)


def server_env(write_url: str, read_url: str, jwt_secret: str = TEST_SECRET) -> dict[str, str]:
    """The environment of a test's ``shopfront serve`` (or CLI) on these databases: this
    process's environment without its SHOPFRONT_ settings, plus the tests' own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPFRONT_")}
    env.update(
        {
            "SHOPFRONT_WRITE_DATABASE_URL": write_url,
            "SHOPFRONT_READ_DATABASE_URL": read_url,
            "SHOPFRONT_JWT_SECRET": jwt_secret,
            "SHOPFRONT_PROJECTION_POLL_INTERVAL": "0.2",
            "SHOPFRONT_LOG_LEVEL": "warning",
            "SHOPFRONT_READ_YOUR_WRITES_TIMEOUT": "2",
            # Load-shaped tests send bursts from one address; the limiter has tests of its own.
            "SHOPFRONT_RATE_LIMIT_PER_SECOND": "2000",
            "SHOPFRONT_RATE_LIMIT_BURST": "5000",
            "SHOPFRONT_RATE_LIMIT_PER_ADDRESS_PER_SECOND": "5000",
            "SHOPFRONT_RATE_LIMIT_PER_ADDRESS_BURST": "20000",
            "SHOPFRONT_REGISTRATIONS_PER_ADDRESS_PER_MINUTE": "0",
            "SHOPFRONT_MAX_PENDING_WEBSOCKETS_PER_ADDRESS": "2000",
            "SHOPFRONT_MAX_WEBSOCKETS_PER_IDENTITY": "200",
        }
    )
    return env


def spawn_server(
    env: dict[str, str], port: int, log: Path, cwd: Path = ROOT
) -> subprocess.Popen[bytes]:
    """``shopfront serve`` on 127.0.0.1:``port``, its output appended to ``log``; does
    not wait for it to be ready."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "api", "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def start_server(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    process = spawn_server(env, port, log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"server did not become ready: {log.read_text()[-2000:]}")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.contextmanager
def fresh_server(
    template: Path, work: Path, **env: str
) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """``shopfront serve`` on its own copy of the template databases (``work/db``), with
    ``env`` on top, on a free loopback port, logging to ``work/server.log``: (port,
    process), stopped afterwards."""
    port = free_port()
    full_env = {**_env_for(fresh_settings(template, work / "db")), **env}
    process = start_server(full_env, port, work / "server.log")
    try:
        yield port, process
    finally:
        stop_server(process)


@pytest.fixture(scope="session")
def live_app(template_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    """The real server (``shopfront serve``) on a free loopback port, with the demo shop."""
    work = tmp_path_factory.mktemp("live")
    settings = fresh_settings(template_dir, work / "db")
    env = _env_for(settings)
    subprocess.run(
        [sys.executable, "-m", "api", "seed", "--demo"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    import sqlite3

    with sqlite3.connect(work / "db" / "write.db") as conn:
        (customer_id,) = conn.execute(
            "SELECT id FROM customers WHERE email = 'demo@shopfront.example'"
        ).fetchone()
    port = free_port()
    process = start_server(env, port, work / "server.log")
    hour = 3600.0
    import datetime as dt

    try:
        yield LiveApp(
            base_url=f"http://127.0.0.1:{port}",
            ws_url=f"ws://127.0.0.1:{port}/graphql",
            customer_token=make_token(
                TEST_SECRET, customer_id, "customer", dt.timedelta(seconds=hour)
            ),
            staff_token=make_token(TEST_SECRET, "staff-test", "staff", dt.timedelta(seconds=hour)),
            customer_id=customer_id,
            env=env,
            process=process,
        )
    finally:
        stop_server(process)
