"""Who may see and change what: customers only their own orders (by query and by
subscription), anonymous only the catalog and sign-up, staff everything."""

from __future__ import annotations

from .client import (
    MY_ORDERS,
    ORDER_FIELDS,
    ORDER_STATUS,
    Api,
    Json,
    LiveAppLike,
    error_codes,
    follow_my_orders,
    legacy_ws,
    transport_ws,
)

NODE = "query($id: ID!) { node(id: $id) { id ... on Order { status } } }"
MY_ORDER_IDS = "{ myOrders(first: 100) { edges { node { id } } } }"


async def _two_customers_with_orders(api: Api, staff: str) -> tuple[str, Json, str, Json, Json]:
    """(A's token, A's order, B's token, B's order, the product)."""
    product = await api.add_product(staff, stock=50)
    token_a, _ = await api.register_customer("Alice")
    token_b, _ = await api.register_customer("Bob")
    order_a = await api.place_order(token_a, [(product["sku"], 1)])
    order_b = await api.place_order(token_b, [(product["sku"], 2)])
    return token_a, order_a, token_b, order_b, product


async def _my_order_ids(api: Api, token: str) -> list[str]:
    data = await api.data(MY_ORDER_IDS, token=token)
    return [edge["node"]["id"] for edge in data["myOrders"]["edges"]]


async def test_a_customer_cannot_see_another_customers_order(
    api: Api, live_app: LiveAppLike
) -> None:
    token_a, order_a, token_b, order_b, _ = await _two_customers_with_orders(
        api, live_app.staff_token
    )
    # someone else's order looks exactly like a missing one
    body = await api.execute(
        f"query($id: ID!) {{ order(id: $id) {{ {ORDER_FIELDS} }} }}",
        {"id": order_b["id"]},
        token=token_a,
    )
    assert "errors" not in body and body["data"] == {"order": None}
    body = await api.execute(NODE, {"id": order_b["id"]}, token=token_a)
    assert "errors" not in body and body["data"] == {"node": None}
    assert await _my_order_ids(api, token_a) == [order_a["id"]]
    assert await _my_order_ids(api, token_b) == [order_b["id"]]
    for status in ("PLACED", "PAID"):
        data = await api.data(
            "query($s: OrderStatus) { myOrders(status: $s) { edges { node { id } } } }",
            {"s": status},
            token=token_a,
        )
        assert order_b["id"] not in str(data)

    # ... nor B's customer profile through node(), nor through the order's customer field
    b_customer = order_b["customerId"]
    assert (await api.data(NODE, {"id": b_customer}, token=token_a))["node"] is None
    own = await api.data(
        "query($id: ID!) { node(id: $id) { id ... on Customer { email } } }",
        {"id": b_customer},
        token=token_b,
    )
    assert own["node"]["id"] == b_customer

    # the owner does see it, with the same id
    assert (await api.data(NODE, {"id": order_b["id"]}, token=token_b))["node"] == {
        "id": order_b["id"],
        "status": "PLACED",
    }


async def test_a_customer_cannot_change_another_customers_order(
    api: Api, live_app: LiveAppLike
) -> None:
    token_a, _, token_b, order_b, product = await _two_customers_with_orders(
        api, live_app.staff_token
    )
    stock = await api.stock_of(product["sku"])
    for attempt in (api.pay(token_a, order_b["id"]), api.cancel(token_a, order_b["id"])):
        payload = await attempt
        assert payload["order"] is None, payload
        assert [e["code"] for e in payload["userErrors"]] == ["NOT_FOUND"], payload
        assert payload["userErrors"][0]["field"] == "orderId"
    # ship/deliver are staff-only, whoever's order it is
    for attempt in (api.ship(token_a, order_b["id"]), api.deliver(token_a, order_b["id"])):
        payload = await attempt
        assert payload["order"] is None
        assert [e["code"] for e in payload["userErrors"]] == ["FORBIDDEN"], payload

    unchanged = await api.get_order(order_b["id"], token_b)
    assert unchanged is not None
    assert (unchanged["status"], unchanged["version"]) == ("PLACED", 1)
    assert unchanged["payment"] is None
    assert await api.stock_of(product["sku"]) == stock

    # the owner can, and then the other customer still cannot cancel it
    assert (await api.pay(token_b, order_b["id"]))["order"]["status"] == "PAID"
    payload = await api.cancel(token_a, order_b["id"])
    assert [e["code"] for e in payload["userErrors"]] == ["NOT_FOUND"]
    still = await api.get_order(order_b["id"], live_app.staff_token)
    assert still is not None
    assert (still["status"], still["version"]) == ("PAID", 2)


