"""PostgreSQL faults: the server restarted under load, and a bad database URL at start-up.

While PostgreSQL is down, every request answers 200 (the response cache, or it got
through) or 503 ``DATABASE_UNAVAILABLE`` with ``Retry-After``: never a 500, never a stack
trace, and the server's log has one line per failure, no traceback. When PostgreSQL is
back (same data, same port) the process recovers by itself within a bound; every order it
acknowledged is in the write model and the read model, and every order that got
``DATABASE_UNAVAILABLE`` is placed exactly once when retried with its idempotency key.
"""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from api.bootstrap import Services
from api.graphql.ids import raw_id_of
from api.settings import Settings
from migrations.engine import database_unavailable
from tests.conftest import ROOT, free_port, postgres_env, server_env, start_server, stop_server
from tests.reliability.support import (
    PLACE,
    Json,
    add_product,
    query_rows,
    register,
    staff_token,
    wait_caught_up,
)
from tests.servers import PostgresServer, postgres_server

WORKERS = 4
RECOVERY_BOUND = 20.0  # seconds from PostgreSQL's restart to a request that succeeds
PRODUCT = "query($sku: String!) { product(sku: $sku) { sku stockAvailable } }"
MY_ORDERS = "{ myOrders(first: 5) { edges { node { id status } } } }"


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


def _env(server: PostgresServer) -> dict[str, str]:
    env = postgres_env(server)
    done = subprocess.run(
        [sys.executable, "-m", "api", "migrate"], cwd=ROOT, env=env, capture_output=True
    )
    assert done.returncode == 0, done.stderr
    return env


@dataclasses.dataclass
class Load:
    """What the clients saw: statuses by (operation, status, code), the keys of the orders
    acknowledged (key -> order id) and of those answered DATABASE_UNAVAILABLE."""

    seen: Counter[tuple[str, int, str]] = dataclasses.field(default_factory=Counter)
    placed: dict[str, str] = dataclasses.field(default_factory=dict)
    unavailable_keys: list[str] = dataclasses.field(default_factory=list)
    last_success: float = 0.0
    stop: bool = False

    def unavailable(self) -> int:
        return sum(n for (_, status, _), n in self.seen.items() if status == 503)


def _check(response: httpx.Response, operation: str, load: Load) -> Json | None:
    """Records the answer; returns its data if it succeeded (200, no errors)."""
    assert "Traceback" not in response.text, response.text[:2000]
    body = response.json()
    codes = {e.get("extensions", {}).get("code") for e in body.get("errors") or ()}
    code = ",".join(sorted(str(c) for c in codes)) if codes else ""
    load.seen[(operation, response.status_code, code)] += 1
    if response.status_code == 503:
        assert codes == {"DATABASE_UNAVAILABLE"}, body
        assert response.headers.get("Retry-After"), response.headers
        return None
    assert response.status_code == 200, (response.status_code, response.text[:2000])
    assert not codes, body
    load.last_success = time.monotonic()
    return body["data"]  # type: ignore[no-any-return]


async def _shopper(http: httpx.AsyncClient, token: str, sku: str, load: Load) -> None:
    while not load.stop:
        key = f"fault-{uuid.uuid4().hex[:12]}"
        variables: dict[str, Any] = {
            "input": {"lines": [{"sku": sku, "quantity": 1}], "idempotencyKey": key}
        }
        auth = {"Authorization": f"Bearer {token}"}
        response = await http.post(
            "/graphql", json={"query": PLACE, "variables": variables}, headers=auth
        )
        data = _check(response, "placeOrder", load)
        if data is None:
            load.unavailable_keys.append(key)
        else:
            payload = data["placeOrder"]
            assert payload["userErrors"] == [], payload
            load.placed[key] = payload["order"]["id"]
        for query, variables in ((PRODUCT, {"sku": sku}), (MY_ORDERS, {})):
            response = await http.post(
                "/graphql", json={"query": query, "variables": variables}, headers=auth
            )
            _check(response, "query", load)


async def _wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        await asyncio.sleep(0.05)


