"""The rate limit has no side door: operations over WebSocket count like HTTP requests,
sign-ups do not multiply an address's budget, sign-ups themselves are capped per
address, repeated connection_init takes no extra connection slot, and un-initialised
sockets are capped per address.

Against a server with small limits (``side_door_server``). Each test sends from its own
loopback address (127.0.0.N), so the per-address budgets of one test are not spent by
another."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Subprotocol

from tests.e2e.client import (
    LEGACY_WS,
    TIMEOUT,
    TRANSPORT_WS,
    Json,
    TransportWsClient,
    bearer,
    error_codes,
)

from .support import Server, hs256

pytestmark = pytest.mark.timeout(120)

RATE, BURST = 1.0, 5  # per identity
ADDRESS_RATE, ADDRESS_BURST = 1.0, 8
SIGN_UPS = 3  # per address, then 1 a minute
SOCKETS_PER_IDENTITY = 2
PENDING_PER_ADDRESS = 3
QUERY = "{ __typename }"
FOLLOW_ORDER = 'subscription { orderStatus(orderId: "T3JkZXI6bm9uZQ==") { event } }'
REGISTER = (
    'mutation($email: String!) { registerCustomer(input: {email: $email, name: "Side Door"})'
    " { token userErrors { code message } } }"
)


def http_from(server: Server, address: str) -> httpx.AsyncClient:
    transport = httpx.AsyncHTTPTransport(local_address=address)
    return httpx.AsyncClient(
        base_url=server.base_url, transport=transport, timeout=TIMEOUT, trust_env=False
    )


@asynccontextmanager
async def socket_from(
    server: Server, address: str, protocol: Subprotocol = TRANSPORT_WS
) -> AsyncIterator[ClientConnection]:
    async with connect(
        server.ws_url,
        subprotocols=[protocol],
        proxy=None,
        open_timeout=TIMEOUT,
        close_timeout=2,
        local_addr=(address, 0),
    ) as ws:
        yield ws


@asynccontextmanager
async def transport_from(
    server: Server, address: str, token: str | None = None
) -> AsyncIterator[TransportWsClient]:
    async with socket_from(server, address) as ws:
        client = TransportWsClient(ws)
        ack = await client.init(token)
        assert ack["type"] == "connection_ack", ack
        yield client


async def register(http: httpx.AsyncClient, email: str) -> Json:
    response = await http.post("/graphql", json={"query": REGISTER, "variables": {"email": email}})
    assert response.status_code == 200, response.text
    body: Json = response.json()
    return body


def rate_limited(errors: list[Json]) -> None:
    assert error_codes({"errors": errors}) == ["RATE_LIMITED"], errors
    assert errors[0]["extensions"]["retryAfter"] >= 1, errors


# -- every WebSocket operation counts ----------------------------------------------------------


async def test_queries_over_one_anonymous_websocket_are_rate_limited(
    side_door_server: Server,
) -> None:
    async with transport_from(side_door_server, "127.0.0.11") as client:
        started = time.monotonic()
        ids = [await client.subscribe(QUERY) for _ in range(BURST + 5)]
        served, refused = 0, []
        for op_id in ids:
            message = await client.receive_for(op_id)
            if message["type"] == "error":
                refused.append(message["payload"])
                continue
            assert message["type"] == "next", message
            assert message["payload"]["data"] == {"__typename": "Query"}, message
            assert (await client.receive_for(op_id))["type"] == "complete"
            served += 1
        elapsed = time.monotonic() - started
        assert BURST <= served <= BURST + int(elapsed * RATE) + 1, (served, elapsed)
        assert refused, "no operation was refused"
        for errors in refused:
            rate_limited(errors)

        # The socket stays open, and serves again once a token is back.
        await asyncio.wait_for(await client.ws.ping(), TIMEOUT)
        deadline = time.monotonic() + 10
        while True:
            op_id = await client.subscribe(QUERY)
            message = await client.receive_for(op_id)
            if message["type"] == "next":
                break
            rate_limited(message["payload"])
            assert time.monotonic() < deadline, "never served again"
            await asyncio.sleep(message["payload"][0]["extensions"]["retryAfter"])


async def test_operations_over_the_legacy_protocol_are_rate_limited(
    side_door_server: Server,
) -> None:
    async with socket_from(side_door_server, "127.0.0.12", LEGACY_WS) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))["type"] == "connection_ack"
        # The legacy protocol carries subscriptions only: anonymous ones are answered
        # with UNAUTHENTICATED (after their operation ran), or refused up front.
        count = BURST + 5
        for i in range(count):
            start = {"id": str(i), "type": "start", "payload": {"query": FOLLOW_ORDER}}
            await ws.send(json.dumps(start))
        codes: dict[str, str] = {}
        while len(codes) < count:
            message = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
            if message["type"] == "error":
                codes[message["id"]] = error_codes({"errors": [message["payload"]]})[0]
                if codes[message["id"]] == "RATE_LIMITED":
                    rate_limited([message["payload"]])
            elif message["type"] == "data":
                codes[message["id"]] = error_codes(message["payload"])[0]
    ran = sum(code == "UNAUTHENTICATED" for code in codes.values())
    assert ran >= BURST, codes
    assert "RATE_LIMITED" in codes.values(), codes
    assert set(codes.values()) == {"UNAUTHENTICATED", "RATE_LIMITED"}, codes


async def test_the_http_and_websocket_budgets_are_one(side_door_server: Server) -> None:
    """A token's bucket spent over HTTP is empty over WebSocket too."""
    token = hs256("side-door-shared")
    async with http_from(side_door_server, "127.0.0.20") as http:
        for _ in range(BURST):
            response = await http.post("/graphql", json={"query": QUERY}, headers=bearer(token))
            if response.status_code == 429:
                break
    async with transport_from(side_door_server, "127.0.0.21", token) as client:
        op_id = await client.subscribe(QUERY)
        message = await client.receive_for(op_id)
        assert message["type"] == "error", message
        rate_limited(message["payload"])


