"""The express lane of a subscription (api.ws.pubsub, api.ws.fanout.send_now): a change offered
while the consumer waits is sent at once; a send that has to wait (a full socket buffer)
finishes before anything queued after it is yielded; a send to a closed socket or a lane
that fails loses nothing for the other subscribers."""

from __future__ import annotations

import asyncio
import datetime as dt

from starlette.websockets import WebSocketDisconnect

from api.ws.fanout import send_now
from api.ws.pubsub import Delivery, OrderBroker
from projections.base import OrderChange


def change(version: int) -> OrderChange:
    return OrderChange(
        order_id="o1",
        customer_id="c1",
        version=version,
        event="OrderPaid",
        occurred_at=dt.datetime(2026, 12, 1, tzinfo=dt.UTC),
        doc={"id": "o1", "version": version},
    )


async def consume(changes: object, log: list[tuple[str, int]]) -> None:
    async for item in changes:  # type: ignore[attr-defined]
        log.append(("yielded", item.version))


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_send_that_waits_finishes_before_what_was_queued_behind_it() -> None:
    broker = OrderBroker()
    subscription = broker.subscribe("order:o1")
    buffer_full = asyncio.Event()
    log: list[tuple[str, int]] = []

    async def send(version: int) -> None:  # like uvicorn's send: waits while paused
        if version == 2:
            await buffer_full.wait()
        log.append(("sent", version))

    def lane(offered: OrderChange) -> Delivery:
        return send_now(send(offered.version))

    subscription.express = lane
    consumer = asyncio.ensure_future(consume(subscription.changes(after=1), log))
    await settle()

    await broker.publish([change(1)])  # covered by the snapshot: dropped
    await broker.publish([change(2)])  # express, but the send has to wait
    await broker.publish([change(3)])  # queued behind it
    await broker.publish([change(4)])
    await settle()
    assert log == []
    buffer_full.set()
    await settle()
    assert log == [("sent", 2), ("yielded", 3), ("yielded", 4)]

    await broker.publish([change(5)])  # waiting again, nothing in flight: sent at once
    assert log[-1] == ("sent", 5)
    await broker.publish([change(5)])  # a repeat of a version already sent: dropped
    await settle()
    assert log[-1] == ("sent", 5) and len(log) == 4
    assert (broker.express_deliveries, broker.queued_deliveries) == (2, 2)
    consumer.cancel()


async def test_a_closed_socket_or_a_failing_lane_stops_nobody_else() -> None:
    broker = OrderBroker()
    gone, failing, healthy = (broker.subscribe("customer:c1") for _ in range(3))
    sent: list[int] = []

    async def closed_socket(version: int) -> None:
        raise WebSocketDisconnect(1006)

    async def socket(version: int) -> None:
        sent.append(version)

    def broken(offered: OrderChange) -> Delivery:
        raise RuntimeError("boom")

    gone.express = lambda offered: send_now(closed_socket(offered.version))
    failing.express = broken
    healthy.express = lambda offered: send_now(socket(offered.version))
    logs: list[list[tuple[str, int]]] = [[], [], []]
    consumers = [
        asyncio.ensure_future(consume(s.changes(), log))
        for s, log in zip((gone, failing, healthy), logs, strict=True)
    ]
    await settle()
    await broker.publish([change(2), change(3)])
    await settle()
    assert sent == [2, 3]
    # The failing lane's changes went to its stream instead: nothing is lost.
    assert logs == [[], [("yielded", 2), ("yielded", 3)], []]
    for consumer in consumers:
        consumer.cancel()
