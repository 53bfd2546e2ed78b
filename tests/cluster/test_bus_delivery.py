"""The change bus over a real Redis: a subscriber on a process that neither projects nor
polls often (SHOPFRONT_PROJECTORS=off, a 5 s poll) gets a change made through another
process within milliseconds, since only the bus can wake it that fast; without the bus
the same measurement shows the poll interval. And a Redis unreachable at start-up: a
warning, and the processes serve and deliver by poll."""

from __future__ import annotations

import time

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.cluster.bus_support import (
    after_placed,
    bus_connected,
    bus_metrics,
    eventually,
    readyz,
    ws_url,
)
from tests.cluster.conftest import Cluster
from tests.conftest import free_port
from tests.e2e.client import ORDER_STATUS, Api, api_client, legacy_ws, transport_ws
from tests.reliability.support import cli_output, run_cli, staff_token
from tests.servers import RedisServer

LONG_POLL = 5.0


async def _delays(cluster: Cluster, redis_url: str | None) -> list[float]:
    """Seconds from each of three mutations through the leader until a subscriber on the
    other process received its change; each mutation is sent right after the previous
    change arrived (so, without the bus, right after the follower's poll)."""
    # Without Redis, also without the database's wake-ups (tests/cluster/test_db_wake.py):
    # the poll alone.
    bus = {"SHOPFRONT_REDIS_URL": redis_url} if redis_url else {"SHOPFRONT_DB_WAKE": "false"}
    following = cluster.api(
        "following", "off", SHOPFRONT_PROJECTION_POLL_INTERVAL=str(LONG_POLL), **bus
    )
    leading = cluster.api("leading", "inline", **bus)
    if redis_url:
        await bus_connected(following, leading)
    staff = staff_token()
    delays = []
    async with api_client(leading) as lead:
        product = await lead.add_product(staff, stock=5)
        token, _ = await lead.register_customer("Bus Delay")
        order = await lead.place_order(token, [(product["sku"], 1)])
        async with (
            transport_ws(ws_url(following), token) as client,
            legacy_ws(ws_url(following), token) as legacy,
        ):
            op = await client.subscribe(ORDER_STATUS, {"id": order["id"]})
            first = (await client.next_data(op))["orderStatus"]
            assert (first["event"], first["version"]) == ("Snapshot", 1), first
            legacy_op = await legacy.start(ORDER_STATUS, {"id": order["id"]})
            first = (await legacy.next_data(legacy_op))["orderStatus"]
            assert (first["event"], first["version"]) == ("Snapshot", 1), first
            steps = after_placed(token, staff, order["id"])
            for version, (event, mutate) in enumerate(steps, start=2):
                sent = time.monotonic()
                payload = await mutate(lead)
                assert payload["userErrors"] == [], payload
                # Both WebSocket protocols; the slower of the two counts.
                for data in (
                    await client.next_data(op, timeout=3 * LONG_POLL),
                    await legacy.next_data(legacy_op, timeout=3 * LONG_POLL),
                ):
                    change = data["orderStatus"]
                    assert (change["event"], change["version"]) == (event, version), change
                delays.append(time.monotonic() - sent)
    assert "Traceback" not in cluster.logs()
    return delays


async def test_the_bus_delivers_across_processes_in_milliseconds(
    cluster: Cluster, redis: RedisServer
) -> None:
    delays = await _delays(cluster, redis.url)
    print("delays through the bus (ms):", [round(d * 1000, 1) for d in delays])
    assert max(delays) < LONG_POLL / 2, delays


async def test_without_the_bus_the_same_changes_wait_for_the_poll(cluster: Cluster) -> None:
    """The control: the measurement above can tell the bus from the poll (database
    wake-ups off too). The second and third mutations go out just after a poll, so they
    wait about a whole interval."""
    delays = await _delays(cluster, None)
    print("delays by poll (ms):", [round(d * 1000, 1) for d in delays])
    assert min(delays[1:]) > LONG_POLL / 2, delays


