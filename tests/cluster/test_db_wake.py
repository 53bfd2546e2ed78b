"""Waking other processes through the database, without Redis (``api/cluster/db_wake.py``):
PostgreSQL LISTEN/NOTIFY, SQLite's data_version watched. Every process polls only every
60 s here, so a change that arrives within a second or two was delivered by a wake-up:
a subscriber on a process that does not project gets a change made through another
process, and a mutation through an API process that does not project (beside a
``shopfront project`` process) returns from its read-your-writes wait. The controls, with
SHOPFRONT_DB_WAKE=false and a 2.5 s poll, show that the same measurements see the poll
when nothing wakes the processes."""

from __future__ import annotations

import asyncio
import time

from tests.cluster.bus_support import after_placed, metric_samples, ws_url
from tests.cluster.conftest import Cluster
from tests.e2e.client import ORDER_STATUS, api_client, transport_ws
from tests.reliability.support import staff_token

LONG_POLL = "60"
# Well under the poll: only a wake-up explains a delay below this.
PROMPT = 3.0
CONTROL_POLL = 2.5


async def wake_metrics(base: str) -> dict[str, float]:
    found: dict[str, float] = {}
    for sample in await metric_samples(base):
        if sample.name == "shopfront_db_wake_listening":
            found["listening"] = sample.value
        elif sample.name == "shopfront_db_wake_messages_total":
            found["messages"] = sample.value
    return found


async def subscriber_delays(cluster: Cluster, **env: str) -> tuple[list[float], list[str]]:
    """Seconds from each of three mutations through the leading process until a
    subscriber on the other (not projecting) process received its change, each mutation
    sent right after the previous change arrived; and the two processes' URLs (the
    follower first)."""
    following = cluster.api("following", "off", **env)
    leading = cluster.api("leading", "inline", **env)
    staff = staff_token()
    delays = []
    async with api_client(leading) as lead:
        product = await lead.add_product(staff, stock=5)
        token, _ = await lead.register_customer("Wake Delay")
        order = await lead.place_order(token, [(product["sku"], 1)])
        async with transport_ws(ws_url(following), token) as client:
            op = await client.subscribe(ORDER_STATUS, {"id": order["id"]})
            first = (await client.next_data(op))["orderStatus"]
            assert (first["event"], first["version"]) == ("Snapshot", 1), first
            steps = after_placed(token, staff, order["id"])
            for version, (event, mutate) in enumerate(steps, start=2):
                sent = time.monotonic()
                payload = await mutate(lead)
                assert payload["userErrors"] == [], payload
                change = (await client.next_data(op, timeout=30))["orderStatus"]
                assert (change["event"], change["version"]) == (event, version), change
                delays.append(time.monotonic() - sent)
    assert "Traceback" not in cluster.logs()
    return delays, [following, leading]


async def place_delays(cluster: Cluster, gap: float = 0.0, **env: str) -> list[float]:
    """Seconds each of four placeOrder took through an API process that does not project,
    beside a ``shopfront project`` process (each waits for the projector to apply it);
    ``gap`` seconds between one's answer and the next one's sending."""
    api = cluster.api("api", "off", SHOPFRONT_READ_YOUR_WRITES_TIMEOUT="30", **env)
    cluster.projector("projector", **env)
    delays = []
    async with api_client(api) as client:
        product = await client.add_product(staff_token(), stock=50)
        token, _ = await client.register_customer("Wake Placer")
        for n in range(4):
            if n and gap:
                await asyncio.sleep(gap)
            sent = time.monotonic()
            order = await client.place_order(token, [(product["sku"], 1)])
            delays.append(time.monotonic() - sent)
            assert order["status"] == "PLACED", order
    assert "Traceback" not in cluster.logs()
    return delays


async def test_a_subscriber_gets_another_process_s_change_at_once(cluster: Cluster) -> None:
    delays, bases = await subscriber_delays(cluster, SHOPFRONT_PROJECTION_POLL_INTERVAL=LONG_POLL)
    print("subscriber delays woken by the database (ms):", [round(d * 1000, 1) for d in delays])
    assert max(delays) < PROMPT, delays
    for base in bases:
        found = await wake_metrics(base)
        assert found["listening"] == 1, (base, found)
    # The follower was woken (NOTIFY from the leader, or the read file's data_version).
    assert (await wake_metrics(bases[0]))["messages"] >= 3


async def test_read_your_writes_beside_a_projector_process_returns_at_once(
    cluster: Cluster,
) -> None:
    delays = await place_delays(cluster, SHOPFRONT_PROJECTION_POLL_INTERVAL=LONG_POLL)
    print("placeOrder woken by the database (ms):", [round(d * 1000, 1) for d in delays])
    assert max(delays) < PROMPT, delays


async def test_control_without_the_wake_changes_wait_for_the_poll(cluster: Cluster) -> None:
    """The measurements above can tell a wake-up from the poll: with SHOPFRONT_DB_WAKE=false
    the second and third changes (sent just after a poll) wait about a whole interval."""
    env = {"SHOPFRONT_PROJECTION_POLL_INTERVAL": str(CONTROL_POLL), "SHOPFRONT_DB_WAKE": "false"}
    delays, bases = await subscriber_delays(cluster, **env)
    print("subscriber delays by poll (ms):", [round(d * 1000, 1) for d in delays])
    assert min(delays[1:]) > CONTROL_POLL / 2, delays
    for base in bases:
        assert await wake_metrics(base) == {}, base  # no wake-ups configured at all


async def test_control_without_the_wake_placing_waits_for_the_projector_s_poll(
    lite_cluster: Cluster,
) -> None:
    """Each placeOrder waits for the projector process's next poll. Sent 0.5 s after the
    previous answer: a leader that has just applied an order steps once more at once (no
    sleep after a step that advanced), and a placeOrder committed within that step would
    be applied without any wake-up; 0.5 s later only the next poll (about 2 s away) can."""
    env = {"SHOPFRONT_PROJECTION_POLL_INTERVAL": str(CONTROL_POLL), "SHOPFRONT_DB_WAKE": "false"}
    delays = await place_delays(lite_cluster, gap=0.5, **env)
    print("placeOrder by poll (ms):", [round(d * 1000, 1) for d in delays])
    assert min(delays[1:]) > CONTROL_POLL / 2, delays