async def test_order_status_subscription_to_another_customers_order_is_refused(
    api: Api, live_app: LiveAppLike
) -> None:
    token_a, order_a, token_b, order_b, _ = await _two_customers_with_orders(
        api, live_app.staff_token
    )
    async with transport_ws(live_app.ws_url, token_a) as ws:
        denied = await ws.subscribe(ORDER_STATUS, {"id": order_b["id"]})
        errors = await ws.errors_of(denied)
        assert [e["extensions"]["code"] for e in errors] == ["NOT_FOUND"], errors
        # B's order changes; A's connection hears nothing about it, but A's own
        # subscription on the same connection works: A's change, made after B's, is
        # the very next message on the connection.
        own = await ws.subscribe(ORDER_STATUS, {"id": order_a["id"]})
        assert (await ws.next_data(own))["orderStatus"]["event"] == "Snapshot"
        await api.pay(token_b, order_b["id"])
        await api.pay(token_a, order_a["id"])
        event = (await ws.very_next(own))[own]["payload"]["data"]["orderStatus"]
        assert (event["event"], event["order"]["id"]) == ("OrderPaid", order_a["id"])

    async with legacy_ws(live_app.ws_url, token_a) as legacy:
        op_id = await legacy.start(ORDER_STATUS, {"id": order_b["id"]})
        message = await legacy.receive_for(op_id)
        if message["type"] == "data":
            assert message["payload"]["data"] is None, message
            errors = message["payload"]["errors"]
        else:
            assert message["type"] == "error", message
            errors = message["payload"]
            errors = errors if isinstance(errors, list) else [errors]
        assert [e["extensions"]["code"] for e in errors] == ["NOT_FOUND"], message


async def test_my_orders_subscription_only_carries_the_callers_orders(
    api: Api, live_app: LiveAppLike
) -> None:
    token_a, order_a, token_b, order_b, product = await _two_customers_with_orders(
        api, live_app.staff_token
    )
    async with transport_ws(live_app.ws_url, token_a) as ws:
        my_orders = await follow_my_orders(ws, order_a["id"])
        # B's changes, then one of A's: the first thing A hears is A's own change.
        await api.pay(token_b, order_b["id"])
        await api.ship(live_app.staff_token, order_b["id"])
        other_b = await api.place_order(token_b, [(product["sku"], 1)])
        await api.cancel(token_b, other_b["id"])
        await api.cancel(token_a, order_a["id"])
        event = (await ws.very_next(my_orders))[my_orders]["payload"]["data"]["myOrders"]
        assert event["order"]["id"] == order_a["id"], event
        assert event["event"] == "OrderCancelled"
        assert event["order"]["customerId"] == order_a["customerId"]
        # And nothing of B's after it either: B changes again, then A places an order,
        # which is the very next thing A hears.
        await api.cancel(token_b, order_b["id"])
        again = await api.place_order(token_a, [(product["sku"], 1)])
        event = (await ws.very_next(my_orders))[my_orders]["payload"]["data"]["myOrders"]
        assert (event["event"], event["order"]["id"]) == ("OrderPlaced", again["id"]), event


