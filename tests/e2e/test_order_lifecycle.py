"""An order's whole life, seen through HTTP mutations and queries and through live
subscriptions over both WebSocket protocols."""

from __future__ import annotations

import datetime as dt
from typing import Any

from .client import (
    MY_ORDERS,
    ORDER_FIELDS,
    ORDER_STATUS,
    Api,
    Json,
    LiveAppLike,
    follow_my_orders,
    legacy_ws,
    transport_ws,
    unique,
)

STATUS_FLOW = ["PLACED", "PAID", "SHIPPED", "DELIVERED"]


def parse_time(value: Any) -> dt.datetime:
    assert isinstance(value, str), value
    parsed = dt.datetime.fromisoformat(value)
    assert parsed.tzinfo is not None, f"DateTime without a time zone: {value}"
    return parsed


def assert_event(event: Json, name: str, status: str, version: int, order_id: str) -> None:
    assert event["event"] == name, event
    assert event["version"] == version, event
    assert event["order"]["id"] == order_id
    assert event["order"]["status"] == status, event
    assert event["order"]["version"] == version, event
    parse_time(event["occurredAt"])


async def _new_customer_with_order(
    api: Api, staff_token: str, *, quantity: int = 3, price_cents: int = 1250
) -> tuple[str, Json, Json]:
    """A fresh customer (token), a fresh product and an order of it: (token, product, order)."""
    token, _ = await api.register_customer()
    product = await api.add_product(staff_token, price_cents=price_cents, stock=20)
    order = await api.place_order(token, [(product["sku"], quantity)])
    return token, product, order


async def test_lifecycle_over_graphql_transport_ws(api: Api, live_app: LiveAppLike) -> None:
    staff = live_app.staff_token
    token, product, order = await _new_customer_with_order(api, staff, quantity=3)
    order_id = order["id"]
    assert order["status"] == "PLACED"
    assert order["version"] == 1
    assert order["totalCents"] == 3 * 1250
    assert order["itemCount"] == 3
    assert order["lines"] == [
        {
            "sku": product["sku"],
            "productName": product["name"],
            "quantity": 3,
            "unitPriceCents": 1250,
            "lineTotalCents": 3750,
        }
    ]
    assert order["payment"] is None
    assert order["shipment"] is None
    assert [step["status"] for step in order["timeline"]] == ["PLACED"]

    async with transport_ws(live_app.ws_url, token) as ws:
        # myOrders first (kept live by the barrier), then the order's own status feed.
        my_orders = await follow_my_orders(ws, order_id)
        status_op = await ws.subscribe(ORDER_STATUS, {"id": order_id})
        snapshot = (await ws.next_data(status_op))["orderStatus"]
        assert_event(snapshot, "Snapshot", "PLACED", order["version"], order_id)
        assert snapshot["order"]["lines"] == order["lines"]

        # pay (the owner): the payload is already the paid order (read-your-writes)
        paid = await api.pay(token, order_id)
        assert paid["userErrors"] == []
        assert paid["order"]["status"] == "PAID"
        assert paid["order"]["version"] == 2
        assert paid["order"]["payment"]["status"] == "PAID"
        assert paid["order"]["payment"]["amountCents"] == 3750
        parse_time(paid["order"]["payment"]["paidAt"])

        # ship (staff)
        tracking = unique("TRK").upper()
        shipped = await api.ship(staff, order_id, carrier="UPS", tracking=tracking)
        assert shipped["userErrors"] == []
        assert shipped["order"]["status"] == "SHIPPED"
        assert shipped["order"]["version"] == 3
        shipment = shipped["order"]["shipment"]
        assert shipment["carrier"] == "UPS"
        assert shipment["trackingNumber"] == tracking
        parse_time(shipment["shippedAt"])
        assert shipment["deliveredAt"] is None

        # deliver (staff)
        delivered = await api.deliver(staff, order_id)
        assert delivered["userErrors"] == []
        assert delivered["order"]["status"] == "DELIVERED"
        assert delivered["order"]["version"] == 4
        parse_time(delivered["order"]["shipment"]["deliveredAt"])
        assert [s["status"] for s in delivered["order"]["timeline"]] == STATUS_FLOW

        expected = [
            ("OrderPaid", "PAID", 2),
            ("OrderShipped", "SHIPPED", 3),
            ("OrderDelivered", "DELIVERED", 4),
        ]
        for op_id, field in ((status_op, "orderStatus"), (my_orders, "myOrders")):
            events = [(await ws.next_data(op_id))[field] for _ in expected]
            for event, (name, status, version) in zip(events, expected, strict=True):
                assert_event(event, name, status, version, order_id)
            assert events[0]["order"]["payment"]["status"] == "PAID"
            assert events[0]["order"]["shipment"] is None
            for event in events[1:]:
                assert event["order"]["shipment"]["carrier"] == "UPS"
                assert event["order"]["shipment"]["trackingNumber"] == tracking
            assert events[1]["order"]["shipment"]["deliveredAt"] is None
            assert events[2]["order"]["shipment"]["deliveredAt"] is not None
            assert [s["status"] for s in events[2]["order"]["timeline"]] == STATUS_FLOW
            occurred = [parse_time(event["occurredAt"]) for event in events]
            assert occurred == sorted(occurred)
        await ws.complete(status_op)
        await ws.complete(my_orders)


