"""Shared fixtures: migrated databases, wired services, and a running server.

The backend is chosen per run: SQLite files (the default) or, with ``--db=postgresql``, a
real PostgreSQL server started for the session (``tests/servers.py``). Either way the
template is migrated once and every test gets fresh databases of its own: copies of the
SQLite files, or ``CREATE DATABASE ... TEMPLATE`` on PostgreSQL. Tests marked
``sqlite_only`` (SQLite's files or pragmas are what they test) are skipped on the
PostgreSQL run with their stated reason (docs/testing.md lists them).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from api.auth import make_token
from api.bootstrap import Services
from api.settings import Settings
from migrations.runner import upgrade
from tests.servers import PostgresServer, postgres_server

ROOT = Path(__file__).resolve().parent.parent
TEST_SECRET = "test-secret-" + "x" * 40


POSTGRES_TEMPLATE = "postgres.json"  # in a template dir: the PostgreSQL template databases


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--db",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help="the backend of the tests' databases (default sqlite)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "sqlite_only(reason): tests SQLite itself; skipped with --db=postgresql"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--db") != "postgresql":
        return
    for item in items:
        marker = item.get_closest_marker("sqlite_only")
        if marker is not None:
            reason = marker.kwargs.get("reason") or (marker.args[0] if marker.args else "")
            assert reason, f"{item.nodeid}: sqlite_only needs a reason"
            item.add_marker(pytest.mark.skip(reason=f"SQLite only: {reason}"))


def on_postgresql(config: pytest.Config) -> bool:
    return bool(config.getoption("--db") == "postgresql")


@pytest.fixture(scope="session")
def session_postgres() -> Iterator[PostgresServer]:
    """The PostgreSQL server of a ``--db=postgresql`` run."""
    with postgres_server() as server:
        yield server


@pytest.fixture(scope="session")
def template_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both databases migrated once with Alembic; tests get copies. On PostgreSQL the
    folder holds ``postgres.json``: the server and its two template databases."""
    path = tmp_path_factory.mktemp("template")
    if not on_postgresql(request.config):
        upgrade(f"sqlite+aiosqlite:///{path}/write.db", f"sqlite+aiosqlite:///{path}/read.db")
        return path
    server: PostgresServer = request.getfixturevalue("session_postgres")
    server.create_database("template_write")
    server.create_database("template_read")
    upgrade(server.url("template_write"), server.url("template_read"))
    template = {"port": server.port, "write": "template_write", "read": "template_read"}
    (path / POSTGRES_TEMPLATE).write_text(json.dumps(template))
    return path


# Databases created from the PostgreSQL templates; each test's are dropped after it.
_created: list[tuple[int, str]] = []


def _admin(port: int) -> psycopg.Connection[Any]:
    return psycopg.connect(
        f"postgresql://postgres@127.0.0.1:{port}/postgres", autocommit=True, connect_timeout=10
    )


def fresh_urls(template: Path, target: Path) -> tuple[str, str]:
    """URLs of a fresh (write, read) pair of migrated databases: copies of the template's
    SQLite files in ``target``, or new PostgreSQL databases made from the templates."""
    return fresh_url(template, target, "write"), fresh_url(template, target, "read")


def fresh_url(template: Path, target: Path, which: str) -> str:
    """The URL of a fresh migrated ``which`` ("write" or "read") database (see
    ``fresh_urls``)."""
    target.mkdir(parents=True, exist_ok=True)
    spec = template / POSTGRES_TEMPLATE
    if not spec.exists():
        shutil.copy(template / f"{which}.db", target / f"{which}.db")
        return f"sqlite+aiosqlite:///{target}/{which}.db"
    pg = json.loads(spec.read_text())
    name = f"{which}_{uuid.uuid4().hex[:12]}"
    with _admin(pg["port"]) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{pg[which]}" STRATEGY FILE_COPY')
    _created.append((pg["port"], name))
    return f"postgresql+asyncpg://postgres@127.0.0.1:{pg['port']}/{name}"


def empty_url(template: Path, target: Path, which: str) -> str:
    """The URL of a new empty (not migrated) database: an empty file ``target/which.db``,
    or a new PostgreSQL database on the run's server."""
    target.mkdir(parents=True, exist_ok=True)
    spec = template / POSTGRES_TEMPLATE
    if not spec.exists():
        (target / f"{which}.db").touch()
        return f"sqlite+aiosqlite:///{target}/{which}.db"
    port = json.loads(spec.read_text())["port"]
    name = f"empty_{which}_{uuid.uuid4().hex[:12]}"
    with _admin(port) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    _created.append((port, name))
    return f"postgresql+asyncpg://postgres@127.0.0.1:{port}/{name}"


@pytest.fixture(autouse=True)
def _drop_test_databases() -> Iterator[None]:
    """The PostgreSQL databases a test made (not those of module or session fixtures,
    which are set up before it) are dropped after it."""
    before = len(_created)
    yield
    mine = _created[before:]
    del _created[before:]
    for port, name in mine:
        with contextlib.suppress(psycopg.Error), _admin(port) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def fresh_settings(template: Path, target: Path, **overrides: object) -> Settings:
    write_url, read_url = fresh_urls(template, target)
    values: dict[str, object] = {
        "write_database_url": write_url,
        "read_database_url": read_url,
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


def postgres_env(server: PostgresServer) -> dict[str, str]:
    """``server_env`` on two new, empty databases of ``server`` (not migrated)."""
    suffix = uuid.uuid4().hex[:8]
    write, read = f"write_{suffix}", f"read_{suffix}"
    server.create_database(write)
    server.create_database(read)
    return server_env(server.url(write), server.url(read))


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
    from tests.reliability.support import database_of, scalar

    customer_id = scalar(
        database_of(settings.write_database_url),
        "SELECT id FROM customers WHERE email = 'demo@shopfront.example'",
    )
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
