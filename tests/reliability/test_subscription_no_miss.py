"""Subscriptions miss nothing and repeat nothing: 100 order changes fired as fast as the
server takes them, across 40 orders, while subscribers watch over graphql-transport-ws.

Each ``orderStatus`` subscriber gets its Snapshot, then every later change of its order
exactly once, in version order, with no gap. A ``myOrders`` subscriber gets every change
of the caller's orders exactly once, in per-order version order, and nobody else's.

Mechanisms under test: a subscription registers with the broker before it reads its
snapshot and drops what the snapshot covered (by version); the runner publishes each
committed change once, in log order.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any, cast

import pytest

from tests.conftest import LiveApp
from tests.e2e.client import (
    Api,
    Json,
    TransportWsClient,
    api_client,
    follow_my_orders,
    transport_ws,
    unique,
)
from tests.reliability.support import staff_token

WAIT = 10.0  # every wait for messages is bounded by this
RACE_SPACING = 0.02  # between the racing subscriptions: spreads them over the changes
ORDERS = 40
WATCH_CONNECTIONS = 5
EVENTS = {
    "deliver": ["OrderPlaced", "OrderPaid", "OrderShipped", "OrderDelivered"],
    "cancel": ["OrderPlaced", "OrderPaid", "OrderCancelled"],
}
STATUSES = {
    "deliver": ["PLACED", "PAID", "SHIPPED", "DELIVERED"],
    "cancel": ["PLACED", "PAID", "CANCELLED"],
}
ORDER_STATUS = """subscription($id: ID!) {
  orderStatus(orderId: $id) { event version order { id status version } }
}"""


class Collector:
    """Reads every message of one connection into per-operation lists, in arrival order."""

    def __init__(self, client: TransportWsClient, ignore: frozenset[str] = frozenset()) -> None:
        self.client = client
        self.ignore = ignore
        self.messages: dict[str, list[Json]] = defaultdict(list)
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        # Anything follow_my_orders buffered while it waited for its barrier comes first.
        for buffered_id, buffered in self.client._buffer.items():
            if buffered and buffered_id not in self.ignore:
                self.messages[buffered_id].extend(buffered)
        while True:
            message = await self.client.receive(timeout=3600)
            op_id = message.get("id")
            assert isinstance(op_id, str), message
            if op_id not in self.ignore:
                self.messages[op_id].append(message)

    async def close(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


def data_of(message: Json) -> Json:
    assert message["type"] == "next", message
    assert not message["payload"].get("errors"), message
    payload = cast(Json, message["payload"]["data"])
    return cast(Json, payload.get("orderStatus") or payload.get("myOrders"))


async def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {WAIT:g} s: {what}")
        await asyncio.sleep(0.02)


async def lifecycle(api: Api, order: Json, owner: str, staff: str) -> None:
    """Move one order along its plan, each change as soon as the previous one returned."""
    steps: list[Any]
    if order["plan"] == "deliver":
        steps = [(api.pay, owner), (api.ship, staff), (api.deliver, staff)]
    else:
        steps = [(api.pay, owner), (api.cancel, owner)]
    for step, token in steps:
        payload = await step(token, order["id"])
        assert payload["userErrors"] == [], payload


def check_order_stream(messages: list[Json], order: Json, *, from_snapshot: int | None) -> int:
    """Snapshot, then versions snapshot+1 .. final, each once and in order; returns how
    many changes followed the snapshot."""
    events, statuses = EVENTS[order["plan"]], STATUSES[order["plan"]]
    assert messages, f"nothing for order {order['id']}"
    snapshot = data_of(messages[0])
    assert snapshot["event"] == "Snapshot", messages[0]
    start = snapshot["version"]
    assert 1 <= start <= len(events), snapshot
    if from_snapshot is not None:
        assert start == from_snapshot, snapshot
    assert snapshot["order"] == {"id": order["id"], "status": statuses[start - 1], "version": start}
    changes = [data_of(m) for m in messages[1:]]
    versions = [c["version"] for c in changes]
    assert versions == list(range(start + 1, len(events) + 1)), (
        f"order {order['id']}: snapshot at {start}, then versions {versions}"
    )
    for change in changes:
        v = change["version"]
        assert change["event"] == events[v - 1], change
        assert change["order"] == {"id": order["id"], "status": statuses[v - 1], "version": v}
    return len(changes)


@pytest.mark.timeout(90)
async def test_no_change_missed_or_repeated(live_app: LiveApp) -> None:
    staff = staff_token("staff-subscriptions")
    async with api_client(live_app.base_url) as api, contextlib.AsyncExitStack() as stack:
        sku = unique("SUBS").upper()
        await api.add_product(staff, sku=sku, stock=10_000)
        (alice, _), (bob, _) = await asyncio.gather(
            api.register_customer("Alice"), api.register_customer("Bob")
        )
        # 20 orders delivered (3 changes each) + 20 paid then cancelled (2 each) = 100.
        owners = [bob if n % 4 == 3 else alice for n in range(ORDERS)]
        placed = await asyncio.gather(*(api.place_order(t, [(sku, 1)]) for t in owners))
        orders = [
            {"id": o["id"], "plan": "deliver" if n % 2 == 0 else "cancel", "owner": owners[n]}
            for n, o in enumerate(placed)
        ]
        assert sum(len(EVENTS[o["plan"]]) - 1 for o in orders) == 100
        alice_orders = {o["id"]: o for o in orders if o["owner"] == alice}
        first_of_alice = next(iter(alice_orders))

        # myOrders for Alice, live before anything changes (barrier: an orderStatus
        # snapshot on the same connection).
        mine_ws = await stack.enter_async_context(transport_ws(live_app.ws_url, alice))
        mine_op = await follow_my_orders(mine_ws, first_of_alice)
        mine = Collector(mine_ws, ignore=frozenset({str(int(mine_op) + 1)}))

        # Every order watched by a staff connection, and one order by 2 connections of
        # its owner, before anything changes: each Snapshot (version 1) must arrive
        # first, then every change.
        watched: list[tuple[Collector, str, Json, bool]] = []
        collectors: list[Collector] = [mine]
        staff_ws: list[TransportWsClient] = []
        for k in range(WATCH_CONNECTIONS):
            ws = await stack.enter_async_context(transport_ws(live_app.ws_url, staff))
            staff_ws.append(ws)
            collector = Collector(ws)
            collectors.append(collector)
            for order in orders[k::WATCH_CONNECTIONS]:
                op = await ws.subscribe(ORDER_STATUS, {"id": order["id"]})
                watched.append((collector, op, order, True))
        same_order = orders[0]
        assert same_order["owner"] == alice
        for _ in range(2):
            ws = await stack.enter_async_context(transport_ws(live_app.ws_url, alice))
            collector = Collector(ws)
            collectors.append(collector)
            op = await ws.subscribe(ORDER_STATUS, {"id": same_order["id"]})
            watched.append((collector, op, same_order, True))
        markers: dict[Collector, str] = {}
        try:
            await wait_until(
                lambda: all(c.messages[op] for c, op, _, _ in watched), "the first snapshots"
            )

            # 100 changes, as fast as the server takes them: orders in parallel, each
            # order's changes in sequence. Meanwhile every order gets one more
            # subscription, racing its changes: its Snapshot lands anywhere in the
            # order's life, and what follows must continue from there, without a gap
            # or a repeat.
            started = time.monotonic()
            firing = asyncio.gather(*(lifecycle(api, o, o["owner"], staff) for o in orders))
            for n, order in enumerate(orders):
                k = n % WATCH_CONNECTIONS
                op = await staff_ws[k].subscribe(ORDER_STATUS, {"id": order["id"]})
                watched.append((collectors[k + 1], op, order, False))
                await asyncio.sleep(RACE_SPACING)
            await asyncio.wait_for(firing, 30)
            fired_in = time.monotonic() - started

            def final(order: Json) -> int:
                return len(EVENTS[order["plan"]])

            def all_arrived() -> bool:
                for c, op, order, _ in watched:
                    got = c.messages[op]
                    if not got or data_of(got[-1])["version"] < final(order):
                        return False
                expected = sum(final(o) - 1 for o in alice_orders.values())
                return len(mine.messages[mine_op]) >= expected

            await wait_until(all_arrived, "every subscriber's last change")
            # A marker: a new order of Alice's, watched on every connection, then paid.
            # Each connection sends in the order of the changes, so a duplicate of any
            # change above would arrive before the marker's OrderPaid: once every
            # connection has the marker, everything it will ever get is collected.
            marker = (await api.place_order(alice, [(sku, 1)]))["id"]
            for c in collectors:
                op = await c.client.subscribe(ORDER_STATUS, {"id": marker})
                markers[c] = op
            await wait_until(
                lambda: all(c.messages[op] for c, op in markers.items()), "the marker snapshots"
            )
            payload = await api.pay(alice, marker)
            assert payload["userErrors"] == [], payload

            def marked() -> bool:
                return all(
                    data_of(c.messages[op][-1])["event"] == "OrderPaid" for c, op in markers.items()
                )

            await wait_until(marked, "the marker on every connection")
        finally:
            for c in collectors:
                await c.close()

        delivered = 0
        raced: Counter[str] = Counter()
        for c, op, order, primary in watched:
            delivered += check_order_stream(
                c.messages[op], order, from_snapshot=1 if primary else None
            )
            if not primary:
                start = data_of(c.messages[op][0])["version"]
                raced["final" if start == len(EVENTS[order["plan"]]) else f"v{start}"] += 1
        for c, op in markers.items():
            assert [(data_of(m)["event"], data_of(m)["version"]) for m in c.messages[op]] == [
                ("Snapshot", 1),
                ("OrderPaid", 2),
            ], c.messages[op]
        for c in collectors[1:]:
            ops = {op for owner, op, _, _ in watched if owner is c}
            assert set(c.messages) == {*ops, markers[c]}, "messages for operations nobody started"
        assert set(mine.messages) == {mine_op, markers[mine]}, mine.messages.keys()

        # myOrders: Alice's changes only, each once, in version order per order; the
        # marker's two changes last.
        *changes, placed_marker, paid_marker = mine.messages[mine_op]
        assert [
            (data_of(m)["order"]["id"], data_of(m)["event"]) for m in (placed_marker, paid_marker)
        ] == [
            (marker, "OrderPlaced"),
            (marker, "OrderPaid"),
        ]
        seen: dict[str, list[int]] = defaultdict(list)
        for message in changes:
            event = data_of(message)
            order_id = event["order"]["id"]
            assert order_id in alice_orders, f"myOrders showed someone else's order: {event}"
            order = alice_orders[order_id]
            v = event["version"]
            assert event["event"] == EVENTS[order["plan"]][v - 1], event
            assert event["order"]["status"] == STATUSES[order["plan"]][v - 1], event
            seen[order_id].append(v)
        assert seen.keys() == alice_orders.keys()
        for order_id, versions in seen.items():
            want = list(range(2, len(EVENTS[alice_orders[order_id]["plan"]]) + 1))
            assert versions == want, f"myOrders for {order_id}: {versions}"
        print(
            f"\nsubscriptions: 100 changes on {ORDERS} orders fired in {fired_in:.2f} s; "
            f"{len(watched)} orderStatus subscriptions got {delivered} changes, "
            f"myOrders got {len(mine.messages[mine_op])} for {len(alice_orders)} orders; "
            f"racing subscriptions' snapshots: {dict(sorted(raced.items()))}"
        )