@pytest.mark.timeout(180)
async def test_postgresql_restarted_under_load(postgres: PostgresServer, tmp_path: Path) -> None:
    env = _env(postgres)
    port, log = free_port(), tmp_path / "server.log"
    process = await asyncio.to_thread(start_server, env, port, log)
    load = Load()
    staff = staff_token("staff-faults")
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", timeout=30, trust_env=False
        ) as http:
            sku = f"FAULT-{uuid.uuid4().hex[:6]}".upper()
            await add_product(http, staff, sku, 500, 100_000)
            tokens = [(await register(http, f"Fault {n}"))[0] for n in range(WORKERS)]
            shoppers = [asyncio.create_task(_shopper(http, t, sku, load)) for t in tokens]
            try:
                await _wait_for(lambda: len(load.placed) >= 20, 30, "orders before the stop")
                await asyncio.to_thread(postgres.stop, "fast")
                await _wait_for(lambda: load.unavailable() >= 10, 30, "DATABASE_UNAVAILABLE")
                await asyncio.to_thread(postgres.start)
                restarted = time.monotonic()
                await _wait_for(
                    lambda: load.last_success > restarted + 0.5, RECOVERY_BOUND, "recovery"
                )
                await _wait_for(lambda: len(load.placed) >= 40, 30, "orders after the restart")
            finally:
                load.stop = True
                await asyncio.gather(*shoppers)
            # A client that got DATABASE_UNAVAILABLE retries with the same key: exactly
            # one order each (the command had committed or not, never half).
            for n, key in enumerate(load.unavailable_keys):
                token = tokens[n % WORKERS]
                variables = {
                    "input": {"lines": [{"sku": sku, "quantity": 1}], "idempotencyKey": key}
                }
                response = await http.post(
                    "/graphql",
                    json={"query": PLACE, "variables": variables},
                    headers={"Authorization": f"Bearer {token}"},
                )
                data = _check(response, "retry", load)
                assert data is not None and data["placeOrder"]["userErrors"] == [], data
                load.placed[key] = data["placeOrder"]["order"]["id"]
            await wait_caught_up(http, staff, timeout=30)
    finally:
        await asyncio.to_thread(stop_server, process)

    assert not [k for k in load.seen if k[1] not in (200, 503)], load.seen
    assert any(k[1] == 503 for k in load.seen), load.seen
    text = log.read_text()
    assert "Traceback" not in text, text[-5000:]
    assert "database unavailable" in text.lower(), text[-3000:]

    placed = {raw_id_of("Order", order_id) for order_id in load.placed.values()}
    assert len(placed) == len(load.placed), "two keys gave the same order"
    write_url = env["SHOPFRONT_WRITE_DATABASE_URL"]
    read_url = env["SHOPFRONT_READ_DATABASE_URL"]
    orders = {r["id"] for r in query_rows(write_url, "SELECT id FROM orders")}
    assert orders == placed, (len(orders), len(placed))  # acknowledged, retried, no more
    detail = {r["order_id"] for r in query_rows(read_url, "SELECT order_id FROM order_detail")}
    assert detail == placed


def test_serve_refuses_a_bad_database_url_in_one_line(postgres: PostgresServer) -> None:
    unreachable = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/shop"
    for url, says in (
        (unreachable, "cannot reach the write database"),
        ("postgresql+asyncpg://postgres:secret@127.0.0.1:notaport/shop", "is not usable"),
        ("not a url", "is not usable"),
    ):
        env = server_env(url, url)
        done = subprocess.run(
            [sys.executable, "-m", "api", "serve", "--port", str(free_port())],
            cwd=ROOT,
            env={**env, "COLUMNS": "400"},
            capture_output=True,
            text=True,
            timeout=60,
        )
        output = (done.stdout + done.stderr).strip()
        assert done.returncode == 2, output
        assert len(output.splitlines()) == 1, output
        assert says in output and "Traceback" not in output, output
        assert "secret" not in output, output


async def test_pools_and_statement_timeout_come_from_the_settings(
    postgres: PostgresServer,
) -> None:
    env = _env(postgres)
    settings = Settings(
        write_database_url=env["SHOPFRONT_WRITE_DATABASE_URL"],
        read_database_url=env["SHOPFRONT_READ_DATABASE_URL"],
        db_pool_size=3,
        db_max_overflow=2,
        db_statement_timeout_ms=250,
    )
    services = Services.create(settings)
    try:
        for engine in (services.write_engine, services.log_engine, services.projector_engine):
            assert (engine.pool.size(), engine.pool._max_overflow) == (3, 2)  # type: ignore[attr-defined]
            with engine.connect() as conn:
                assert conn.exec_driver_sql("SHOW statement_timeout").scalar() == "250ms"
                with pytest.raises(sa.exc.OperationalError) as raised:
                    conn.exec_driver_sql("SELECT pg_sleep(2)")
                assert database_unavailable(raised.value)
        reads = services.read_engine
        assert reads.sync_engine.pool.size() == 3  # type: ignore[attr-defined]
        async with reads.connect() as conn:
            assert (await conn.exec_driver_sql("SHOW statement_timeout")).scalar() == "250ms"
            with pytest.raises(sa.exc.DBAPIError) as raised_async:
                await conn.exec_driver_sql("SELECT pg_sleep(2)")
            assert database_unavailable(raised_async.value)
    finally:
        await services.close()