# -- sign-ups ------------------------------------------------------------------------------------


async def test_sign_ups_do_not_multiply_an_addresss_budget(side_door_server: Server) -> None:
    address = "127.0.0.13"
    async with http_from(side_door_server, address) as http:
        started = time.monotonic()
        tokens = []
        for i in range(SIGN_UPS):
            body = await register(http, f"side-door-{i}@example.com")
            tokens.append(body["data"]["registerCustomer"]["token"])
        # Each new identity has a full bucket of its own; the address has what is left.
        responses = await asyncio.gather(
            *(
                http.post("/graphql", json={"query": QUERY}, headers=bearer(token))
                for token in tokens
                for _ in range(BURST)
            )
        )
        elapsed = time.monotonic() - started
    served = sum(r.status_code == 200 for r in responses)
    limit = ADDRESS_BURST - SIGN_UPS + int(elapsed * ADDRESS_RATE) + 1
    assert served <= limit, (served, limit, elapsed)
    limited = [r for r in responses if r.status_code != 200]
    assert limited, [r.status_code for r in responses]
    for response in limited:
        assert response.status_code == 429, response.text
        assert error_codes(response.json()) == ["RATE_LIMITED"], response.text

    # Another address is not held up.
    async with http_from(side_door_server, "127.0.0.14") as other:
        assert (await other.post("/graphql", json={"query": QUERY})).status_code == 200


async def test_register_customer_is_limited_per_address(side_door_server: Server) -> None:
    address = "127.0.0.15"
    async with http_from(side_door_server, address) as http:
        for i in range(SIGN_UPS):
            body = await register(http, f"sign-up-{i}@example.com")
            assert body["data"]["registerCustomer"]["token"], body
        body = await register(http, "one-too-many@example.com")
        assert body["data"] is None, body
        rate_limited(body["errors"])

    # Over a WebSocket from the same address: refused as well.
    async with transport_from(side_door_server, address) as client:
        op_id = await client.subscribe(REGISTER, {"email": "over-ws@example.com"})
        rate_limited(await client.errors_of(op_id))

    # Someone at another address may still sign up.
    async with http_from(side_door_server, "127.0.0.16") as other:
        body = await register(other, "elsewhere@example.com")
        assert body["data"]["registerCustomer"]["token"], body


# -- connection slots ------------------------------------------------------------------------------


async def closed(ws: ClientConnection) -> tuple[int, str, list[Json]]:
    """Messages until the server closes ``ws``: (close code, reason, messages)."""
    messages: list[Json] = []
    try:
        while True:
            messages.append(json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT)))
    except ConnectionClosed as error:
        assert error.rcvd is not None, "closed without a close frame"
        return error.rcvd.code, error.rcvd.reason, messages


async def test_repeated_legacy_connection_init_takes_no_extra_slot(
    side_door_server: Server,
) -> None:
    address, token = "127.0.0.19", hs256("side-door-ivan")
    async with socket_from(side_door_server, address, LEGACY_WS) as ws:
        for _ in range(10):
            with_token = {"type": "connection_init", "payload": bearer(token)}
            await ws.send(json.dumps(with_token))
        code, reason, messages = await closed(ws)
    assert [m["type"] for m in messages] == ["connection_ack", "connection_error"], messages
    assert (code, reason) == (4429, "Too many initialisation requests")

    # graphql-transport-ws: the same (Strawberry's own rule).
    async with socket_from(side_door_server, address) as ws:
        for _ in range(3):
            await ws.send(json.dumps({"type": "connection_init", "payload": bearer(token)}))
        code, _, messages = await closed(ws)
    assert code == 4429, (code, messages)

    # Ivan can still hold as many sockets as anyone, once the server has seen the closes.
    deadline = time.monotonic() + 5
    while True:
        try:
            async with AsyncExitStack() as stack:
                for _ in range(SOCKETS_PER_IDENTITY):
                    await stack.enter_async_context(
                        transport_from(side_door_server, address, token)
                    )
            break
        except (AssertionError, ConnectionClosed):
            assert time.monotonic() < deadline, "a connection slot leaked"
            await asyncio.sleep(0.1)


async def test_sockets_without_connection_init_are_capped_per_address(
    side_door_server: Server,
) -> None:
    address = "127.0.0.17"
    async with AsyncExitStack() as stack:
        pending = [
            await stack.enter_async_context(socket_from(side_door_server, address))
            for _ in range(PENDING_PER_ADDRESS)
        ]
        with pytest.raises(InvalidStatus) as refused:
            async with socket_from(side_door_server, address):
                pass
        assert refused.value.response.status_code == 403
        # Another address is not affected.
        async with socket_from(side_door_server, "127.0.0.18"):
            pass
        # A socket that sends connection_init no longer counts as pending.
        client = TransportWsClient(pending[0])
        assert (await client.init(None))["type"] == "connection_ack"
        async with socket_from(side_door_server, address):
            pass