async def test_anonymous_may_browse_and_register_only(api: Api, live_app: LiveAppLike) -> None:
    # browse
    data = await api.data("{ products(first: 3) { edges { node { sku name priceCents } } } }")
    assert len(data["products"]["edges"]) == 3
    assert (await api.data('{ product(sku: "MUG-001") { sku } }'))["product"]["sku"] == "MUG-001"
    # register (no token needed), and the returned token works at once
    token, customer_id = await api.register_customer()
    me = await api.data("{ me { id email orderCount lifetimeSpendCents } }", token=token)
    assert me["me"]["id"] == customer_id
    assert me["me"]["orderCount"] == 0

    # nothing else
    body = await api.execute(MY_ORDER_IDS)
    assert error_codes(body) == ["UNAUTHENTICATED"], body
    assert body["data"] is None
    assert await api.data("{ me { id } }") == {"me": None}
    _, order, _, _, product = await _two_customers_with_orders(api, live_app.staff_token)
    body = await api.execute(NODE, {"id": order["id"]})
    assert "errors" not in body and body["data"] == {"node": None}
    assert await api.get_order(order["id"], None) is None
    for field in (
        "salesDashboard { orderCount }",
        "projections { name }",
        "fulfillmentQueue { edges { cursor } }",
    ):
        body = await api.execute(f"{{ {field} }}")
        assert error_codes(body) == ["UNAUTHENTICATED"], body

    placed = await api.order_mutation(
        "placeOrder",
        "PlaceOrderInput",
        {"lines": [{"sku": product["sku"], "quantity": 1}]},
        token=None,
    )
    assert placed["order"] is None
    assert [e["code"] for e in placed["userErrors"]] == ["UNAUTHENTICATED"]
    for attempt in (api.pay(None, order["id"]), api.cancel(None, order["id"])):
        payload = await attempt
        assert payload["order"] is None
        assert [e["code"] for e in payload["userErrors"]] == ["UNAUTHENTICATED"], payload

    # anonymous WebSocket: connecting is allowed, following orders is not
    async with transport_ws(live_app.ws_url, None) as ws:
        for query, variables in ((MY_ORDERS, None), (ORDER_STATUS, {"id": order["id"]})):
            op_id = await ws.subscribe(query, variables)
            errors = await ws.errors_of(op_id)
            assert [e["extensions"]["code"] for e in errors] == ["UNAUTHENTICATED"], errors


async def test_customers_get_forbidden_for_staff_screens(api: Api, live_app: LiveAppLike) -> None:
    token, _ = await api.register_customer()
    for who in (token, live_app.customer_token):
        for field in (
            "salesDashboard { orderCount revenueCents }",
            "fulfillmentQueue(first: 5) { edges { node { id } } }",
            "projections { name lag }",
        ):
            body = await api.execute(f"{{ {field} }}", token=who)
            assert error_codes(body) == ["FORBIDDEN"], (field, body)
            assert body["data"] is None
            assert body["errors"][0]["path"], body


async def test_staff_see_and_follow_every_order(api: Api, live_app: LiveAppLike) -> None:
    staff = live_app.staff_token
    _, order_a, token_b, order_b, _ = await _two_customers_with_orders(api, staff)
    for order in (order_a, order_b):
        fetched = await api.get_order(order["id"], staff)
        assert fetched is not None
        assert fetched["id"] == order["id"]
        assert fetched["customerId"] == order["customerId"]
        node = (await api.data(NODE, {"id": order["id"]}, token=staff))["node"]
        assert node == {"id": order["id"], "status": "PLACED"}
        customer = await api.data(
            "query($id: ID!) { node(id: $id) { id ... on Customer { email } } }",
            {"id": order["customerId"]},
            token=staff,
        )
        assert customer["node"]["id"] == order["customerId"]
    # staff have no customer profile and no orders of their own
    assert await api.data("{ me { id } }", token=staff) == {"me": None}

    async with transport_ws(live_app.ws_url, staff) as ws:
        everything = await follow_my_orders(ws, order_b["id"])
        status_b = await ws.subscribe(ORDER_STATUS, {"id": order_b["id"]})
        snapshot = (await ws.next_data(status_b))["orderStatus"]
        assert (snapshot["event"], snapshot["order"]["id"]) == ("Snapshot", order_b["id"])
        await api.pay(token_b, order_b["id"])
        # staff may cancel anyone's order before it ships
        cancelled = await api.cancel(staff, order_a["id"], reason="out of delivery area")
        assert cancelled["userErrors"] == []
        assert cancelled["order"]["status"] == "CANCELLED"
        event = (await ws.next_data(status_b))["orderStatus"]
        assert (event["event"], event["version"]) == ("OrderPaid", 2)
        seen = [(await ws.next_data(everything))["myOrders"] for _ in range(2)]
        assert [(e["event"], e["order"]["id"]) for e in seen] == [
            ("OrderPaid", order_b["id"]),
            ("OrderCancelled", order_a["id"]),
        ]
