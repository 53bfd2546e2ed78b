"""Abuse limits, on a server with small ones: 2 requests a second per identity (burst 3),
2 WebSockets and 2 live subscriptions per identity, 1 s to send connection_init, and
sockets with nothing live closed after 2 s; and on ``slow_refill_server`` (one request
per 1,000 s after the burst), a spent budget that must stay spent."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from api.graphql.ids import to_global_id
from tests.e2e.client import (
    LEGACY_WS,
    MY_ORDERS,
    ORDER_STATUS,
    TIMEOUT,
    TRANSPORT_WS,
    Json,
    TransportWsClient,
    bearer,
    error_codes,
)
from tests.e2e.client import transport_ws as _transport_ws

from .support import Server, hs256

pytestmark = pytest.mark.timeout(150)

RATE, BURST = 2.0, 3
INIT_TIMEOUT, IDLE_TIMEOUT = 1.0, 2.0
WATCHDOG_PERIOD = min(IDLE_TIMEOUT / 4, 5.0)
MARGIN = 2.0  # for a loaded machine
QUERY = {"query": "{ myOrders(first: 1) { edges { cursor } } }"}
NO_SUCH_ORDER = to_global_id("Order", "no-such-order")


# -- request rate ----------------------------------------------------------------------------


@pytest.fixture
async def http(abuse_server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=abuse_server.base_url, timeout=TIMEOUT, trust_env=False
    ) as client:
        yield client


def retry_after(response: httpx.Response) -> int:
    """A 429 as it should be: RATE_LIMITED, no data, and whole seconds to wait (>= 1)."""
    assert response.status_code == 429, response.text
    body: Json = response.json()
    assert "data" not in body, body
    assert error_codes(body) == ["RATE_LIMITED"], body
    value = response.headers["retry-after"]
    assert value.isdigit() and int(value) >= 1, value
    return int(value)


async def burst(http: httpx.AsyncClient, headers: list[dict[str, str]]) -> list[httpx.Response]:
    """All at once, so that the bucket hardly refills meanwhile."""
    return list(
        await asyncio.gather(*(http.post("/graphql", json=QUERY, headers=h) for h in headers))
    )


async def test_the_request_rate_is_limited_per_identity(http: httpx.AsyncClient) -> None:
    alice, bob = bearer(hs256("rate-alice")), bearer(hs256("rate-bob"))
    started = time.monotonic()
    responses = await burst(http, [alice] * (BURST + 3))
    elapsed = time.monotonic() - started
    served = [r for r in responses if r.status_code == 200]
    limited = [r for r in responses if r.status_code != 200]
    # the burst, plus whatever trickled in at the rate meanwhile
    assert BURST <= len(served) <= BURST + int(elapsed * RATE), (len(served), elapsed)
    assert limited, [r.status_code for r in responses]
    wait = max(retry_after(r) for r in limited)

    # Bob is not held up by Alice.
    assert (await http.post("/graphql", json=QUERY, headers=bob)).status_code == 200

    # After waiting as told, Alice is served again.
    await asyncio.sleep(wait)
    response = await http.post("/graphql", json=QUERY, headers=alice)
    assert response.status_code == 200, response.text
    assert "errors" not in response.json()


@pytest.fixture
async def slow_http(slow_refill_server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=slow_refill_server.base_url, timeout=TIMEOUT, trust_env=False
    ) as client:
        yield client


async def test_a_spent_budget_stays_spent(slow_http: httpx.AsyncClient) -> None:
    """On a server that refills one request per 1,000 s, however long the pauses of a
    loaded machine: exactly the burst is served, then the identity stays refused while
    another is served."""
    alice, bob = bearer(hs256("slow-alice")), bearer(hs256("slow-bob"))
    responses = await burst(slow_http, [alice] * (BURST + 2))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * BURST + [429] * 2, statuses
    for response in responses:
        if response.status_code == 429:
            assert retry_after(response) > 60

    assert (await slow_http.post("/graphql", json=QUERY, headers=bob)).status_code == 200
    # One more from Alice, after Bob: still refused.
    retry_after(await slow_http.post("/graphql", json=QUERY, headers=alice))


async def test_forged_identities_share_their_senders_budget(
    slow_http: httpx.AsyncClient,
) -> None:
    """Tokens that do not verify name nobody: minting new ones buys no new budget; they
    count against the client's address (as anonymous requests do)."""
    forged = [
        bearer(hs256(f"forged-{i}", "staff", secret="guessed-secret-" + "q" * 40))
        for i in range(BURST + 3)
    ]
    responses = await burst(slow_http, forged)
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {401, 429}, statuses
    assert 429 in statuses, statuses
    for response in responses:
        if response.status_code == 429:
            retry_after(response)
    # an anonymous request from the same address shares that budget
    response = await slow_http.post("/graphql", json={"query": "{ __typename }"})
    retry_after(response)