async def test_my_orders_subscription_sees_new_orders(api: Api, live_app: LiveAppLike) -> None:
    token, product, first = await _new_customer_with_order(api, live_app.staff_token)
    async with transport_ws(live_app.ws_url, token) as ws:
        my_orders = await follow_my_orders(ws, first["id"])
        second = await api.place_order(token, [(product["sku"], 1)])
        event = (await ws.next_data(my_orders))["myOrders"]
        assert_event(event, "OrderPlaced", "PLACED", 1, second["id"])
        cancelled = await api.cancel(token, second["id"], reason="changed my mind")
        assert cancelled["order"]["status"] == "CANCELLED"
        event = (await ws.next_data(my_orders))["myOrders"]
        assert_event(event, "OrderCancelled", "CANCELLED", 2, second["id"])


async def test_lifecycle_over_legacy_graphql_ws(api: Api, live_app: LiveAppLike) -> None:
    token, _, order = await _new_customer_with_order(api, live_app.staff_token)
    async with legacy_ws(live_app.ws_url, token) as ws:
        op_id = await ws.start(ORDER_STATUS, {"id": order["id"]})
        snapshot = (await ws.next_data(op_id))["orderStatus"]
        assert_event(snapshot, "Snapshot", "PLACED", 1, order["id"])

        paid = await api.pay(token, order["id"])
        assert paid["order"]["status"] == "PAID"
        event = (await ws.next_data(op_id))["orderStatus"]
        assert_event(event, "OrderPaid", "PAID", 2, order["id"])
        assert event["order"]["payment"]["status"] == "PAID"

        shipped = await api.ship(live_app.staff_token, order["id"], tracking="LEGACY-1")
        assert shipped["order"]["status"] == "SHIPPED"
        event = (await ws.next_data(op_id))["orderStatus"]
        assert_event(event, "OrderShipped", "SHIPPED", 3, order["id"])
        assert event["order"]["shipment"]["trackingNumber"] == "LEGACY-1"

        await ws.stop(op_id)
        done = await ws.receive_for(op_id)
        assert done["type"] == "complete", done


async def test_legacy_my_orders_subscription(api: Api, live_app: LiveAppLike) -> None:
    token, _, order = await _new_customer_with_order(api, live_app.staff_token)
    async with legacy_ws(live_app.ws_url, token) as ws:
        my_orders = await ws.start(MY_ORDERS)
        barrier = await ws.start(ORDER_STATUS, {"id": order["id"]})
        assert (await ws.next_data(barrier))["orderStatus"]["event"] == "Snapshot"
        await api.pay(token, order["id"])
        event = (await ws.next_data(my_orders))["myOrders"]
        assert_event(event, "OrderPaid", "PAID", 2, order["id"])


MY_ORDERS_QUERY = f"""
query($first: Int, $after: String, $status: OrderStatus) {{
  myOrders(first: $first, after: $after, status: $status) {{
    edges {{ cursor node {{ {ORDER_FIELDS} }} }}
    pageInfo {{ hasNextPage endCursor }}
  }}
}}"""


