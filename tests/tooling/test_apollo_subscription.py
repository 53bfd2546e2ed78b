"""Apollo Client 4 with GraphQLWsLink (graphql-ws 6.4.2, pinned in tests/tooling/apollo)
follows an order as a frontend's order page does: the first message is the order as it
is (Snapshot), then each change, pushed as it commits."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from tests import required_tools
from tests.conftest import LiveApp
from tests.e2e.client import api_client

APOLLO = Path(__file__).resolve().parent / "apollo"
TIMEOUT = 20.0


async def _line(process: asyncio.subprocess.Process) -> dict[str, object]:
    assert process.stdout is not None and process.stderr is not None
    line = await asyncio.wait_for(process.stdout.readline(), TIMEOUT)
    assert line, f"the Apollo client ended early: {(await process.stderr.read()).decode()}"
    message: dict[str, object] = json.loads(line)
    assert "error" not in message, message
    return message


@pytest.mark.timeout(required_tools.NPM_CI_TIMEOUT + 120)
async def test_apollo_graphql_ws_link_follows_an_order(live_app: LiveApp) -> None:
    node = required_tools.node_modules(APOLLO)
    async with api_client(live_app.base_url) as api:
        placed = await api.place_order(live_app.customer_token, [("MUG-001", 1)])
        order_id = placed["id"]
        ws_url = live_app.base_url.replace("http", "ws") + "/graphql"
        process = await asyncio.create_subprocess_exec(
            node,
            "subscribe.mjs",
            ws_url,
            live_app.customer_token,
            order_id,
            "2",
            cwd=APOLLO,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            snapshot = await _line(process)
            assert snapshot["event"] == "Snapshot"
            paid = await api.pay(live_app.customer_token, order_id)
            assert paid["userErrors"] == []
            change = await _line(process)
            assert await asyncio.wait_for(process.wait(), TIMEOUT) == 0
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    assert snapshot["order"] == {"id": order_id, "status": "PLACED", "__typename": "Order"}
    assert (change["event"], change["version"]) == ("OrderPaid", 2)
    assert change["order"] == {"id": order_id, "status": "PAID", "__typename": "Order"}