# -- WebSocket caps ----------------------------------------------------------------------------


async def open_socket(server: Server, protocol: Subprotocol = TRANSPORT_WS) -> ClientConnection:
    return await connect(
        server.ws_url,
        subprotocols=[protocol],
        proxy=None,
        open_timeout=TIMEOUT,
        close_timeout=2,
    )


async def closed_with(ws: ClientConnection, within: float) -> tuple[int, str, float]:
    """Wait for the server to close ``ws`` (ignoring pings and keep-alives); returns
    (close code, close reason, seconds waited)."""
    started = time.monotonic()
    try:
        while True:
            left = within - (time.monotonic() - started)
            message = json.loads(await asyncio.wait_for(ws.recv(), max(left, 0)))
            if message.get("type") == "ping":
                await ws.send(json.dumps({"type": "pong"}))
            elif message.get("type") not in ("pong", "ka"):
                pytest.fail(f"unexpected message before the close: {message}")
    except TimeoutError:
        pytest.fail(f"the server did not close the socket within {within} s")
    except ConnectionClosed as closed:
        assert closed.rcvd is not None, "closed without a close frame"
        return closed.rcvd.code, closed.rcvd.reason, time.monotonic() - started


async def live(client: TransportWsClient) -> str:
    """Subscribe to myOrders; returns its id once it is live. The barrier: an orderStatus
    subscription started after it on the same connection, answered only after a database
    read (NOT_FOUND, for a missing order)."""
    op_id = await client.subscribe(MY_ORDERS)
    barrier = await client.subscribe(ORDER_STATUS, {"id": NO_SUCH_ORDER})
    assert error_codes({"errors": await client.errors_of(barrier)}) == ["NOT_FOUND"]
    return op_id


async def subscription_error(client: TransportWsClient, query: str, variables: Json) -> str:
    """The code of the error the subscription gets. WebSocket operations count against the
    request rate limit (2 a second here): one refused with RATE_LIMITED is sent again after
    the seconds it was told to wait, as a well-behaved client does."""
    for _ in range(10):
        op_id = await client.subscribe(query, variables)
        errors = await client.errors_of(op_id)
        [code] = error_codes({"errors": errors})
        if code != "RATE_LIMITED":
            return code
        await asyncio.sleep(errors[0]["extensions"]["retryAfter"])
    pytest.fail("still rate limited after 10 tries")


@pytest.fixture
async def sockets() -> AsyncIterator[AsyncExitStack]:
    async with AsyncExitStack() as stack:
        yield stack


async def test_a_third_websocket_per_identity_is_refused(
    abuse_server: Server, sockets: AsyncExitStack
) -> None:
    token = hs256("ws-cap-carol")
    first = await sockets.enter_async_context(_transport_ws(abuse_server.ws_url, token))
    second = await sockets.enter_async_context(_transport_ws(abuse_server.ws_url, token))
    for client in (first, second):  # something live, so the idle timeout leaves them be
        await client.subscribe(MY_ORDERS)

    third = await open_socket(abuse_server)
    await third.send(json.dumps({"type": "connection_init", "payload": bearer(token)}))
    code, _, _ = await closed_with(third, TIMEOUT)
    assert code == 4403, code
    # Someone else still gets in.
    async with _transport_ws(abuse_server.ws_url, hs256("ws-cap-dave")):
        pass

    # Once one of the two is closed, the slot is free again (soon: the server has to
    # notice the close first).
    await first.ws.close()
    deadline = time.monotonic() + 5
    while True:
        ws = await open_socket(abuse_server)
        await ws.send(json.dumps({"type": "connection_init", "payload": bearer(token)}))
        try:
            reply = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
            assert reply["type"] == "connection_ack", reply
            await ws.close()
            break
        except ConnectionClosed:
            assert time.monotonic() < deadline, "the closed socket's slot was never freed"
            await asyncio.sleep(0.2)