async def test_my_orders_query_has_what_the_history_screen_needs(
    api: Api, live_app: LiveAppLike
) -> None:
    staff = live_app.staff_token
    token, _ = await api.register_customer()
    mug = await api.add_product(staff, name=unique("Mug"), price_cents=700, stock=10)
    pen = await api.add_product(staff, name=unique("Pen"), price_cents=250, stock=10)
    order = await api.place_order(token, [(mug["sku"], 2), (pen["sku"], 3)])
    await api.pay(token, order["id"])
    tracking = unique("TRACK")
    await api.ship(staff, order["id"], carrier="PostNL", tracking=tracking)

    data = await api.data(MY_ORDERS_QUERY, {"first": 10}, token=token)
    edges = data["myOrders"]["edges"]
    assert [edge["node"]["id"] for edge in edges] == [order["id"]]
    node = edges[0]["node"]
    assert node["status"] == "SHIPPED"
    assert node["itemCount"] == 5
    assert node["totalCents"] == 2 * 700 + 3 * 250
    assert node["currency"] == "EUR"
    lines = {line["sku"]: line for line in node["lines"]}
    assert lines[mug["sku"]]["productName"] == mug["name"]
    assert lines[mug["sku"]]["lineTotalCents"] == 1400
    assert lines[pen["sku"]]["productName"] == pen["name"]
    assert lines[pen["sku"]]["lineTotalCents"] == 750
    assert node["payment"]["status"] == "PAID"
    assert node["shipment"]["trackingNumber"] == tracking
    assert node["shipment"]["carrier"] == "PostNL"
    assert [step["status"] for step in node["timeline"]] == ["PLACED", "PAID", "SHIPPED"]
    times = [parse_time(step["at"]) for step in node["timeline"]]
    assert times == sorted(times)
    assert data["myOrders"]["pageInfo"]["hasNextPage"] is False

    # The product name is as ordered, even after the catalog changes the price.
    changed = await api.data(
        """mutation($input: ChangeProductPriceInput!) {
             changeProductPrice(input: $input) { product { priceCents } userErrors { code } }
           }""",
        {"input": {"sku": mug["sku"], "priceCents": 9999}},
        token=staff,
    )
    assert changed["changeProductPrice"]["product"]["priceCents"] == 9999
    again = await api.data(MY_ORDERS_QUERY, {"first": 10}, token=token)
    line = next(
        li for li in again["myOrders"]["edges"][0]["node"]["lines"] if li["sku"] == mug["sku"]
    )
    assert line["unitPriceCents"] == 700


async def test_my_orders_pagination_and_status_filter(api: Api, live_app: LiveAppLike) -> None:
    token, _ = await api.register_customer()
    product = await api.add_product(live_app.staff_token, stock=20)
    placed = [await api.place_order(token, [(product["sku"], 1)]) for _ in range(3)]
    newest_first = [order["id"] for order in reversed(placed)]

    page1 = (await api.data(MY_ORDERS_QUERY, {"first": 2}, token=token))["myOrders"]
    assert [edge["node"]["id"] for edge in page1["edges"]] == newest_first[:2]
    assert page1["pageInfo"]["hasNextPage"] is True
    assert page1["pageInfo"]["endCursor"] == page1["edges"][-1]["cursor"]

    page2 = (
        await api.data(
            MY_ORDERS_QUERY, {"first": 2, "after": page1["pageInfo"]["endCursor"]}, token=token
        )
    )["myOrders"]
    assert [edge["node"]["id"] for edge in page2["edges"]] == newest_first[2:]
    assert page2["pageInfo"]["hasNextPage"] is False

    await api.pay(token, placed[1]["id"])
    paid = (await api.data(MY_ORDERS_QUERY, {"status": "PAID"}, token=token))["myOrders"]
    assert [edge["node"]["id"] for edge in paid["edges"]] == [placed[1]["id"]]
    still_placed = (await api.data(MY_ORDERS_QUERY, {"status": "PLACED"}, token=token))["myOrders"]
    assert [edge["node"]["id"] for edge in still_placed["edges"]] == [
        placed[2]["id"],
        placed[0]["id"],
    ]
    none = (await api.data(MY_ORDERS_QUERY, {"status": "DELIVERED"}, token=token))["myOrders"]
    assert none["edges"] == []
    assert none["pageInfo"] == {"hasNextPage": False, "endCursor": None}

    # first: 0 is an empty page that still says there is more
    empty = (await api.data(MY_ORDERS_QUERY, {"first": 0}, token=token))["myOrders"]
    assert empty["edges"] == []
    assert empty["pageInfo"]["hasNextPage"] is True


NODE_QUERY = f"""query($id: ID!) {{
  node(id: $id) {{ __typename id ... on Order {{ {ORDER_FIELDS} }} }}
}}"""


