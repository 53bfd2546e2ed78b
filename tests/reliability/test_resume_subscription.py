"""Resumable order subscriptions: a client that lost its connection resubscribes with
``orderStatus(orderId, afterVersion: <last version seen>)`` and gets exactly the changes
it missed, each once, in order, each with the order as it was right after that event
(PAID after OrderPaid, even if the order has been delivered since), then live changes
as usual. ``afterVersion: 0`` replays the whole history from OrderPlaced. Someone else's
order stays NOT_FOUND, resumed or not.

Mechanism under test: the order detail projector keeps the order document after every
event (``order_changes``); the subscription replays those above ``afterVersion`` after
registering for live changes, and drops live ones the replay already covered.
"""

from __future__ import annotations

import time

import httpx
import pytest

from api.graphql.ids import to_global_id
from tests.conftest import LiveApp
from tests.e2e.client import TransportWsClient, transport_ws
from tests.reliability.support import (
    DELIVER,
    PAY,
    SHIP,
    Json,
    add_product,
    mutate,
    place,
    register,
    staff_token,
)

# A global id no order has (the barrier's NOT_FOUND).
NO_SUCH_ORDER = to_global_id("Order", "no-such-order")
RESUMABLE = """subscription($id: ID!, $after: Int) {
  orderStatus(orderId: $id, afterVersion: $after) {
    event version occurredAt
    order { id status version payment { status } shipment { carrier trackingNumber status }
            timeline { status } }
  }
}"""
# What the order looked like right after each version (event, status, payment, shipment).
HISTORY = {
    1: ("OrderPlaced", "PLACED", None, None),
    2: ("OrderPaid", "PAID", "PAID", None),
    3: ("OrderShipped", "SHIPPED", "PAID", "SHIPPED"),
    4: ("OrderDelivered", "DELIVERED", "PAID", "DELIVERED"),
}
STATUSES = ["PLACED", "PAID", "SHIPPED", "DELIVERED"]


async def next_event(client: TransportWsClient, op: str) -> Json:
    data = await client.next_data(op)
    event: Json = data["orderStatus"]
    return event


def check_at_version(event: Json, order_id: str, version: int, tracking: str) -> None:
    """The event of ``version``, carrying the order as it was right after it."""
    name, status, payment, shipment = HISTORY[version]
    assert event["event"] == name, event
    assert event["version"] == version, event
    order = event["order"]
    assert (order["id"], order["status"], order["version"]) == (order_id, status, version), event
    assert (order["payment"] or {}).get("status") == payment, event
    assert (order["shipment"] or {}).get("status") == shipment, event
    if shipment is not None:
        assert order["shipment"]["trackingNumber"] == tracking, event
    assert [t["status"] for t in order["timeline"]] == STATUSES[:version], event


async def expect_versions(
    client: TransportWsClient, op: str, order_id: str, versions: list[int], tracking: str
) -> None:
    for version in versions:
        check_at_version(await next_event(client, op), order_id, version, tracking)


async def expect_marker(
    client: TransportWsClient, op: str, order_id: str, version: int, tracking: str
) -> None:
    """After a later change (the marker) to the order: its event is the very next message
    on the connection, so nothing (a duplicate, a replay, a stray) came before it."""
    message = (await client.very_next(op))[op]
    check_at_version(message["payload"]["data"]["orderStatus"], order_id, version, tracking)


