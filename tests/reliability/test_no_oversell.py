"""No oversell: 50 customers race for the last 10 units; exactly 10 win, the stock shown
never goes negative, and the write model reserved exactly what it had."""

from __future__ import annotations

import asyncio
from collections import Counter

from api.graphql.ids import raw_id_of
from tests.conftest import LiveApp
from tests.e2e.client import Api, Json, api_client, unique
from tests.reliability.support import READ_WAIT, database_of, query_rows, staff_token

STOCK = 10
BUYERS = 50


async def test_fifty_buyers_ten_units(live_app: LiveApp) -> None:
    async with api_client(live_app.base_url) as api:
        sku = unique("RACE").upper()
        product = await api.add_product(staff_token(), sku=sku, stock=STOCK, price_cents=999)
        assert product["stockAvailable"] == STOCK
        buyers = await asyncio.gather(*(api.register_customer(f"Racer {n}") for n in range(BUYERS)))

        shown: list[int] = []
        racing = asyncio.Event()

        async def watch_stock() -> None:
            """What the catalog shows while the race runs: never below zero."""
            async with api_client(live_app.base_url) as watcher:
                while not racing.is_set():
                    shown.append(await watcher.stock_of(sku))
                    await asyncio.sleep(0.005)

        async def buy(token: str) -> Json:
            return await api.order_mutation(
                "placeOrder",
                "PlaceOrderInput",
                {"lines": [{"sku": sku, "quantity": 1}], "idempotencyKey": unique("race")},
                token=token,
                fields="id status customerId lines { sku quantity }",
            )

        watcher = asyncio.create_task(watch_stock())
        try:
            payloads = await asyncio.wait_for(
                asyncio.gather(*(buy(token) for token, _ in buyers)), 30
            )
        finally:
            racing.set()
            await watcher

        won = [p for p in payloads if not p["userErrors"]]
        lost = [p for p in payloads if p["userErrors"]]
        codes = Counter(e["code"] for p in lost for e in p["userErrors"])
        assert len(won) == STOCK, f"{len(won)} orders for {STOCK} units"
        assert codes == {"OUT_OF_STOCK": BUYERS - STOCK}, codes
        assert all(p["order"] is None for p in lost)
        for p in won:
            assert p["order"]["status"] == "PLACED"
            assert p["order"]["lines"] == [{"sku": sku, "quantity": 1}]
        assert len({p["order"]["customerId"] for p in won}) == STOCK
        assert await api.stock_of(sku) == 0
        assert shown and min(shown) >= 0, shown

        write_db = database_of(live_app.env["SHOPFRONT_WRITE_DATABASE_URL"])
        (row,) = query_rows(
            write_db,
            "SELECT stock_on_hand, stock_reserved FROM products WHERE sku = ?",
            (sku,),
            timeout=READ_WAIT,
        )
        assert row == {"stock_on_hand": STOCK, "stock_reserved": STOCK}, row
        ordered = query_rows(
            write_db,
            "SELECT o.id, o.customer_id, l.quantity FROM orders o "
            "JOIN order_lines l ON l.order_id = o.id WHERE l.sku = ?",
            (sku,),
            timeout=READ_WAIT,
        )
        assert sorted(r["id"] for r in ordered) == sorted(
            str(raw_id_of("Order", p["order"]["id"])) for p in won
        )
        assert sum(r["quantity"] for r in ordered) == STOCK
        await _catalog_agrees(api, sku)


async def _catalog_agrees(api: Api, sku: str) -> None:
    data = await api.data(
        "query($sku: String!) { product(sku: $sku) { stockAvailable inStock } }", {"sku": sku}
    )
    assert data["product"] == {"stockAvailable": 0, "inStock": False}