async def test_order_and_node_for_owner_and_staff(api: Api, live_app: LiveAppLike) -> None:
    token, _, order = await _new_customer_with_order(api, live_app.staff_token)
    for who in (token, live_app.staff_token):
        fetched = await api.get_order(order["id"], who)
        assert fetched is not None
        assert fetched["id"] == order["id"]
        assert fetched["status"] == "PLACED"
        assert fetched["lines"] == order["lines"]
        node = (await api.data(NODE_QUERY, {"id": order["id"]}, token=who))["node"]
        assert node["__typename"] == "Order"
        assert node["id"] == order["id"]
        assert node["totalCents"] == order["totalCents"]


DASHBOARD = """{
  salesDashboard {
    orderCount revenueCents
    ordersByStatus { status count }
    topProducts { sku name unitsSold revenueCents }
  }
}"""
QUEUE = f"""query($first: Int, $after: String) {{
  fulfillmentQueue(first: $first, after: $after) {{
    edges {{ cursor node {{ {ORDER_FIELDS} }} }}
    pageInfo {{ hasNextPage endCursor }}
  }}
}}"""


async def _queue_ids(api: Api, staff: str) -> list[str]:
    ids: list[str] = []
    after: str | None = None
    for _ in range(50):
        page = (await api.data(QUEUE, {"first": 100, "after": after}, token=staff))[
            "fulfillmentQueue"
        ]
        ids += [edge["node"]["id"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return ids
        after = page["pageInfo"]["endCursor"]
    raise AssertionError("fulfillmentQueue does not end")


def _by_status(dashboard: Json) -> dict[str, int]:
    return {row["status"]: row["count"] for row in dashboard["ordersByStatus"]}


async def test_dashboard_and_fulfillment_queue_follow_a_paid_order(
    api: Api, live_app: LiveAppLike
) -> None:
    staff = live_app.staff_token
    before = (await api.data(DASHBOARD, token=staff))["salesDashboard"]
    assert set(_by_status(before)) == {"PLACED", "PAID", "SHIPPED", "DELIVERED", "CANCELLED"}

    token, _ = await api.register_customer()
    # Enough units to be a best seller whatever else the session sold.
    product = await api.add_product(staff, price_cents=3, stock=1000)
    order = await api.place_order(token, [(product["sku"], 999)])
    assert order["totalCents"] == 2997
    assert order["id"] not in await _queue_ids(api, staff)

    paid = await api.pay(token, order["id"])
    assert paid["order"]["status"] == "PAID"
    queue = await _queue_ids(api, staff)
    assert order["id"] in queue
    assert queue[-1] == order["id"]  # oldest payment first: the newest is last

    after = (await api.data(DASHBOARD, token=staff))["salesDashboard"]
    assert after["orderCount"] == before["orderCount"] + 1
    assert after["revenueCents"] == before["revenueCents"] + 2997
    counts_before, counts_after = _by_status(before), _by_status(after)
    assert counts_after["PAID"] == counts_before["PAID"] + 1
    assert counts_after["PLACED"] == counts_before["PLACED"]
    top = {row["sku"]: row for row in after["topProducts"]}
    assert top[product["sku"]]["unitsSold"] == 999
    assert top[product["sku"]]["revenueCents"] == 2997
    assert top[product["sku"]]["name"] == product["name"]

    shipped = await api.ship(staff, order["id"])
    assert shipped["order"]["status"] == "SHIPPED"
    assert order["id"] not in await _queue_ids(api, staff)
    final = _by_status((await api.data(DASHBOARD, token=staff))["salesDashboard"])
    assert final["PAID"] == counts_before["PAID"]
    assert final["SHIPPED"] == counts_before["SHIPPED"] + 1


async def test_cancelling_a_paid_order_releases_stock_and_refunds(
    api: Api, live_app: LiveAppLike
) -> None:
    staff = live_app.staff_token
    token, _ = await api.register_customer()
    product = await api.add_product(staff, stock=10, price_cents=500)
    assert await api.stock_of(product["sku"]) == 10
    order = await api.place_order(token, [(product["sku"], 4)])
    assert await api.stock_of(product["sku"]) == 6
    await api.pay(token, order["id"])
    assert await api.stock_of(product["sku"]) == 6
    before = (await api.data(DASHBOARD, token=staff))["salesDashboard"]

    cancelled = await api.cancel(token, order["id"], reason="found it cheaper")
    assert cancelled["userErrors"] == []
    result = cancelled["order"]
    assert result["status"] == "CANCELLED"
    assert result["version"] == 3
    assert result["payment"]["status"] == "REFUNDED"
    parse_time(result["payment"]["refundedAt"])
    assert [step["status"] for step in result["timeline"]] == ["PLACED", "PAID", "CANCELLED"]
    assert await api.stock_of(product["sku"]) == 10
    product_now = (
        await api.data(
            "query($sku: String!) { product(sku: $sku) { stockAvailable inStock } }",
            {"sku": product["sku"]},
        )
    )["product"]
    assert product_now == {"stockAvailable": 10, "inStock": True}

    after = (await api.data(DASHBOARD, token=staff))["salesDashboard"]
    assert after["revenueCents"] == before["revenueCents"] - 2000
    assert _by_status(after)["CANCELLED"] == _by_status(before)["CANCELLED"] + 1

    # A cancelled order is final.
    again = await api.pay(token, order["id"])
    assert again["order"] is None
    assert [error["code"] for error in again["userErrors"]] == ["INVALID_STATE"]


PRODUCTS = """
query($first: Int, $after: String, $search: String, $inStock: Boolean) {
  products(first: $first, after: $after, search: $search, inStock: $inStock) {
    edges { cursor node { id sku name priceCents currency stockAvailable inStock description } }
    pageInfo { hasNextPage endCursor }
  }
}"""


async def test_products_search_in_stock_and_pagination(api: Api, live_app: LiveAppLike) -> None:
    tag = unique("Zebra")
    staff = live_app.staff_token
    made = [
        await api.add_product(staff, name=f"{tag} {letter}", stock=stock)
        for letter, stock in (("A", 5), ("B", 0), ("C", 2))
    ]

    async def names(**variables: Any) -> tuple[list[str], Json]:
        page = (await api.data(PRODUCTS, variables))["products"]
        return [edge["node"]["name"] for edge in page["edges"]], page["pageInfo"]

    found, info = await names(search=tag)
    assert found == [f"{tag} A", f"{tag} B", f"{tag} C"]  # by name
    assert info["hasNextPage"] is False
    assert (await names(search=tag.lower()))[0] == found  # case-insensitive
    assert (await names(search=made[1]["sku"]))[0] == [f"{tag} B"]  # SKUs match too
    assert (await names(search=tag, inStock=True))[0] == [f"{tag} A", f"{tag} C"]
    assert (await names(search=tag, inStock=False))[0] == [f"{tag} B"]
    assert (await names(search=unique("nothing-like-this")))[0] == []

    first, info = await names(search=tag, first=2)
    assert first == [f"{tag} A", f"{tag} B"]
    assert info["hasNextPage"] is True
    rest, info = await names(search=tag, first=2, after=info["endCursor"])
    assert rest == [f"{tag} C"]
    assert info["hasNextPage"] is False

    # The whole catalog pages through without repeats.
    seen: list[str] = []
    after: str | None = None
    for _ in range(100):
        page = (await api.data(PRODUCTS, {"first": 7, "after": after}))["products"]
        seen += [edge["node"]["sku"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert len(seen) == len(set(seen))
    assert {"MUG-001", "CAP-GRN", *(p["sku"] for p in made)} <= set(seen)


async def test_product_by_sku(api: Api, live_app: LiveAppLike) -> None:
    query = """query($sku: String!) {
      product(sku: $sku) { id sku name description priceCents currency stockAvailable inStock }
    }"""
    mug = (await api.data(query, {"sku": "MUG-001"}))["product"]
    assert mug["sku"] == "MUG-001"
    assert mug["name"] == "Enamel camping mug"
    assert mug["priceCents"] == 1250
    assert mug["currency"] == "EUR"
    assert mug["inStock"] is True
    cap = (await api.data(query, {"sku": "CAP-GRN"}))["product"]
    assert cap["stockAvailable"] == 0
    assert cap["inStock"] is False
    assert (await api.data(query, {"sku": "NO-SUCH-SKU"}))["product"] is None

    made = await api.add_product(live_app.staff_token, price_cents=4321, stock=3)
    fetched = (await api.data(query, {"sku": made["sku"]}))["product"]
    assert fetched["id"] == made["id"]
    assert fetched["description"] == "made by an end-to-end test"
    node = (
        await api.data(
            "query($id: ID!) { node(id: $id) { id ... on Product { sku priceCents } } }",
            {"id": made["id"]},
        )
    )["node"]
    assert node == {"id": made["id"], "sku": made["sku"], "priceCents": 4321}