@pytest.mark.timeout(60)
async def test_resubscribing_after_a_version_replays_exactly_what_was_missed(
    live_app: LiveApp,
) -> None:
    started = time.monotonic()
    staff = staff_token("staff-resume")
    sku = f"RESUME-{time.time_ns()}"
    async with httpx.AsyncClient(base_url=live_app.base_url, timeout=10, trust_env=False) as http:
        await add_product(http, staff, sku, 2200, 100)
        token, _ = await register(http, "Resume customer")
        first = await place(http, token, {sku: 1})
        second = await place(http, token, {sku: 2})
        a, b = first["id"], second["id"]
        tracking = {a: "TRK-RESUME-A", b: "TRK-RESUME-B"}

        async def pay(order_id: str) -> None:
            await mutate(http, PAY, "payOrder", {"orderId": order_id}, token)

        async def ship(order_id: str) -> None:
            ship_input = {
                "orderId": order_id,
                "carrier": "UPS",
                "trackingNumber": tracking[order_id],
            }
            await mutate(http, SHIP, "shipOrder", ship_input, staff)

        async def deliver(order_id: str) -> None:
            await mutate(http, DELIVER, "deliverOrder", {"orderId": order_id}, staff)

        # Order A: Snapshot at 1, OrderPaid live; the connection drops.
        async with transport_ws(live_app.ws_url, token) as ws:
            op = await ws.subscribe(RESUMABLE, {"id": a})
            snapshot = await next_event(ws, op)
            assert (snapshot["event"], snapshot["version"]) == ("Snapshot", 1), snapshot
            await pay(a)
            check_at_version(await next_event(ws, op), a, 2, tracking[a])
            last_seen = 2
        # Order B: Snapshot at 1; the connection drops before anything else.
        async with transport_ws(live_app.ws_url, token) as ws:
            op = await ws.subscribe(RESUMABLE, {"id": b})
            snapshot = await next_event(ws, op)
            assert (snapshot["event"], snapshot["version"]) == ("Snapshot", 1), snapshot

        # While nobody listens: A ships; B is paid and ships.
        await ship(a)
        await pay(b)
        await ship(b)

        async with transport_ws(live_app.ws_url, token) as ws:
            op_a = await ws.subscribe(RESUMABLE, {"id": a, "after": last_seen})
            op_b = await ws.subscribe(RESUMABLE, {"id": b, "after": 1})
            # Exactly what each missed, no Snapshot, each once, in order; B's OrderPaid
            # shows the order PAID and not shipped, though it has shipped since.
            await expect_versions(ws, op_a, a, [3], tracking[a])
            await expect_versions(ws, op_b, b, [2, 3], tracking[b])
            # Then live changes flow on the same operations, each the very next message
            # (no replayed version repeated before it).
            await deliver(a)
            await expect_marker(ws, op_a, a, 4, tracking[a])
            await deliver(b)
            await expect_marker(ws, op_b, b, 4, tracking[b])

        # afterVersion 0: the whole history from OrderPlaced, each state as it was then;
        # a resume at the current version has nothing to replay. Order C, shipped while
        # nobody listens, is delivered afterwards: the delivery is the very next message
        # of both subscriptions (each on its own connection).
        third = await place(http, token, {sku: 1})
        c = third["id"]
        tracking[c] = "TRK-RESUME-C"
        await pay(c)
        await ship(c)
        async with (
            transport_ws(live_app.ws_url, token) as ws,
            transport_ws(live_app.ws_url, token) as current_ws,
        ):
            op = await ws.subscribe(RESUMABLE, {"id": c, "after": 0})
            await expect_versions(ws, op, c, [1, 2, 3], tracking[c])
            current = await current_ws.subscribe(RESUMABLE, {"id": c, "after": 3})
            # Barrier: the resumed operation is registered once a later operation on
            # the same connection answers (an unknown order: NOT_FOUND after a read).
            barrier = await current_ws.subscribe(RESUMABLE, {"id": NO_SUCH_ORDER})
            assert [e["extensions"]["code"] for e in await current_ws.errors_of(barrier)] == [
                "NOT_FOUND"
            ]
            await deliver(c)
            await expect_marker(ws, op, c, 4, tracking[c])
            await expect_marker(current_ws, current, c, 4, tracking[c])

        # Someone else's order: NOT_FOUND, with or without afterVersion; staff may resume.
        intruder, _ = await register(http, "Resume intruder")
    async with transport_ws(live_app.ws_url, intruder) as ws:
        for after in (1, 0, None):
            op = await ws.subscribe(RESUMABLE, {"id": a, "after": after})
            errors = await ws.errors_of(op)
            codes = [(e.get("extensions") or {}).get("code") for e in errors]
            assert codes == ["NOT_FOUND"], errors
    async with transport_ws(live_app.ws_url, staff) as ws:
        op = await ws.subscribe(RESUMABLE, {"id": b, "after": 2})
        await expect_versions(ws, op, b, [3, 4], tracking[b])
    print(
        f"\nresume subscription: 2 orders, 6 replayed changes; {time.monotonic() - started:.1f} s"
    )
