"""50 customers race for the last 10 units through two API processes on PostgreSQL (one
projecting inline, one with projectors off): exactly 10 are sold, the rest are told
OUT_OF_STOCK, and both processes then show no stock left."""

from __future__ import annotations

import asyncio
from collections import Counter

from tests.cluster.conftest import Cluster
from tests.e2e.client import Api, Json, api_client, unique
from tests.reliability.support import staff_token

STOCK = 10
BUYERS = 50


async def test_fifty_buyers_on_two_processes_buy_exactly_the_stock(pg_cluster: Cluster) -> None:
    urls = [pg_cluster.api("inline", "inline"), pg_cluster.api("off", "off")]
    async with api_client(urls[0]) as one, api_client(urls[1]) as two:
        apis = [one, two]
        sku = unique("RACE2").upper()
        await one.add_product(staff_token(), sku=sku, stock=STOCK)
        buyers = await asyncio.gather(
            *(apis[n % 2].register_customer(f"Racer {n}") for n in range(BUYERS))
        )

        async def buy(api: Api, token: str) -> Json:
            return await api.order_mutation(
                "placeOrder",
                "PlaceOrderInput",
                {"lines": [{"sku": sku, "quantity": 1}], "idempotencyKey": unique("race")},
                token=token,
                fields="id status",
            )

        payloads = await asyncio.wait_for(
            asyncio.gather(*(buy(apis[n % 2], token) for n, (token, _) in enumerate(buyers))), 60
        )
        won = [p for p in payloads if not p["userErrors"]]
        codes = Counter(e["code"] for p in payloads for e in p["userErrors"])
        assert len(won) == STOCK, f"{len(won)} orders for {STOCK} units"
        assert all(p["order"]["status"] == "PLACED" for p in won)
        assert codes == {"OUT_OF_STOCK": BUYERS - STOCK}, codes
        for api in apis:
            assert await _stock_settles_at_zero(api, sku)
    assert "Traceback" not in pg_cluster.logs()


async def _stock_settles_at_zero(api: Api, sku: str) -> bool:
    """The process's read model shows no stock left (a process that does not project
    learns of the last sale within a poll)."""
    for _ in range(200):
        if await api.stock_of(sku) == 0:
            return True
        await asyncio.sleep(0.05)
    return False