async def test_a_third_live_subscription_per_identity_is_refused(
    abuse_server: Server, sockets: AsyncExitStack
) -> None:
    token = hs256("sub-cap-erin")
    one = await sockets.enter_async_context(_transport_ws(abuse_server.ws_url, token))
    two = await sockets.enter_async_context(_transport_ws(abuse_server.ws_url, token))
    first = await live(one)
    await two.subscribe(MY_ORDERS)  # the second, on another connection

    # A third, on either connection, is refused -- once the second is live, which the
    # first refusal proves (until then the barrier-like orderStatus answers NOT_FOUND).
    deadline = time.monotonic() + 5
    while (code := await subscription_error(two, ORDER_STATUS, {"id": NO_SUCH_ORDER})) != (
        "TOO_MANY_SUBSCRIPTIONS"
    ):
        assert code == "NOT_FOUND", code
        assert time.monotonic() < deadline, "a third subscription was never refused"
        await asyncio.sleep(0.1)
    assert await subscription_error(one, MY_ORDERS, {}) == "TOO_MANY_SUBSCRIPTIONS"
    # Someone else may subscribe.
    async with _transport_ws(abuse_server.ws_url, hs256("sub-cap-frank")) as other:
        await live(other)

    # Completing one frees its slot.
    await one.complete(first)
    deadline = time.monotonic() + 5
    while (code := await subscription_error(one, ORDER_STATUS, {"id": NO_SUCH_ORDER})) != (
        "NOT_FOUND"
    ):
        assert code == "TOO_MANY_SUBSCRIPTIONS", code
        assert time.monotonic() < deadline, "a completed subscription's slot was never freed"
        await asyncio.sleep(0.1)


# -- WebSocket timeouts ------------------------------------------------------------------------


async def test_a_socket_without_connection_init_is_closed(abuse_server: Server) -> None:
    ws = await open_socket(abuse_server)
    code, reason, waited = await closed_with(ws, INIT_TIMEOUT + MARGIN + 2)
    assert code == 4408, code
    # not merely idle (that would be after IDLE_TIMEOUT, "Idle for too long")
    assert "init" in reason.lower(), reason
    assert INIT_TIMEOUT - 0.2 <= waited <= INIT_TIMEOUT + MARGIN, waited


async def test_a_legacy_socket_without_connection_init_is_closed(abuse_server: Server) -> None:
    """Strawberry's legacy protocol handler has no init timeout: the idle timeout covers it."""
    ws = await open_socket(abuse_server, LEGACY_WS)
    code, _, waited = await closed_with(ws, IDLE_TIMEOUT + WATCHDOG_PERIOD + MARGIN + 2)
    assert code == 4408, code
    assert waited <= IDLE_TIMEOUT + WATCHDOG_PERIOD + MARGIN, waited


async def test_an_idle_socket_is_closed_but_a_live_one_is_not(abuse_server: Server) -> None:
    async with (
        _transport_ws(abuse_server.ws_url, hs256("idle-grace")) as idle,
        _transport_ws(abuse_server.ws_url, hs256("live-heidi")) as busy,
    ):
        started = time.monotonic()
        subscription = await live(busy)

        code, _, _ = await closed_with(idle.ws, IDLE_TIMEOUT + WATCHDOG_PERIOD + MARGIN + 2)
        waited = time.monotonic() - started
        assert code == 4408, code
        assert IDLE_TIMEOUT - 0.5 <= waited <= IDLE_TIMEOUT + WATCHDOG_PERIOD + MARGIN, waited

        # Past the idle timeout and another watchdog round: the live one is still open.
        await asyncio.sleep(max(0.0, IDLE_TIMEOUT + 2 * WATCHDOG_PERIOD - waited) + 0.5)
        await asyncio.wait_for(await busy.ws.ping(), TIMEOUT)
        # ...and still serves operations (a barrier answered after a database read).
        barrier = await busy.subscribe(ORDER_STATUS, {"id": NO_SUCH_ORDER})
        assert error_codes({"errors": await busy.errors_of(barrier)}) == ["NOT_FOUND"]

        # Once its subscription is over, it idles out too.
        await busy.complete(subscription)
        code, _, waited = await closed_with(busy.ws, IDLE_TIMEOUT + WATCHDOG_PERIOD + MARGIN + 2)
        assert code == 4408, code
        assert IDLE_TIMEOUT - 0.5 <= waited <= IDLE_TIMEOUT + WATCHDOG_PERIOD + MARGIN, waited
