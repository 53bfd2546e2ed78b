"""Optimistic concurrency on orders: a customer's payOrder and cancelOrder of the same
order, sent at the same moment, each saying which version it saw. Exactly one wins; the
other is refused with VERSION_CONFLICT (never a false success); the order ends in the
winner's state, and the event log holds exactly one of OrderPaid / OrderCancelled.

Mechanism under test: ``expectedVersion`` is checked against the order's version inside
the command's transaction, and the version moves with a compare-and-set update.
(Without it, a cancel that arrives after the payment would succeed too: cancelling a
PAID order is allowed.)
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from typing import Any

import httpx
import pytest

from api.graphql.ids import raw_id_of
from tests.conftest import LiveApp
from tests.reliability.support import (
    CANCEL,
    DELIVER,
    GET_ORDER,
    PAY,
    SHIP,
    Json,
    add_product,
    database_of,
    event_counts,
    graphql,
    place,
    query_rows,
    register,
    staff_token,
)

ORDERS = 20
ACTIONS = {"pay": (PAY, "payOrder", "PAID"), "cancel": (CANCEL, "cancelOrder", "CANCELLED")}


async def attempt(base_url: str, action: str, order_id: str, version: int, token: str) -> Json:
    """One mutation on its own connection; returns its payload."""
    query, field, _ = ACTIONS[action]
    order_input: dict[str, Any] = {"orderId": order_id, "expectedVersion": version}
    if action == "cancel":
        order_input["reason"] = "race"
    async with httpx.AsyncClient(base_url=base_url, timeout=10, trust_env=False) as http:
        data = await graphql(http, query, {"input": order_input}, token)
    payload: Json = data[field]
    return payload


@pytest.mark.timeout(60)
async def test_pay_and_cancel_race_has_exactly_one_winner(live_app: LiveApp) -> None:
    started = time.monotonic()
    write_db = database_of(live_app.env["SHOPFRONT_WRITE_DATABASE_URL"])
    staff = staff_token("staff-races")
    sku = f"RACE-{time.time_ns()}"
    async with httpx.AsyncClient(base_url=live_app.base_url, timeout=10, trust_env=False) as http:
        await add_product(http, staff, sku, 700, 10_000)
        token, _ = await register(http, "Race customer")
        orders = [await place(http, token, {sku: 1 + n % 3}) for n in range(ORDERS)]
    assert all(o["version"] == 1 and o["status"] == "PLACED" for o in orders), orders

    # Both mutations of every order at once: 2 x ORDERS requests in flight together, each
    # pair's order shuffled so that either may reach the server first.
    pairs = [random.sample(["pay", "cancel"], 2) for _ in orders]
    results = await asyncio.gather(
        *(
            attempt(live_app.base_url, action, order["id"], order["version"], token)
            for order, actions in zip(orders, pairs, strict=True)
            for action in actions
        )
    )
    outcomes: dict[str, dict[str, Json]] = {o["id"]: {} for o in orders}
    for (order, action), payload in zip(
        ((o, a) for o, actions in zip(orders, pairs, strict=True) for a in actions),
        results,
        strict=True,
    ):
        outcomes[order["id"]][action] = payload

    winners: Counter[str] = Counter()
    async with httpx.AsyncClient(base_url=live_app.base_url, timeout=10, trust_env=False) as http:
        for order in orders:
            won = [a for a, p in outcomes[order["id"]].items() if not p["userErrors"]]
            assert len(won) == 1, f"not exactly one winner: {outcomes[order['id']]}"
            winner = won[0]
            loser = "cancel" if winner == "pay" else "pay"
            winners[winner] += 1
            win, lose = outcomes[order["id"]][winner], outcomes[order["id"]][loser]
            status = ACTIONS[winner][2]
            assert win["order"] is not None and win["order"]["status"] == status, win
            assert win["order"]["version"] == 2, win
            # The loser learns why, and nothing else: no order, no success.
            assert lose["order"] is None, lose
            assert [e["code"] for e in lose["userErrors"]] == ["VERSION_CONFLICT"], lose
            assert lose["userErrors"][0]["field"] == "expectedVersion", lose

            # The read model and the write model agree with the winner.
            read = (await graphql(http, GET_ORDER, {"id": order["id"]}, token))["order"]
            assert (read["status"], read["version"]) == (status, 2), read
            raw_id = raw_id_of("Order", order["id"])
            assert raw_id is not None
            row = query_rows(write_db, "SELECT status, version FROM orders WHERE id = ?", (raw_id,))
            assert row == [{"status": status, "version": 2}], row
            events = event_counts(write_db, f"order-{raw_id}")
            expected_event = "OrderPaid" if winner == "pay" else "OrderCancelled"
            assert events == Counter({"OrderPlaced": 1, expected_event: 1}), events
            payment = query_rows(
                write_db, "SELECT status FROM payments WHERE order_id = ?", (raw_id,)
            )
            assert payment == ([{"status": "PAID"}] if winner == "pay" else []), payment

    print(
        f"\norder races: {ORDERS} pay/cancel pairs ({2 * ORDERS} requests at once): "
        f"{dict(winners)} won, every loser VERSION_CONFLICT; "
        f"{time.monotonic() - started:.1f} s"
    )


@pytest.mark.timeout(30)
async def test_stale_expected_version_is_refused_and_changes_nothing(live_app: LiveApp) -> None:
    write_db = database_of(live_app.env["SHOPFRONT_WRITE_DATABASE_URL"])
    staff = staff_token("staff-races")
    sku = f"STALE-{time.time_ns()}"
    async with httpx.AsyncClient(base_url=live_app.base_url, timeout=10, trust_env=False) as http:
        await add_product(http, staff, sku, 1500, 100)
        token, _ = await register(http, "Stale customer")
        order = await place(http, token, {sku: 2})
        paid = (
            await graphql(
                http, PAY, {"input": {"orderId": order["id"], "expectedVersion": 1}}, token
            )
        )["payOrder"]
        assert paid["userErrors"] == [] and paid["order"]["version"] == 2, paid
        raw_id = raw_id_of("Order", order["id"])
        assert raw_id is not None
        stream = f"order-{raw_id}"
        before_events = event_counts(write_db, stream)
        before_stock = query_rows(
            write_db, "SELECT stock_on_hand, stock_reserved FROM products WHERE sku = ?", (sku,)
        )

        # A client still holding version 1 (PLACED) decides to cancel: refused.
        stale_cancel = (
            await graphql(
                http,
                CANCEL,
                {"input": {"orderId": order["id"], "expectedVersion": 1, "reason": "stale"}},
                token,
            )
        )["cancelOrder"]
        # Staff shipping with a version from the future: refused too.
        stale_ship = (
            await graphql(
                http,
                SHIP,
                {
                    "input": {
                        "orderId": order["id"],
                        "carrier": "DHL",
                        "trackingNumber": "TRK-STALE",
                        "expectedVersion": 3,
                    }
                },
                staff,
            )
        )["shipOrder"]
        for refused in (stale_cancel, stale_ship):
            assert refused["order"] is None, refused
            assert [e["code"] for e in refused["userErrors"]] == ["VERSION_CONFLICT"], refused

        assert (
            event_counts(write_db, stream)
            == before_events
            == Counter({"OrderPlaced": 1, "OrderPaid": 1})
        )
        assert (
            query_rows(
                write_db,
                "SELECT stock_on_hand, stock_reserved FROM products WHERE sku = ?",
                (sku,),
            )
            == before_stock
        )
        assert query_rows(
            write_db, "SELECT status, version FROM orders WHERE id = ?", (raw_id,)
        ) == [{"status": "PAID", "version": 2}]
        assert query_rows(write_db, "SELECT * FROM shipments WHERE order_id = ?", (raw_id,)) == []
        read = (await graphql(http, GET_ORDER, {"id": order["id"]}, token))["order"]
        assert (read["status"], read["version"], read["payment"]["status"]) == ("PAID", 2, "PAID")
        assert read["shipment"] is None, read

        # With the current version the same cancel goes through.
        fresh = (
            await graphql(
                http,
                CANCEL,
                {"input": {"orderId": order["id"], "expectedVersion": 2, "reason": "fresh"}},
                token,
            )
        )["cancelOrder"]
        assert fresh["userErrors"] == [], fresh
        assert (fresh["order"]["status"], fresh["order"]["version"]) == ("CANCELLED", 3), fresh


@pytest.mark.timeout(30)
async def test_stale_expected_version_on_deliver_is_refused(live_app: LiveApp) -> None:
    write_db = database_of(live_app.env["SHOPFRONT_WRITE_DATABASE_URL"])
    staff = staff_token("staff-races")
    sku = f"DELIVER-{time.time_ns()}"
    async with httpx.AsyncClient(base_url=live_app.base_url, timeout=10, trust_env=False) as http:
        await add_product(http, staff, sku, 1500, 100)
        token, _ = await register(http, "Deliver customer")
        order = await place(http, token, {sku: 1})
        await graphql(http, PAY, {"input": {"orderId": order["id"]}}, token)
        ship_input = {"orderId": order["id"], "carrier": "DHL", "trackingNumber": "TRK-D"}
        shipped = (await graphql(http, SHIP, {"input": ship_input}, staff))["shipOrder"]
        assert shipped["order"]["version"] == 3, shipped
        raw_id = raw_id_of("Order", order["id"])
        assert raw_id is not None

        # Staff holding version 2 (PAID, before the shipment): refused, nothing written.
        for stale in (2, 4):
            refused = (
                await graphql(
                    http,
                    DELIVER,
                    {"input": {"orderId": order["id"], "expectedVersion": stale}},
                    staff,
                )
            )["deliverOrder"]
            assert refused["order"] is None, refused
            assert [e["code"] for e in refused["userErrors"]] == ["VERSION_CONFLICT"], refused
            assert refused["userErrors"][0]["field"] == "expectedVersion", refused
        assert "OrderDelivered" not in event_counts(write_db, f"order-{raw_id}")
        assert query_rows(
            write_db, "SELECT status, version FROM orders WHERE id = ?", (raw_id,)
        ) == [{"status": "SHIPPED", "version": 3}]

        # With the current version it goes through.
        delivered = (
            await graphql(
                http, DELIVER, {"input": {"orderId": order["id"], "expectedVersion": 3}}, staff
            )
        )["deliverOrder"]
        assert delivered["userErrors"] == [], delivered
        assert (delivered["order"]["status"], delivered["order"]["version"]) == ("DELIVERED", 4)
