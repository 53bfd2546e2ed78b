"""``Shopfront-Consistency`` while the read models are genuinely behind.

The app runs in this process (``build_app`` with its lifespan, over ASGI), so the test
holds its projection runner: it stops the runner, commits a command through the command
bus (the events are in the event log, at positions the log's head covers, but no
projector has applied them), and sends a query carrying that position. The query must
wait, not answer from the stale read model and not fail at once: it answers once the
runner is started again, with the write included. If the runner never gets there within
``read_your_writes_timeout``, the answer is ``READ_MODEL_BEHIND`` (503 + Retry-After).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Coroutine
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from api.app import build_app
from api.bootstrap import Services
from api.database import create_sync_engine
from api.http import consistency
from domain import commands as c
from domain import write_tables as w
from domain.bus import CommandBus
from tests.conftest import fresh_settings
from tests.e2e.client import bearer
from tests.reliability.support import staff_token

STAFF = c.Actor("staff-reliability", "staff")
PRODUCT = "query($sku: String!) { product(sku: $sku) { stockAvailable } }"


@contextlib.asynccontextmanager
async def in_process_app(
    template_dir: Path, work: Path, **overrides: object
) -> AsyncIterator[tuple[Services, httpx.AsyncClient]]:
    """The app with its lifespan running, and an HTTP client talking to it over ASGI."""
    settings = fresh_settings(template_dir, work, **overrides)
    app = build_app(settings)
    services: Services = app.state.services
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            yield services, http


async def _committed_while_paused(services: Services, sku: str) -> int:
    """Stop the runner, restock ``sku`` through the command bus, and return the position
    of its event: committed to the log, applied by no projector."""
    head = await services.runner.head_position()
    assert await services.runner.wait_for(head, 10)
    await services.runner.stop()
    result = await services.bus.execute(c.RestockProduct(STAFF, sku, 5))
    assert result.position is not None
    assert services.runner.position < result.position <= await services.runner.head_position()
    return result.position


async def _query(http: httpx.AsyncClient, sku: str, token: str) -> httpx.Response:
    return await http.post(
        "/graphql",
        json={"query": PRODUCT, "variables": {"sku": sku}},
        headers={**bearer(staff_token()), consistency.HEADER: token},
    )


async def _waiting(
    services: Services, request: Coroutine[Any, Any, httpx.Response]
) -> asyncio.Task[httpx.Response]:
    """The request, sent, once it waits in the runner. Bounded: answering before that
    (from the stale read model, or READ_MODEL_BEHIND at once) is the bug these tests are
    for."""
    pending = asyncio.create_task(request)
    deadline = time.monotonic() + 10
    while services.runner.waiting == 0:
        if pending.done():
            response = pending.result()
            raise AssertionError(
                f"answered without waiting: {response.status_code} {response.text[:500]}"
            )
        assert time.monotonic() < deadline, "the request never started waiting"
        await asyncio.sleep(0.005)
    return pending


async def test_a_query_waits_for_a_write_the_read_models_have_not_reached(
    template_dir: Path, tmp_path: Path
) -> None:
    async with in_process_app(template_dir, tmp_path, read_your_writes_timeout=30.0) as (
        services,
        http,
    ):
        await services.bus.execute(c.AddProduct(STAFF, "WAIT-1", "Waiting mug", 900, 10))
        position = await _committed_while_paused(services, "WAIT-1")

        pending = await _waiting(services, _query(http, "WAIT-1", consistency.encode(position)))
        assert not pending.done()

        await services.runner.start()  # the projections catch up; the wait ends
        response = await asyncio.wait_for(pending, 30)

    body: dict[str, Any] = response.json()
    assert response.status_code == 200, body
    assert body["data"]["product"]["stockAvailable"] == 15, "the write is not included"
    assert body["extensions"]["readModel"]["position"] >= position


async def test_a_write_never_reached_in_time_is_read_model_behind(
    template_dir: Path, tmp_path: Path
) -> None:
    async with in_process_app(template_dir, tmp_path, read_your_writes_timeout=0.2) as (
        services,
        http,
    ):
        await services.bus.execute(c.AddProduct(STAFF, "LATE-1", "Late mug", 900, 10))
        position = await _committed_while_paused(services, "LATE-1")

        response = await _query(http, "LATE-1", consistency.encode(position))

        assert services.runner.waiting == 0
        # Still behind: the answer was not a stale read.
        assert services.runner.position < position

    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "1"
    body = response.json()
    assert body["errors"][0]["extensions"]["code"] == "READ_MODEL_BEHIND"
    assert body["errors"][0]["message"] == (
        "The read models have not reached this consistency token within 0.2 s; retry shortly"
    )
    assert "data" not in body


async def test_a_token_from_another_process_write_waits_rather_than_being_refused(
    template_dir: Path, tmp_path: Path
) -> None:
    """Another process committed the write: this process's runner has not heard of its
    position (its known head is behind), but the event log has it, so the token is
    genuine and the query waits for it instead of being refused as ahead of the log."""
    async with in_process_app(template_dir, tmp_path, read_your_writes_timeout=30.0) as (
        services,
        http,
    ):
        await services.bus.execute(c.AddProduct(STAFF, "AWAY-1", "Remote mug", 900, 10))
        head = await services.runner.head_position()
        assert await services.runner.wait_for(head, 10)
        await services.runner.stop()
        # The other process: its own engine and bus, nothing wired to this runner.
        other = CommandBus(create_sync_engine(services.settings.write_database_url, "write"))
        try:
            result = await other.execute(c.RestockProduct(STAFF, "AWAY-1", 5))
            with other.engine.connect() as conn:  # not through the runner: it would learn
                log_head = conn.execute(sa.select(w.event_log_head.c.position)).scalar_one()
        finally:
            other.close()
            other.engine.dispose()
        assert result.position is not None
        assert services.runner.head < result.position == log_head

        query = _query(http, "AWAY-1", consistency.encode(result.position))
        pending = await _waiting(services, query)
        await services.runner.start()
        response = await asyncio.wait_for(pending, 30)

    body: dict[str, Any] = response.json()
    assert response.status_code == 200, body
    assert body["data"]["product"]["stockAvailable"] == 15, "the write is not included"


async def test_a_token_beyond_the_event_log_is_refused_at_once(
    template_dir: Path, tmp_path: Path
) -> None:
    async with in_process_app(template_dir, tmp_path, read_your_writes_timeout=30.0) as (
        services,
        http,
    ):
        await services.bus.execute(c.AddProduct(STAFF, "AHEAD-1", "Mug", 900, 10))
        head = await services.runner.head_position()
        response = await asyncio.wait_for(_query(http, "AHEAD-1", consistency.encode(head + 1)), 10)
        assert services.runner.waiting == 0

    assert response.status_code == 400, response.text
    body = response.json()
    assert body["errors"] == [
        {
            "message": "consistency token is ahead of the event log",
            "extensions": {"code": "BAD_USER_INPUT"},
        }
    ]
    assert "data" not in body


async def test_a_malformed_token_is_a_bad_request_saying_what_was_sent(
    template_dir: Path, tmp_path: Path
) -> None:
    async with in_process_app(template_dir, tmp_path) as (_services, http):
        other = await _query(http, "NONE", "not-a-token")

    assert other.status_code == 400, other.text
    assert other.json()["errors"] == [
        {
            "message": "Not a consistency token: 'not-a-token'",
            "extensions": {"code": "BAD_REQUEST"},
        }
    ]
