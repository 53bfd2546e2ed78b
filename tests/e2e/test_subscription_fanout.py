"""One change, many subscribers, over real WebSockets: every live subscription of a
broadcast gets each change once and in order, whatever its protocol, document or
variables; subscriptions with the same document get the same message; a stopped one gets
nothing more while the others go on. Live changes take the express lane (sent from the
broker's publish, api/ws/pubsub.py), which /metrics counts; without compression their
frames are made once per broadcast (api/ws/frames.py), with it per connection."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from pathlib import Path

from api.auth import make_token
from tests.conftest import TEST_SECRET, fresh_server

from .client import (
    MY_ORDERS,
    ORDER_STATUS,
    Api,
    Json,
    LiveAppLike,
    api_client,
    follow_my_orders,
    legacy_ws,
    transport_ws,
)
from .test_order_lifecycle import _new_customer_with_order

SMALL_MY_ORDERS = "subscription { myOrders { event version order { id status } } }"
TRANSPORT_CONNECTIONS = 4
LEGACY_CONNECTIONS = 2


async def handed(api: Api) -> dict[str, float]:
    text = (await api.request("GET", "/metrics")).text
    return {
        lane: float(value)
        for lane, value in re.findall(
            r'^shopfront_subscription_changes_total\{lane="(\w+)"\} (\S+)$', text, re.M
        )
    }


async def shared_frames(api: Api) -> float:
    text = (await api.request("GET", "/metrics")).text
    found = re.search(r"^shopfront_websocket_shared_frames_total (\S+)$", text, re.M)
    assert found, "no shopfront_websocket_shared_frames_total in /metrics"
    return float(found.group(1))


async def test_a_broadcast_reaches_every_subscription_once_and_in_order(
    api: Api, live_app: LiveAppLike
) -> None:
    staff = live_app.staff_token
    token, product, order = await _new_customer_with_order(api, staff)
    order_id = order["id"]
    async with contextlib.AsyncExitStack() as stack:
        # (client, operation id, field, document) for every subscription
        subscriptions: list[tuple[object, str, str, str]] = []
        transports = [
            await stack.enter_async_context(transport_ws(live_app.ws_url, token))
            for _ in range(TRANSPORT_CONNECTIONS)
        ]
        for ws in transports:
            subscriptions.append((ws, await follow_my_orders(ws, order_id), "myOrders", "full"))
            small = await ws.subscribe(SMALL_MY_ORDERS)
            status = await ws.subscribe(ORDER_STATUS, {"id": order_id})
            assert (await ws.next_data(status))["orderStatus"]["event"] == "Snapshot"
            subscriptions.append((ws, small, "myOrders", "small"))
            subscriptions.append((ws, status, "orderStatus", "full"))
        legacies = [
            await stack.enter_async_context(legacy_ws(live_app.ws_url, token))
            for _ in range(LEGACY_CONNECTIONS)
        ]
        for legacy in legacies:
            mine = await legacy.start(MY_ORDERS)
            status = await legacy.start(ORDER_STATUS, {"id": order_id})
            assert (await legacy.next_data(status))["orderStatus"]["event"] == "Snapshot"
            subscriptions.append((legacy, mine, "myOrders", "full"))
            subscriptions.append((legacy, status, "orderStatus", "full"))

        before, frames_before = await handed(api), await shared_frames(api)
        assert (await api.pay(token, order_id))["order"]["status"] == "PAID"
        assert (await api.ship(staff, order_id, tracking="FAN-1"))["order"]["version"] == 3
        second = await api.place_order(token, [(product["sku"], 1)])

        expected = {
            "myOrders": [("OrderPaid", 2), ("OrderShipped", 3), ("OrderPlaced", 1)],
            "orderStatus": [("OrderPaid", 2), ("OrderShipped", 3)],
        }
        seen: dict[tuple[str, str], list[Json]] = {}
        for client, op_id, field, document in subscriptions:
            events = [
                (await client.next_data(op_id))[field]  # type: ignore[attr-defined]
                for _ in expected[field]
            ]
            assert [(e["event"], e["version"]) for e in events] == expected[field]
            assert [e["order"]["id"] for e in events][-1] == (
                second["id"] if field == "myOrders" else order_id
            )
            # Same document, same caller: the same message, whichever protocol carried it.
            assert seen.setdefault((field, document), events) == events
        assert seen[("myOrders", "small")][0] == {
            "event": "OrderPaid",
            "version": 2,
            "order": {"id": order_id, "status": "PAID"},
        }
        assert seen[("myOrders", "full")][1]["order"]["shipment"]["trackingNumber"] == "FAN-1"
        after = await handed(api)
        lanes = {lane: after[lane] - before.get(lane, 0.0) for lane in after}
        deliveries = sum(len(expected[field]) for _, _, field, _ in subscriptions)
        # Other tests' subscribers share this server, so at least ours were handed out...
        assert lanes["express"] + lanes["queued"] >= deliveries
        # ...and subscribers waiting at human pace take the express lane.
        assert lanes["express"] >= deliveries / 2, lanes
        # Without compression, express messages are frames made once per broadcast.
        assert await shared_frames(api) - frames_before >= deliveries / 2, lanes

        # A stopped subscription gets nothing more; the others on its connection go on.
        ws = transports[0]
        _, small_op, _, _ = subscriptions[1]
        _, status_op, _, _ = subscriptions[2]
        full_op = subscriptions[0][1]
        legacy_mine, legacy_status = subscriptions[-2][1], subscriptions[-1][1]
        assert subscriptions[-2][0] is subscriptions[-1][0] is legacies[-1]
        await ws.complete(small_op)
        await legacies[-1].stop(legacy_mine)
        assert (await legacies[-1].receive_for(legacy_mine))["type"] == "complete"
        assert (await api.deliver(staff, order_id))["order"]["status"] == "DELIVERED"
        # The very next messages on each connection: the delivery, once, for each live
        # operation, and nothing for the stopped ones.
        got = await ws.very_next(status_op, full_op)
        event = got[status_op]["payload"]["data"]["orderStatus"]
        assert (event["event"], event["version"]) == ("OrderDelivered", 4)
        assert got[full_op]["payload"]["data"]["myOrders"]["event"] == "OrderDelivered"
        got = await legacies[-1].very_next(legacy_status)
        event = got[legacy_status]["payload"]["data"]["orderStatus"]
        assert (event["event"], event["version"]) == ("OrderDelivered", 4)
        # A later change (the second order's payment) after the delivery: the stopped
        # operations still hear nothing, the live myOrders hears it next.
        assert (await api.pay(token, second["id"]))["order"]["status"] == "PAID"
        got = await ws.very_next(full_op)
        assert got[full_op]["payload"]["data"]["myOrders"]["order"]["id"] == second["id"]


async def test_with_compression_each_connection_frames_its_own_messages(
    template_dir: Path, tmp_path: Path
) -> None:
    """permessage-deflate negotiated (the client offers it, as browsers do): a shared frame
    would be wrong for this connection, so its messages go through the server's own send,
    compressed, and arrive whole."""
    with fresh_server(template_dir, tmp_path, SHOPFRONT_WEBSOCKET_COMPRESSION="true") as (port, _):
        staff = make_token(TEST_SECRET, "staff-test", "staff", dt.timedelta(hours=1))
        async with api_client(f"http://127.0.0.1:{port}") as api:
            token, _, order = await _new_customer_with_order(api, staff)
            async with transport_ws(f"ws://127.0.0.1:{port}/graphql", token) as ws:
                assert ws.ws.protocol.extensions, "permessage-deflate was not negotiated"
                mine = await follow_my_orders(ws, order["id"])
                before, frames_before = await handed(api), await shared_frames(api)
                assert (await api.pay(token, order["id"]))["order"]["status"] == "PAID"
                event = (await ws.next_data(mine))["myOrders"]
                assert (event["event"], event["version"]) == ("OrderPaid", 2)
                assert (event["order"]["id"], event["order"]["status"]) == (order["id"], "PAID")
                assert (await handed(api))["express"] > before.get("express", 0.0)
                assert await shared_frames(api) == frames_before