async def test_redis_unreachable_at_start_up_serves_and_delivers_by_poll(
    lite_cluster: Cluster,
) -> None:
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    following = lite_cluster.api("following", "off", SHOPFRONT_REDIS_URL=nowhere)
    leading = lite_cluster.api("leading", "inline", SHOPFRONT_REDIS_URL=nowhere)
    log = (lite_cluster.work / "following.log").read_text()
    assert "Redis at " in log and "is unreachable" in log, log
    for base in (following, leading):
        status, body = await readyz(base)
        assert status == 200 and body["status"] == "ready", body
        assert body["bus"] == "degraded", body
        assert (await bus_metrics(base))["connected"] == 0
    staff = staff_token()
    async with api_client(leading) as lead, api_client(following) as follow:
        product = await follow.add_product(staff, stock=5)  # through the follower
        token, _ = await lead.register_customer("No Redis")
        order = await follow.place_order(token, [(product["sku"], 1)])
        async with transport_ws(ws_url(following), token) as client:
            op = await client.subscribe(ORDER_STATUS, {"id": order["id"]})
            first = (await client.next_data(op))["orderStatus"]
            assert first["event"] == "Snapshot", first
            paid = await lead.pay(token, order["id"])
            assert paid["userErrors"] == [], paid
            change = (await client.next_data(op))["orderStatus"]
            assert (change["event"], change["version"]) == ("OrderPaid", 2), change
            shipped = await lead.ship(staff, order["id"])  # the marker: nothing in between
            assert shipped["userErrors"] == [], shipped
            [message] = (await client.very_next(op)).values()
            change = message["payload"]["data"]["orderStatus"]
            assert (change["event"], change["version"]) == ("OrderShipped", 3), change
    assert "Traceback" not in lite_cluster.logs()


async def test_a_rebuild_from_the_cli_reaches_the_servers_response_caches_through_the_bus(
    lite_cluster: Cluster, redis: RedisServer
) -> None:
    """``shopfront projections rebuild`` bumps the generations; with Redis the CLI says
    so on the bus, and a serving process that polls only every 5 s drops its cached
    answers at once (the next identical query is a miss)."""
    bus = {"SHOPFRONT_REDIS_URL": redis.url}
    following = lite_cluster.api(
        "following", "off", SHOPFRONT_PROJECTION_POLL_INTERVAL=str(LONG_POLL), **bus
    )
    leading = lite_cluster.api("leading", "inline", **bus)
    await bus_connected(following, leading)
    query = "{ products(first: 5) { edges { node { sku stockAvailable } } } }"
    async with api_client(leading) as lead, api_client(following) as follow:
        await lead.add_product(staff_token(), stock=5)
        await eventually(
            lambda: _has_product(follow, query), "the follower to see the product", 3 * LONG_POLL
        )
        await follow.data(query)
        hits, misses = await _cache_lookups(following)
        await follow.data(query)
        assert await _cache_lookups(following) == (hits + 1, misses)  # cached
        received = (await bus_metrics(following))["received"]
        result = await run_cli(lite_cluster.env(**bus), "projections", "rebuild", "catalog")
        assert result.returncode == 0, cli_output(result)

        async def woken() -> bool:
            return (await bus_metrics(following))["received"] > received

        await eventually(woken, "the CLI's message", LONG_POLL / 2)
        await follow.data(query)
        assert await _cache_lookups(following) == (hits + 1, misses + 1)  # dropped


async def _has_product(api: Api, query: str) -> bool:
    return bool((await api.data(query))["products"]["edges"])


async def _cache_lookups(base: str) -> tuple[float, float]:
    async with httpx.AsyncClient(timeout=5, trust_env=False) as http:
        text = (await http.get(f"{base}/metrics")).text
    found = dict.fromkeys(("hit", "miss"), 0.0)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "shopfront_response_cache_lookups_total":
                found[sample.labels["result"]] = sample.value
    return found["hit"], found["miss"]
