"""200 changes (50 orders through their whole life: placed, paid, shipped, delivered)
made through the leader while subscribers on another process watch, over the Redis bus:
each subscriber sees each change of its orders once, in order (per order, versions 1, 2,
3, 4 and nothing else). Then the same with Redis SIGKILLed in the middle of the stream
and restarted on its port 3 s later: the fallback (the order_changes tail) delivers
meanwhile, the processes reconnect (/metrics) and nothing is lost or repeated.

An order's life has four events, so 200 changes take 50 orders (10 per customer)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict

from tests.cluster.bus_support import bus_connected, bus_metrics, readyz, ws_url
from tests.cluster.conftest import Cluster
from tests.e2e.client import Api, TransportWsClient, api_client, follow_my_orders, transport_ws
from tests.reliability.support import staff_token
from tests.servers import RedisServer

CUSTOMERS = 5
ORDERS_PER_CUSTOMER = 10
LIFE = ("OrderPlaced", "OrderPaid", "OrderShipped", "OrderDelivered")
OUTAGE = 3.0


async def _life(api: Api, staff: str, token: str, sku: str) -> str:
    """One order from placed to delivered through ``api``; its id."""
    order = await api.place_order(token, [(sku, 1)])
    for payload in (
        await api.pay(token, order["id"]),
        await api.ship(staff, order["id"]),
        await api.deliver(staff, order["id"]),
    ):
        assert payload["userErrors"] == [], payload
    return str(order["id"])


async def _read_until(
    client: TransportWsClient, op: str, markers: set[str], seen: list[tuple[str, int, str]]
) -> None:
    """Append every change of ``op`` to ``seen`` until the OrderPaid of each order in
    ``markers`` has arrived."""
    waiting = set(markers)
    while waiting:
        message = await client.receive_for(op, timeout=30)
        assert message["type"] == "next", message
        change = message["payload"]["data"]["myOrders"]
        seen.append((change["order"]["id"], change["version"], change["event"]))
        if change["event"] == "OrderPaid":
            waiting.discard(change["order"]["id"])


def _check(seen: list[tuple[str, int, str]], orders: set[str], markers: set[str]) -> None:
    by_order: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for order_id, version, event in seen:
        by_order[order_id].append((version, event))
    for order_id in orders:
        assert by_order[order_id] == list(enumerate(LIFE, start=1)), (order_id, by_order[order_id])
    for order_id in markers:  # placed before the subscription: at most its placement late
        assert by_order[order_id][-1] == (2, "OrderPaid"), by_order[order_id]
        assert by_order[order_id][:-1] in ([], [(1, "OrderPlaced")]), by_order[order_id]
    assert set(by_order) <= orders | markers, set(by_order) - orders - markers


async def _stream(cluster: Cluster, redis: RedisServer, *, kill_redis: bool) -> None:
    bus = {"SHOPFRONT_REDIS_URL": redis.url}
    following = cluster.api("following", "off", SHOPFRONT_PROJECTION_POLL_INTERVAL="0.5", **bus)
    leading = cluster.api("leading", "inline", **bus)
    await bus_connected(following, leading)
    staff = staff_token()
    async with api_client(leading) as lead, contextlib.AsyncExitStack() as stack:
        sku = (await lead.add_product(staff, stock=1000))["sku"]
        customers = [(await lead.register_customer(f"Stream {i}"))[0] for i in range(CUSTOMERS)]
        # One order each before subscribing: the barrier of follow_my_orders, and later
        # the marker that ends the reading (its payment comes after every stream change).
        markers = [str((await lead.place_order(t, [(sku, 1)]))["id"]) for t in customers]
        watchers = []  # (client, op, the marker ids it hears)
        staff_ws = await stack.enter_async_context(transport_ws(ws_url(following), staff))
        watchers.append((staff_ws, await follow_my_orders(staff_ws, markers[0]), set(markers)))
        for token, marker in zip(customers, markers, strict=True):
            client = await stack.enter_async_context(transport_ws(ws_url(following), token))
            watchers.append((client, await follow_my_orders(client, marker), {marker}))
        seen: list[list[tuple[str, int, str]]] = [[] for _ in watchers]
        readers = [
            asyncio.create_task(_read_until(client, op, heard, into))
            for (client, op, heard), into in zip(watchers, seen, strict=True)
        ]

        async def lives(rounds: range) -> list[tuple[int, str]]:
            """Orders' whole lives, all at once; (customer index, order id) each."""
            who = [i for _ in rounds for i in range(CUSTOMERS)]
            ids = await asyncio.gather(*(_life(lead, staff, customers[i], sku) for i in who))
            return list(zip(who, ids, strict=True))

        try:
            thirds = (range(0, 3), range(3, 6), range(6, ORDERS_PER_CUSTOMER))
            orders = await lives(thirds[0])
            if kill_redis:
                middle = asyncio.create_task(lives(thirds[1]))
                redis.kill()  # while the second third's mutations are in flight
                killed = time.monotonic()
                orders += await middle
                status, body = await readyz(following)
                assert status == 200 and body["bus"] == "degraded", body
                await asyncio.sleep(max(OUTAGE - (time.monotonic() - killed), 0))
                redis.restart()
                await bus_connected(following, leading, reconnected=True)
            else:
                orders += await lives(thirds[1])
            orders += await lives(thirds[2])
            assert len(orders) * len(LIFE) == 200
            for token, marker in zip(customers, markers, strict=True):
                paid = await lead.pay(token, marker)
                assert paid["userErrors"] == [], paid
            await asyncio.gather(*readers)
        finally:
            for reader in readers:
                reader.cancel()
    staff_seen = seen[0]
    _check(staff_seen, {order_id for _, order_id in orders}, set(markers))
    for index, marker in enumerate(markers):
        own = {order_id for i, order_id in orders if i == index}
        assert len(own) == ORDERS_PER_CUSTOMER
        _check(seen[index + 1], own, {marker})
    for base, direction in ((following, "received"), (leading, "sent")):
        found = await bus_metrics(base)
        print(base, found)
        assert found["connected"] == 1, found
        assert found[direction] > 0, found
        if kill_redis:
            assert found["reconnects"] >= 1, found
    assert "Traceback" not in cluster.logs()


async def test_200_changes_each_seen_once_in_order(cluster: Cluster, redis: RedisServer) -> None:
    await _stream(cluster, redis, kill_redis=False)


async def test_redis_killed_mid_stream_loses_and_repeats_nothing(
    cluster: Cluster, redis: RedisServer
) -> None:
    await _stream(cluster, redis, kill_redis=True)
