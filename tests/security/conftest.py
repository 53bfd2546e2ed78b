"""Dedicated servers for the security tests, one per configuration, each on a free
loopback port, on fresh copies of the migrated databases, with its own settings given
as ``SHOPFRONT_*`` environment variables.

* ``prod_server`` is a real ``shopfront serve`` process: its command-line behaviour (JSON
  logs to its output) is under test.
* The others run the same app (``build_app`` with the settings read from the same kind of
  environment, served by uvicorn) in a thread of the test process: starting a Python
  process with this app's imports takes many seconds on a loaded machine, and there are
  four of them.

The servers the selected tests need are all started at once, in parallel, when the first
of them is asked for; each test then waits only for its own.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from unittest import mock

import httpx
import pytest
import uvicorn

from api.app import build_app
from api.settings import Settings
from tests.conftest import ROOT, _env_for, free_port, fresh_settings, spawn_server, stop_server

from .support import AUDIENCE, ISSUER, SHOP_ORIGIN, JwksEndpoint, Server, jwks_document

PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY")
ORIGINS = json.dumps([SHOP_ORIGIN])
START_TIMEOUT = 120.0


# -- configurations --------------------------------------------------------------------------


def _dev(work: Path, jwks: JwksEndpoint) -> dict[str, str]:
    return {
        "SHOPFRONT_ENV": "dev",
        "SHOPFRONT_CORS_ORIGINS": ORIGINS,
        "SHOPFRONT_ALLOWED_ORIGINS": ORIGINS,
    }


def _prod(work: Path, jwks: JwksEndpoint) -> dict[str, str]:
    # A real secret (the tests' one, not the dev default); info level: more log lines.
    return {"SHOPFRONT_ENV": "prod", "SHOPFRONT_LOG_LEVEL": "info"}


def _rs256_file(work: Path, jwks: JwksEndpoint) -> dict[str, str]:
    path = work / "jwks.json"
    path.write_text(jwks_document())
    return {
        "SHOPFRONT_JWT_ALGORITHM": "RS256",
        "SHOPFRONT_JWT_JWKS": str(path),
        "SHOPFRONT_JWT_ISSUER": ISSUER,
        "SHOPFRONT_JWT_AUDIENCE": AUDIENCE,
    }


def _rs256_url(work: Path, jwks: JwksEndpoint) -> dict[str, str]:
    return {"SHOPFRONT_JWT_ALGORITHM": "RS256", "SHOPFRONT_JWT_JWKS": jwks.url}


def _abuse(work: Path, jwks: JwksEndpoint) -> dict[str, str]:
    return {
        "SHOPFRONT_RATE_LIMIT_PER_SECOND": "2",
        "SHOPFRONT_RATE_LIMIT_BURST": "3",
        "SHOPFRONT_WEBSOCKET_INIT_TIMEOUT": "1",
        "SHOPFRONT_WEBSOCKET_IDLE_TIMEOUT": "2",
        "SHOPFRONT_MAX_WEBSOCKETS_PER_IDENTITY": "2",
        "SHOPFRONT_MAX_SUBSCRIPTIONS_PER_IDENTITY": "2",
    }


def _slow_refill(work: Path, jwks: JwksEndpoint) -> dict[str, str]:
    # One request per 1,000 s after a burst of 3: no pause of a test run refills a token.
    return {"SHOPFRONT_RATE_LIMIT_PER_SECOND": "0.001", "SHOPFRONT_RATE_LIMIT_BURST": "3"}


def _side_door(work: Path, jwks: JwksEndpoint) -> dict[str, str]:
    return {
        "SHOPFRONT_RATE_LIMIT_PER_SECOND": "1",
        "SHOPFRONT_RATE_LIMIT_BURST": "5",
        "SHOPFRONT_RATE_LIMIT_PER_ADDRESS_PER_SECOND": "1",
        "SHOPFRONT_RATE_LIMIT_PER_ADDRESS_BURST": "8",
        "SHOPFRONT_REGISTRATIONS_PER_ADDRESS_PER_MINUTE": "1",
        "SHOPFRONT_REGISTRATIONS_PER_ADDRESS_BURST": "3",
        "SHOPFRONT_MAX_WEBSOCKETS_PER_IDENTITY": "2",
        "SHOPFRONT_MAX_PENDING_WEBSOCKETS_PER_ADDRESS": "3",
    }


CONFIGURATIONS: dict[str, Callable[[Path, JwksEndpoint], dict[str, str]]] = {
    "dev_server": _dev,
    "prod_server": _prod,
    "rs256_file_server": _rs256_file,
    "rs256_url_server": _rs256_url,
    "abuse_server": _abuse,
    "slow_refill_server": _slow_refill,
    "side_door_server": _side_door,
}
SEPARATE_PROCESS = {"prod_server"}


# -- starting them -----------------------------------------------------------------------------


def _wait_ready(port: int, alive: Callable[[], bool], why: Callable[[], str]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError(f"server exited: {why()}")
        try:
            with httpx.Client(trust_env=False, timeout=1) as client:
                if client.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                    return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server did not become ready: {why()}")


def _start_process(env: dict[str, str], port: int, log: Path) -> Callable[[], None]:
    """``start_server`` of tests/conftest.py, with more patience: several servers start
    at once here, and on a loaded machine one alone can take more than its 30 s."""
    process = spawn_server(env, port, log)
    try:
        _wait_ready(port, lambda: process.poll() is None, lambda: log.read_text()[-2000:])
    except BaseException:
        stop_server(process)
        raise
    return lambda: stop_server(process)


def _start_in_process(settings: Settings, port: int) -> Callable[[], None]:
    """The app as ``shopfront serve`` builds and serves it, in a thread of its own."""
    servers: list[uvicorn.Server] = []
    failure: list[BaseException] = []

    def serve() -> None:
        try:
            config = uvicorn.Config(
                build_app(settings),
                host="127.0.0.1",
                port=port,
                log_level=settings.log_level,
                log_config=None,
                access_log=False,
                # as `shopfront serve` passes it (off unless SHOPFRONT_WEBSOCKET_COMPRESSION)
                ws_per_message_deflate=settings.websocket_compression,
            )
            servers.append(uvicorn.Server(config))
            servers[0].run()
        except BaseException as error:
            failure.append(error)
            raise

    thread = threading.Thread(target=serve, name=f"shopfront-{port}", daemon=True)
    thread.start()

    def stop() -> None:
        if servers:
            servers[0].should_exit = True
        thread.join(15)

    try:
        _wait_ready(port, thread.is_alive, lambda: repr(failure))
    except BaseException:
        stop()
        raise
    return stop


def settings_from(env: dict[str, str]) -> Settings:
    """The settings a server started with this environment reads (no .env file)."""
    with mock.patch.dict(os.environ, env, clear=True):
        return Settings(_env_file=None)  # type: ignore[call-arg]  # pydantic-settings option


@dataclasses.dataclass(frozen=True)
class Exited:
    returncode: int | None  # None: it did not exit, it started serving (and was stopped)
    output: str


def _prod_without_secret(template_dir: Path, work: Path) -> Exited:
    """``shopfront serve`` in prod with no SHOPFRONT_JWT_SECRET (the dev-only default)."""
    env = _env_for(fresh_settings(template_dir, work / "db"))
    del env["SHOPFRONT_JWT_SECRET"]
    env.update({"SHOPFRONT_ENV": "prod", "PYTHONPATH": str(ROOT)})
    port = free_port()
    log = work / "output.log"
    process = spawn_server(env, port, log, cwd=work)  # no .env file in ``work``
    # until it exits (RuntimeError), or serves after all
    with contextlib.suppress(RuntimeError):
        _wait_ready(port, lambda: process.poll() is None, lambda: "")
    if process.poll() is None:
        stop_server(process)
        return Exited(None, log.read_text(errors="replace"))
    return Exited(process.returncode, log.read_text(errors="replace"))


# Commands that are expected to exit, run in the background while the servers start.
RUNS: dict[str, Callable[[Path, Path], Exited]] = {
    "prod_without_secret": _prod_without_secret,
}


class Fleet:
    def __init__(self, template_dir: Path, root: Path, names: set[str]) -> None:
        self.template_dir = template_dir
        self.root = root
        self.jwks = JwksEndpoint(jwks_document())
        self._pool = ThreadPoolExecutor(max_workers=max(1, len(names)))
        self._runs: dict[str, Future[Exited]] = {}
        self._servers: dict[str, Future[Server]] = {}
        for name in sorted(names & RUNS.keys()):  # the slowest first
            self.run_later(name)
        for name in sorted(names & CONFIGURATIONS.keys(), key=lambda n: n not in SEPARATE_PROCESS):
            self.start_later(name)

    def _work(self, name: str) -> Path:
        work = self.root / name
        work.mkdir(parents=True, exist_ok=True)
        return work

    def run_later(self, name: str) -> None:
        self._runs[name] = self._pool.submit(RUNS[name], self.template_dir, self._work(name))

    def run(self, name: str) -> Exited:
        if name not in self._runs:
            self.run_later(name)
        return self._runs[name].result()

    def start_later(self, name: str) -> None:
        """Prepare the environment here (the settings are read from os.environ, patched
        for the moment), start in the background."""
        work = self._work(name)
        env = _env_for(fresh_settings(self.template_dir, work / "db"))
        for variable in PROXY_VARIABLES:  # everything here is on loopback
            env.pop(variable, None)
        env.update(CONFIGURATIONS[name](work, self.jwks))
        port = free_port()
        base = f"127.0.0.1:{port}"
        log = work / "server.log" if name in SEPARATE_PROCESS else None
        settings = settings_from(env)

        def start() -> Server:
            if log is not None:
                stop = _start_process(env, port, log)
            else:
                stop = _start_in_process(settings, port)
            return Server(f"http://{base}", f"ws://{base}/graphql", env, stop, log)

        self._servers[name] = self._pool.submit(start)

    def get(self, name: str) -> Server:
        if name not in self._servers:  # not foreseen (e.g. asked for dynamically)
            self.start_later(name)
        return self._servers[name].result()

    def close(self) -> None:
        for future in self._servers.values():
            try:
                server = future.result()
            except Exception:  # it did not start: nothing to stop
                continue
            server.stop()
        for run in self._runs.values():
            run.exception()  # wait for it
        self._pool.shutdown()
        self.jwks.close()


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def fleet(
    request: pytest.FixtureRequest, template_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Fleet]:
    wanted = {
        name
        for item in request.session.items
        for name in getattr(item, "fixturenames", ())
        if name in CONFIGURATIONS or name in RUNS
    }
    servers = Fleet(template_dir, tmp_path_factory.mktemp("security"), wanted)
    try:
        yield servers
    finally:
        servers.close()


@pytest.fixture(scope="session")
def dev_server(fleet: Fleet) -> Server:
    """Dev mode (GraphiQL, introspection), HS256, CORS and WebSocket origins allow-listed."""
    return fleet.get("dev_server")


@pytest.fixture(scope="session")
def prod_server(fleet: Fleet) -> Server:
    """``shopfront serve`` with SHOPFRONT_ENV=prod and a real secret; its output is
    ``Server.log``."""
    return fleet.get("prod_server")


@pytest.fixture(scope="session")
def rs256_file_server(fleet: Fleet) -> Server:
    """RS256 with the identity provider's keys from a JWKS file; issuer and audience set."""
    return fleet.get("rs256_file_server")


