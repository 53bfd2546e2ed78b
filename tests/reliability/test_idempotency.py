"""placeOrder idempotency keys: a retried or duplicated request places one order, reserves
stock once and answers the same order; keys are scoped per customer; a key reused for a
different order is refused. Checked over HTTP and against the write model."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import cast

import pytest

from api.graphql.ids import raw_id_of
from tests.conftest import LiveApp
from tests.e2e.client import Api, Json, api_client, unique
from tests.reliability.support import READ_WAIT, database_of, query_rows, staff_token

QUANTITY = 3


@pytest.fixture
async def api(live_app: LiveApp) -> AsyncIterator[Api]:
    async with api_client(live_app.base_url) as client:
        yield client


@pytest.fixture
async def sku(api: Api) -> str:
    """A product of this test alone, so its stock moves only by what the test does."""
    product = await api.add_product(staff_token(), sku=unique("IDEM").upper(), stock=100)
    return cast(str, product["sku"])


async def place(api: Api, token: str, lines: list[tuple[str, int]], key: str) -> Json:
    """placeOrder's whole payload (order and userErrors)."""
    return await api.order_mutation(
        "placeOrder",
        "PlaceOrderInput",
        {"lines": [{"sku": s, "quantity": q} for s, q in lines], "idempotencyKey": key},
        token=token,
    )


async def my_order_ids(api: Api, token: str) -> list[str]:
    data = await api.data("{ myOrders(first: 100) { edges { node { id } } } }", token=token)
    return [edge["node"]["id"] for edge in data["myOrders"]["edges"]]


def orders_with_key(live_app: LiveApp, customer_id: str, key: str) -> list[str]:
    """Order ids in the write model for this customer and idempotency key."""
    raw = raw_id_of("Customer", customer_id)
    rows = query_rows(
        database_of(live_app.env["SHOPFRONT_WRITE_DATABASE_URL"]),
        "SELECT id FROM orders WHERE customer_id = ? AND idempotency_key = ?",
        (raw, key),
        timeout=READ_WAIT,
    )
    return [row["id"] for row in rows]


def placed_events(live_app: LiveApp, order_id: str) -> int:
    raw = raw_id_of("Order", order_id)
    rows = query_rows(
        database_of(live_app.env["SHOPFRONT_WRITE_DATABASE_URL"]),
        "SELECT count(*) AS n FROM events WHERE stream_id = ? AND type = 'OrderPlaced'",
        (f"order-{raw}",),
        timeout=READ_WAIT,
    )
    return int(rows[0]["n"])


async def test_sequential_retry_returns_the_same_order(
    api: Api, live_app: LiveApp, sku: str
) -> None:
    token, customer_id = await api.register_customer()
    key = unique("key")
    first = await place(api, token, [(sku, QUANTITY)], key)
    assert first["userErrors"] == [], first
    second = await place(api, token, [(sku, QUANTITY)], key)
    assert second == first, "a retry must answer exactly what the first request did"
    order_id = first["order"]["id"]
    assert await my_order_ids(api, token) == [order_id]
    assert orders_with_key(live_app, customer_id, key) == [raw_id_of("Order", order_id)]
    assert placed_events(live_app, order_id) == 1
    assert await api.stock_of(sku) == 100 - QUANTITY


async def test_concurrent_duplicates_place_one_order(api: Api, live_app: LiveApp, sku: str) -> None:
    token, customer_id = await api.register_customer()
    key = unique("key")
    payloads = await asyncio.gather(*(place(api, token, [(sku, QUANTITY)], key) for _ in range(5)))
    assert all(p["userErrors"] == [] for p in payloads), payloads
    ids = {p["order"]["id"] for p in payloads}
    assert len(ids) == 1, f"5 concurrent duplicates made {len(ids)} orders"
    (order_id,) = ids
    assert await my_order_ids(api, token) == [order_id]
    assert orders_with_key(live_app, customer_id, key) == [raw_id_of("Order", order_id)]
    assert placed_events(live_app, order_id) == 1
    assert await api.stock_of(sku) == 100 - QUANTITY, "stock reserved more than once"
    order = await api.get_order(order_id, token)
    assert order is not None
    assert [(ln["sku"], ln["quantity"]) for ln in order["lines"]] == [(sku, QUANTITY)]


async def test_keys_are_scoped_per_customer(api: Api, live_app: LiveApp, sku: str) -> None:
    (alice, alice_id), (bob, bob_id) = await asyncio.gather(
        api.register_customer("Alice"), api.register_customer("Bob")
    )
    key = unique("shared-key")
    a, b = await asyncio.gather(
        place(api, alice, [(sku, QUANTITY)], key), place(api, bob, [(sku, QUANTITY)], key)
    )
    assert a["userErrors"] == [] and b["userErrors"] == [], (a, b)
    assert a["order"]["id"] != b["order"]["id"]
    assert a["order"]["customerId"] == alice_id and b["order"]["customerId"] == bob_id
    assert await my_order_ids(api, alice) == [a["order"]["id"]]
    assert await my_order_ids(api, bob) == [b["order"]["id"]]
    assert len(orders_with_key(live_app, alice_id, key)) == 1
    assert len(orders_with_key(live_app, bob_id, key)) == 1
    assert await api.stock_of(sku) == 100 - 2 * QUANTITY


async def test_same_key_different_order_is_refused(api: Api, live_app: LiveApp, sku: str) -> None:
    token, customer_id = await api.register_customer()
    key = unique("key")
    first = await place(api, token, [(sku, QUANTITY)], key)
    assert first["userErrors"] == [], first
    notebooks = await api.stock_of("NOTE-A5")
    for lines in ([(sku, QUANTITY + 1)], [(sku, QUANTITY), ("NOTE-A5", 1)]):
        other = await place(api, token, lines, key)
        assert other["order"] is None, other
        assert [e["code"] for e in other["userErrors"]] == ["IDEMPOTENCY_KEY_REUSED"], other
        assert other["userErrors"][0]["field"] == "idempotencyKey", other
    # The same lines in another order are the same request.
    again = await place(api, token, [(sku, 1), (sku, QUANTITY - 1)], key)
    assert again["userErrors"] == [] and again["order"]["id"] == first["order"]["id"], again
    assert await my_order_ids(api, token) == [first["order"]["id"]]
    assert len(orders_with_key(live_app, customer_id, key)) == 1
    assert await api.stock_of(sku) == 100 - QUANTITY
    assert await api.stock_of("NOTE-A5") == notebooks


async def test_retry_after_a_state_change_returns_the_order_as_it_is(
    api: Api, live_app: LiveApp, sku: str
) -> None:
    """A late retry (after the order was paid) still places nothing new and returns the
    existing order, now paid."""
    token, customer_id = await api.register_customer()
    key = unique("key")
    first = await place(api, token, [(sku, QUANTITY)], key)
    order_id = first["order"]["id"]
    paid = await api.pay(token, order_id)
    assert paid["userErrors"] == [] and paid["order"]["status"] == "PAID", paid
    retry = await place(api, token, [(sku, QUANTITY)], key)
    assert retry["userErrors"] == [], retry
    assert retry["order"]["id"] == order_id
    assert retry["order"]["status"] == "PAID" and retry["order"]["version"] == 2, retry
    assert await my_order_ids(api, token) == [order_id]
    assert len(orders_with_key(live_app, customer_id, key)) == 1
    assert await api.stock_of(sku) == 100 - QUANTITY
