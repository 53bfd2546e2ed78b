"""What the change-bus tests share: the bus's state as a process reports it (/metrics,
/readyz), and bounded waits on it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import httpx
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from tests.e2e.client import Api, Json

WAIT = 30.0
Step = Callable[[Api], Awaitable[Json]]


async def metric_samples(base: str) -> list[Sample]:
    """Every sample of ``base``'s /metrics."""
    async with httpx.AsyncClient(timeout=5, trust_env=False) as http:
        text = (await http.get(f"{base}/metrics")).text
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


async def bus_metrics(base: str) -> dict[str, float]:
    """connected, reconnects, sent, received: the bus's samples in ``base``'s /metrics."""
    found: dict[str, float] = {}
    for sample in await metric_samples(base):
        if sample.name == "shopfront_bus_connected":
            found["connected"] = sample.value
        elif sample.name == "shopfront_bus_reconnects_total":
            found["reconnects"] = sample.value
        elif sample.name == "shopfront_bus_messages_total":
            found[sample.labels["direction"]] = sample.value
    return found


async def readyz(base: str) -> tuple[int, dict[str, object]]:
    async with httpx.AsyncClient(timeout=5, trust_env=False) as http:
        response = await http.get(f"{base}/readyz")
    return response.status_code, response.json()


async def eventually(
    check: Callable[[], Awaitable[bool]], what: str, timeout: float = WAIT
) -> None:
    """Wait until ``check()`` holds (polled every 50 ms), at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def bus_connected(*bases: str, reconnected: bool = False) -> None:
    """Wait until every process says its bus is connected (and, with ``reconnected``,
    that it has reconnected at least once)."""

    async def check() -> bool:
        for base in bases:
            found = await bus_metrics(base)
            if found.get("connected") != 1:
                return False
            if reconnected and found.get("reconnects", 0) < 1:
                return False
        return True

    await eventually(check, f"the bus to be connected in {bases}")


def ws_url(base: str) -> str:
    return base.replace("http", "ws", 1) + "/graphql"


def after_placed(token: str, staff: str, order_id: str) -> list[tuple[str, Step]]:
    """An order's life after it is placed: (the event each step makes, the mutation that
    makes it, through whichever process's client it is given)."""
    return [
        ("OrderPaid", lambda api: api.pay(token, order_id)),
        ("OrderShipped", lambda api: api.ship(staff, order_id)),
        ("OrderDelivered", lambda api: api.deliver(staff, order_id)),
    ]