@pytest.fixture(scope="session")
def rs256_url_server(fleet: Fleet) -> Server:
    """RS256 with the keys from a JWKS URL (served by the tests on loopback)."""
    return fleet.get("rs256_url_server")


@pytest.fixture(scope="session")
def abuse_server(fleet: Fleet) -> Server:
    """Small limits: 2 requests/s (burst 3), 2 sockets and 2 subscriptions per identity,
    1 s to send connection_init, 2 s idle."""
    return fleet.get("abuse_server")


@pytest.fixture(scope="session")
def slow_refill_server(fleet: Fleet) -> Server:
    """A burst of 3 requests per identity, then one per 1,000 s: a spent budget stays
    spent for the whole run."""
    return fleet.get("slow_refill_server")


@pytest.fixture(scope="session")
def side_door_server(fleet: Fleet) -> Server:
    """Rate limits per identity (1/s, burst 5) and per address (1/s, burst 8), 3 sign-ups
    per address (then 1 a minute), 2 sockets per identity, 3 pending sockets per address.
    Tests each use their own loopback source address (127.0.0.N)."""
    return fleet.get("side_door_server")


@pytest.fixture(scope="session")
def jwks_endpoint(fleet: Fleet) -> JwksEndpoint:
    return fleet.jwks


@pytest.fixture(scope="session")
def prod_without_secret(fleet: Fleet) -> Exited:
    """How ``shopfront serve`` ended in prod without SHOPFRONT_JWT_SECRET."""
    return fleet.run("prod_without_secret")
