"""What several processes share through Redis: a persisted query registered through one
is served by hash by another, and one client's rate limit holds across both (each
process alone would allow the whole burst). And a Redis that stops answering (SIGSTOP)
does not stall a mutation: it falls back within the Redis timeout, /readyz says the bus
is degraded, and it comes back once Redis answers again."""

from __future__ import annotations

import hashlib
import json
import time

import httpx

from tests.cluster.bus_support import bus_connected, bus_metrics, eventually, readyz
from tests.cluster.conftest import Cluster
from tests.e2e.client import api_client
from tests.reliability.support import staff_token
from tests.servers import RedisServer

QUERY = "query Shared { products(first: 1) { edges { cursor } } }"
BURST = 10


def _persisted(query: str | None) -> dict[str, object]:
    digest = hashlib.sha256(QUERY.encode()).hexdigest()
    body: dict[str, object] = {
        "extensions": {"persistedQuery": {"version": 1, "sha256Hash": digest}}
    }
    if query is not None:
        body["query"] = query
    return body


async def test_a_persisted_query_registered_on_one_process_is_served_by_another(
    lite_cluster: Cluster, redis: RedisServer
) -> None:
    bus = {"SHOPFRONT_REDIS_URL": redis.url}
    first = lite_cluster.api("first", "inline", **bus)
    second = lite_cluster.api("second", "off", **bus)
    await bus_connected(first, second)
    async with httpx.AsyncClient(timeout=10, trust_env=False) as http:
        unknown = (await http.post(f"{first}/graphql", json=_persisted(None))).json()
        assert unknown["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
        registered = await http.post(f"{first}/graphql", json=_persisted(QUERY))
        assert registered.status_code == 200 and "errors" not in registered.json()
        by_post = await http.post(f"{second}/graphql", json=_persisted(None))
        assert by_post.status_code == 200, by_post.text
        assert by_post.json()["data"] == registered.json()["data"]
        extensions = json.dumps(_persisted(None)["extensions"])
        by_get = await http.get(f"{second}/graphql", params={"extensions": extensions})
        assert by_get.status_code == 200 and by_get.json()["data"] == registered.json()["data"]
    assert "Traceback" not in lite_cluster.logs()


async def test_a_rate_limit_holds_across_processes(
    lite_cluster: Cluster, redis: RedisServer
) -> None:
    limits = {
        "SHOPFRONT_REDIS_URL": redis.url,
        "SHOPFRONT_RATE_LIMIT_PER_SECOND": "0.01",  # no refill worth a token in the test
        "SHOPFRONT_RATE_LIMIT_BURST": str(BURST),
    }
    first = lite_cluster.api("first", "inline", **limits)
    second = lite_cluster.api("second", "off", **limits)
    await bus_connected(first, second)
    headers = {"Authorization": f"Bearer {staff_token('staff-rate-limited')}"}
    statuses: dict[str, list[int]] = {first: [], second: []}
    async with httpx.AsyncClient(timeout=10, trust_env=False, headers=headers) as http:
        for base, count in ((first, 6), (second, 6)):
            for _ in range(count):
                response = await http.post(f"{base}/graphql", json={"query": QUERY})
                statuses[base].append(response.status_code)
        refused = await http.post(f"{second}/graphql", json={"query": QUERY})
    assert statuses[first] == [200] * 6, statuses
    assert statuses[second] == [200] * 4 + [429] * 2, statuses
    body = refused.json()
    assert body["errors"][0]["extensions"]["code"] == "RATE_LIMITED", body
    assert int(refused.headers["retry-after"]) >= 1


async def test_a_redis_that_stops_answering_does_not_stall_a_mutation(
    lite_cluster: Cluster, redis: RedisServer
) -> None:
    base = lite_cluster.api("only", "inline", SHOPFRONT_REDIS_URL=redis.url)
    await bus_connected(base)
    staff = staff_token()
    async with api_client(base) as api:
        await api.add_product(staff)
        redis.pause()
        try:
            started = time.monotonic()
            token, _ = await api.register_customer("Slow Redis")
            product = await api.add_product(staff, stock=3)
            order = await api.place_order(token, [(product["sku"], 1)])
            took = time.monotonic() - started
            print(f"three mutations with Redis stopped: {took * 1000:.0f} ms")
            assert took < 2.0, took
            assert order["status"] == "PLACED"

            async def degraded() -> bool:
                status, body = await readyz(base)
                return status == 200 and body["bus"] == "degraded"

            await eventually(degraded, "/readyz to say the bus is degraded")
            assert (await bus_metrics(base))["connected"] == 0
        finally:
            redis.resume()
        await bus_connected(base, reconnected=True)
        paid = await api.pay(token, order["id"])
        assert paid["userErrors"] == [] and paid["order"]["status"] == "PAID", paid
    assert "Traceback" not in lite_cluster.logs()
