"""Two API processes on the same databases, without Redis: one projects (inline, the
only one able to lead), the other does not (SHOPFRONT_PROJECTORS=off). A subscriber on
either gets every change, whichever process the mutation went through: the process that
did not apply it reads it back from the order_changes table."""

from __future__ import annotations

import time

from tests.cluster.conftest import Cluster
from tests.e2e.client import ORDER_EVENT_FIELDS, api_client, transport_ws
from tests.reliability.support import staff_token

SUBSCRIPTION = f"subscription($id: ID!) {{ orderStatus(orderId: $id) {{ {ORDER_EVENT_FIELDS} }} }}"


async def test_a_change_made_through_one_process_reaches_subscribers_of_the_other(
    cluster: Cluster,
) -> None:
    following = cluster.api("following", "off")
    leading = cluster.api("leading", "inline")
    staff = staff_token()
    async with api_client(leading) as lead, api_client(following) as follow:
        product = await lead.add_product(staff, stock=5)
        token, _ = await lead.register_customer("Cross Process")
        order = await lead.place_order(token, [(product["sku"], 1)])
        ws_following = following.replace("http", "ws") + "/graphql"
        ws_leading = leading.replace("http", "ws") + "/graphql"
        async with (
            transport_ws(ws_following, token) as on_off,
            transport_ws(ws_leading, token) as on_inline,
        ):
            subscriptions = {}
            for name, client in (("off", on_off), ("inline", on_inline)):
                op = await client.subscribe(SUBSCRIPTION, {"id": order["id"]})
                first = (await client.next_data(op))["orderStatus"]
                assert (first["event"], first["version"]) == ("Snapshot", 1), first
                subscriptions[name] = (client, op)

            # Through the leading process: its own subscribers at once, the other's by tail.
            sent = time.monotonic()
            paid = await lead.pay(token, order["id"])
            assert paid["userErrors"] == [] and paid["order"]["status"] == "PAID", paid
            client, op = subscriptions["off"]
            change = (await client.next_data(op, timeout=10))["orderStatus"]
            delay = time.monotonic() - sent
            print(f"OrderPaid via the leader reached the other process in {delay * 1000:.0f} ms")
            assert (change["event"], change["version"]) == ("OrderPaid", 2), change
            client, op = subscriptions["inline"]
            change = (await client.next_data(op))["orderStatus"]
            assert (change["event"], change["version"]) == ("OrderPaid", 2), change

            # Through the process that does not project: its mutation waits for the
            # projector elsewhere (read-your-writes), and both processes deliver it.
            shipped = await follow.ship(staff, order["id"])
            assert shipped["userErrors"] == [], shipped
            assert shipped["order"]["status"] == "SHIPPED", shipped
            for client, op in subscriptions.values():
                change = (await client.next_data(op, timeout=10))["orderStatus"]
                assert (change["event"], change["version"]) == ("OrderShipped", 3), change
                assert change["order"]["status"] == "SHIPPED"
            # Delivered once: the next change (the marker) is the very next message.
            delivered = await follow.deliver(staff, order["id"])
            assert delivered["userErrors"] == [], delivered
            for client, op in subscriptions.values():
                [message] = (await client.very_next(op, timeout=10)).values()
                change = message["payload"]["data"]["orderStatus"]
                assert (change["event"], change["version"]) == ("OrderDelivered", 4), change
    assert "Traceback" not in cluster.logs()
