"""A frontend dev server on another port works in dev out of the box: pages on
localhost / 127.0.0.1 / [::1] (any port) may call over HTTP (CORS) and open WebSockets.
Prod keeps the explicit allow-lists. A preflight always gets a proper answer: CORS
headers when allowed, a 403 that says what to set otherwise, never a 405."""

from __future__ import annotations

import json

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Origin

from tests.e2e.client import TIMEOUT, TRANSPORT_WS

from .support import EVIL_ORIGIN, Server

PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "content-type,authorization,shopfront-consistency",
}
DEV_SERVERS = ("http://localhost:5173", "http://127.0.0.1:3000", "http://[::1]:8080")
QUERY = {"query": "{ products(first: 1) { edges { node { sku } } } }"}


async def _preflight(server: Server, origin: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=TIMEOUT, trust_env=False) as h:
        return await h.options("/graphql", headers={"Origin": origin, **PREFLIGHT})


async def _ws_opens(server: Server, origin: str) -> bool:
    try:
        async with connect(
            server.ws_url,
            subprotocols=[TRANSPORT_WS],
            proxy=None,
            open_timeout=TIMEOUT,
            origin=Origin(origin),
        ) as ws:
            await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
            return bool(json.loads(await ws.recv(decode=True))["type"] == "connection_ack")
    except InvalidStatus as refused:
        assert refused.response.status_code == 403
        return False


@pytest.mark.parametrize("origin", DEV_SERVERS)
async def test_dev_allows_a_frontend_dev_server_on_loopback(
    dev_server: Server, origin: str
) -> None:
    response = await _preflight(dev_server, origin)
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == origin
    allowed = response.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed and "shopfront-consistency" in allowed
    async with httpx.AsyncClient(base_url=dev_server.base_url, trust_env=False) as http:
        answer = await http.post("/graphql", json=QUERY, headers={"Origin": origin})
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == origin
    assert await _ws_opens(dev_server, origin)


async def test_a_refused_preflight_is_a_403_that_says_what_to_set(dev_server: Server) -> None:
    for origin in (EVIL_ORIGIN, "http://localhost.evil.example:5173", "null"):
        response = await _preflight(dev_server, origin)
        assert response.status_code == 403, (origin, response.status_code, response.text)
        assert "access-control-allow-origin" not in response.headers
        error = response.json()["errors"][0]
        assert error["extensions"]["code"] == "CORS_NOT_ALLOWED"
        assert "SHOPFRONT_CORS_ORIGINS" in error["message"]
        assert not await _ws_opens(dev_server, origin)


async def test_a_plain_options_request_is_answered_not_405(dev_server: Server) -> None:
    async with httpx.AsyncClient(base_url=dev_server.base_url, trust_env=False) as http:
        response = await http.options("/graphql")
    assert response.status_code == 204
    assert "POST" in response.headers["allow"]


@pytest.mark.parametrize("origin", DEV_SERVERS[:2])
async def test_prod_keeps_the_explicit_lists(prod_server: Server, origin: str) -> None:
    response = await _preflight(prod_server, origin)
    assert response.status_code == 403
    assert "access-control-allow-origin" not in response.headers
    assert not await _ws_opens(prod_server, origin)
