"""The response cache against a real server process: invisible to clients except in speed.

Every change reaches cached answers at once (mutations wait for the read models, whose
positions the cache checks); a rebuild or retry run by another process (the CLI) reaches
them within a poll of the server's projection runner (generation in the checkpoint row);
nobody is served someone else's cached answer; the staff ``projections`` query, which
reads the runner's memory, is never cached; cached answers carry a fresh
``extensions.readModel``; ``SHOPFRONT_RESPONSE_CACHE_MB=0`` turns it off.

Where a test needs to know that an answer really came from the cache, it reads the hit
and miss counters at /metrics (this server's own, nobody else asks it anything).

Mechanisms under test: api.http.response_cache with api.http.operation (lookup before executing, put
after), the tables recorded by projections.reads.fetch_all (DataLoader batches included), the
runner's (generation, position) per projector, and the generation bumped by
``shopfront projections rebuild`` and ``retry``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest

from api.graphql.ids import raw_id_of
from tests.conftest import _env_for, fresh_settings
from tests.reliability.support import (
    PROJECTIONS,
    Db,
    Json,
    Server,
    add_product,
    cli_output,
    connect,
    customer_token,
    execute,
    graphql,
    place,
    query_rows,
    register,
    run_cli,
    staff_token,
)

PRODUCT = "query($sku: String!) { product(sku: $sku) { sku name priceCents stockAvailable } }"
MY_ORDERS = """{ myOrders(first: 20) { edges { node { id status totalCents
  lines { sku quantity unitPriceCents product { sku name priceCents } } } } } }"""
ME = "{ me { name } }"
CHANGE_PRICE = """mutation($input: ChangeProductPriceInput!) {
  changeProductPrice(input: $input) { product { sku priceCents } userErrors { code message } } }"""
RESTOCK = """mutation($input: RestockProductInput!) {
  restockProduct(input: $input) { product { sku stockAvailable } userErrors { code message } } }"""
LOOKUPS = re.compile(
    r'^shopfront_response_cache_lookups_total\{result="(hit|miss)"\} (\S+)$', re.MULTILINE
)
HELD = re.compile(r"^shopfront_response_cache_bytes (\S+)$", re.MULTILINE)
# A rebuild or retry by another process reaches the server within one poll (0.2 s here);
# this is the bound the tests allow, with room for a slow machine.
NOTICED_WITHIN = 5.0


@dataclasses.dataclass(frozen=True)
class Counts:
    hits: int
    misses: int
    held: float


async def counts(http: httpx.AsyncClient) -> Counts:
    response = await http.get("/metrics")
    assert response.status_code == 200, response.text[:500]
    found = {kind: int(float(value)) for kind, value in LOOKUPS.findall(response.text)}
    held = HELD.search(response.text)
    assert found.keys() == {"hit", "miss"} and held is not None, response.text[-3000:]
    return Counts(found["hit"], found["miss"], float(held[1]))


async def ask(
    http: httpx.AsyncClient, query: str, variables: Json | None = None, token: str | None = None
) -> tuple[Json, bool]:
    """One query that must succeed; returns (the whole body, whether it was a cache hit).
    Nothing else talks to the server, so the hit counter tells."""
    before = await counts(http)
    body = await execute(http, query, variables, token)
    assert not body.get("errors"), body["errors"]
    after = await counts(http)
    assert after.hits + after.misses == before.hits + before.misses + 1, (before, after)
    return body, after.hits == before.hits + 1


async def ask_twice(
    http: httpx.AsyncClient, query: str, variables: Json | None = None, token: str | None = None
) -> Json:
    """Ask, then ask again: the second must be served from the cache with the same data.
    Returns the data."""
    first, _ = await ask(http, query, variables, token)
    second, hit = await ask(http, query, variables, token)
    assert hit, f"the second identical request was not a cache hit: {query}"
    assert second["data"] == first["data"], (first, second)
    return cast(Json, second["data"])


def order_ids(data: Json) -> list[str]:
    return [edge["node"]["id"] for edge in data["myOrders"]["edges"]]


def assert_read_model(body: Json) -> Json:
    read_model = cast(Json, body["extensions"]["readModel"])
    assert isinstance(read_model["position"], int), read_model
    assert isinstance(read_model["lagMs"], int | float), read_model
    return read_model


@contextlib.asynccontextmanager
async def own_server(
    template_dir: Path, tmp_path: Path, **extra_env: str
) -> AsyncIterator[tuple[Server, httpx.AsyncClient]]:
    """A server on databases of its own, always stopped."""
    env = _env_for(fresh_settings(template_dir, tmp_path / "db"))
    server = Server(env, tmp_path / "server.log")
    await server.start(**extra_env)
    try:
        async with server.client() as http:
            yield server, http
    finally:
        await server.stop()


async def product_payload(
    http: httpx.AsyncClient, mutation: str, field: str, input: Json, staff: str
) -> Json:
    payload = (await graphql(http, mutation, {"input": input}, staff))[field]
    assert payload["userErrors"] == [], payload
    return cast(Json, payload["product"])


@pytest.mark.timeout(60)
async def test_every_change_reaches_cached_answers_at_once(
    template_dir: Path, tmp_path: Path
) -> None:
    started = time.monotonic()
    staff = staff_token("staff-cache")
    async with own_server(template_dir, tmp_path) as (_, http):
        await add_product(http, staff, "CACHE-MUG", 1250, 40)
        await add_product(http, staff, "CACHE-PEN", 300, 100)
        alice, alice_id = await register(http, "Alice Cache")
        bob, _ = await register(http, "Bob Cache")
        first = await place(http, alice, {"CACHE-MUG": 1})
        bobs = await place(http, bob, {"CACHE-PEN": 2})

        # A customer's orders, cached.
        mine = await ask_twice(http, MY_ORDERS, token=alice)
        assert order_ids(mine) == [first["id"]], mine
        # Someone else asking the same document gets their own, not the cached answer.
        theirs, hit = await ask(http, MY_ORDERS, token=bob)
        assert not hit and order_ids(theirs["data"]) == [bobs["id"]], theirs
        assert order_ids((await ask(http, MY_ORDERS, token=alice))[0]["data"]) == [first["id"]]

        # A new order by that customer is in the very next answer.
        second = await place(http, alice, {"CACHE-MUG": 2, "CACHE-PEN": 1})
        mine, hit = await ask(http, MY_ORDERS, token=alice)
        assert not hit
        assert order_ids(mine["data"]) == [second["id"], first["id"]], mine
        assert mine["data"]["myOrders"]["edges"][0]["node"]["totalCents"] == 2 * 1250 + 300
        assert (await ask(http, MY_ORDERS, token=alice))[1], "not cached again"

        # Profiles: by identity; anonymous gets null, never someone's cached profile.
        assert (await ask_twice(http, ME, token=alice))["me"] == {"name": "Alice Cache"}
        assert (await ask(http, ME))[0]["data"] == {"me": None}
        assert (await ask(http, ME, token=bob))[0]["data"] == {"me": {"name": "Bob Cache"}}
        assert (await ask(http, ME, token=staff))[0]["data"] == {"me": None}
        assert (await ask_twice(http, ME))["me"] is None
        me, hit = await ask(http, ME, token=alice)
        assert hit and me["data"] == {"me": {"name": "Alice Cache"}}
        # Staff with the same id as the customer is someone else.
        raw_alice = raw_id_of("Customer", alice_id)
        assert raw_alice is not None
        same_id, hit = await ask(http, ME, token=staff_token(raw_alice))
        assert not hit and same_id["data"] == {"me": None}, same_id
        # A customer id with no profile is not served a registered one's.
        nobody, hit = await ask(http, ME, token=customer_token("no-such-customer"))
        assert not hit and nobody["data"] == {"me": None}

        # The catalog, anonymous: a price change, then a restock, show at once.
        mug = {"sku": "CACHE-MUG"}
        product = (await ask_twice(http, PRODUCT, mug))["product"]
        assert (product["priceCents"], product["stockAvailable"]) == (1250, 40 - 3), product
        changed = await product_payload(
            http, CHANGE_PRICE, "changeProductPrice", {**mug, "priceCents": 1490}, staff
        )
        assert changed["priceCents"] == 1490, changed
        product = (await ask(http, PRODUCT, mug))[0]["data"]["product"]
        assert (product["priceCents"], product["stockAvailable"]) == (1490, 37), product
        assert (await ask(http, PRODUCT, mug))[1], "not cached again"
        restocked = await product_payload(
            http, RESTOCK, "restockProduct", {**mug, "quantity": 5}, staff
        )
        assert restocked["stockAvailable"] == 42, restocked
        product = (await ask(http, PRODUCT, mug))[0]["data"]["product"]
        assert (product["priceCents"], product["stockAvailable"]) == (1490, 42), product
        # Other variables, other answer.
        pen = (await ask(http, PRODUCT, {"sku": "CACHE-PEN"}))[0]["data"]["product"]
        assert (pen["sku"], pen["priceCents"], pen["stockAvailable"]) == ("CACHE-PEN", 300, 97)

        # The order lines' catalog product (read through a DataLoader) is the new price;
        # what was paid stays as it was.
        mine, _ = await ask(http, MY_ORDERS, token=alice)
        lines = [line for e in mine["data"]["myOrders"]["edges"] for line in e["node"]["lines"]]
        mugs = [line for line in lines if line["sku"] == "CACHE-MUG"]
        assert len(mugs) == 2 and all(
            line["unitPriceCents"] == 1250 and line["product"]["priceCents"] == 1490
            for line in mugs
        ), lines
    print(f"\nresponse cache, every change at once: {time.monotonic() - started:.1f} s")


STOCK = 1000
STRESS_ORDERS = 12
MY_ORDER_IDS = "{ myOrders(first: 50) { edges { node { id } } } }"


async def keep_reading(
    server: Server, token: str, acknowledged: list[str], stop: asyncio.Event
) -> int:
    """Ask for the orders and the product again and again: every answer holds every order
    acknowledged before it was asked for, and stock no higher than they leave."""
    answers, last = 0, 0
    async with server.client() as http:
        while not stop.is_set():
            known = list(acknowledged)
            mine = order_ids(await graphql(http, MY_ORDER_IDS, token=token))
            assert set(known) <= set(mine), f"acknowledged orders missing: {set(known) - set(mine)}"
            assert len(mine) >= last, f"myOrders shrank: {len(mine)} < {last}"
            product = (await graphql(http, PRODUCT, {"sku": "CACHE-BUSY"}))["product"]
            assert product["stockAvailable"] <= STOCK - len(known), (product, len(known))
            answers, last = answers + 1, len(mine)
    return answers


@pytest.mark.timeout(60)
async def test_concurrent_readers_never_hide_an_acknowledged_write(
    template_dir: Path, tmp_path: Path
) -> None:
    """Readers fill the cache while a customer places orders: each write's answer is in
    the very next read, whoever cached what meanwhile."""
    started = time.monotonic()
    staff = staff_token("staff-cache-busy")
    async with own_server(template_dir, tmp_path) as (server, http):
        await add_product(http, staff, "CACHE-BUSY", 500, STOCK)
        token, _ = await register(http, "Busy Cache")
        before = await counts(http)
        acknowledged: list[str] = []
        stop = asyncio.Event()
        readers = [
            asyncio.create_task(keep_reading(server, token, acknowledged, stop)) for _ in range(3)
        ]
        try:
            for _ in range(STRESS_ORDERS):
                # The readers cache the current answers and are served from the cache.
                await hits_reach(http, (await counts(http)).hits + 3, readers)
                order = await place(http, token, {"CACHE-BUSY": 1})
                acknowledged.append(order["id"])
                mine = order_ids(await graphql(http, MY_ORDER_IDS, token=token))
                assert mine == acknowledged[::-1], (mine, acknowledged)
                product = (await graphql(http, PRODUCT, {"sku": "CACHE-BUSY"}))["product"]
                assert product["stockAvailable"] == STOCK - len(acknowledged), product
        finally:
            stop.set()
            outcomes = await asyncio.wait_for(asyncio.gather(*readers, return_exceptions=True), 20)
        reads = 0
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
            reads += outcome
        after = await counts(http)
        # The cache was really in play: most reads between two writes were hits.
        assert after.hits - before.hits >= STRESS_ORDERS * 3, (before, after)
    print(
        f"\nresponse cache under concurrent readers: {reads} reads, "
        f"{after.hits - before.hits} hits, {after.misses - before.misses} misses; "
        f"{time.monotonic() - started:.1f} s"
    )


async def hits_reach(
    http: httpx.AsyncClient, hits: int, readers: list[asyncio.Task[int]], timeout: float = 15.0
) -> None:
    """Wait (bounded) until the server has counted ``hits`` cache hits."""
    deadline = time.monotonic() + timeout
    while (now := (await counts(http)).hits) < hits:
        assert not any(r.done() for r in readers), "a reader stopped"
        assert time.monotonic() < deadline, f"{now} cache hits, never {hits}"
        await asyncio.sleep(0.01)


async def poll_until(
    http: httpx.AsyncClient,
    query: str,
    variables: Json | None,
    token: str | None,
    wanted: Any,
    pick: Any,
    timeout: float,
) -> tuple[float, list[Any]]:
    """Ask until ``pick(data) == wanted``; returns (how long it took, every value seen)."""
    seen: list[Any] = []
    start = time.monotonic()
    while True:
        value = pick(await graphql(http, query, variables, token))
        seen.append(value)
        if value == wanted:
            return time.monotonic() - start, seen
        assert time.monotonic() - start < timeout, (
            f"never {wanted!r} in {timeout} s: {len(seen)} answers, the last {seen[-3:]}"
        )
        await asyncio.sleep(0.05)


def product_name(data: Json) -> Any:
    return data["product"]["name"]


def line_product_names(data: Json) -> Any:
    return [
        line["product"]["name"] for e in data["myOrders"]["edges"] for line in e["node"]["lines"]
    ]


@dataclasses.dataclass(frozen=True)
class Seen:
    started: float  # monotonic, when the request was sent
    value: Any


async def keep_asking(
    server: Server,
    query: str,
    variables: Json | None,
    token: str | None,
    pick: Any,
    seen: list[Seen],
    stop: asyncio.Event,
) -> None:
    """Another client asking the same thing again and again until told to stop."""
    async with server.client() as http:
        while not stop.is_set():
            started = time.monotonic()
            seen.append(Seen(started, pick(await graphql(http, query, variables, token))))
            await asyncio.sleep(0.01)


def tamper(read_db: Db, sku: str, name: str) -> None:
    """A corrupted read model: the catalog row says something no event said."""
    with contextlib.closing(connect(read_db)) as conn:
        changed = conn.execute(
            "UPDATE catalog_products SET name = ? WHERE sku = ?", (name, sku)
        ).rowcount
    assert changed == 1, (sku, changed)


@pytest.mark.timeout(60)
async def test_rebuild_by_another_process_reaches_cached_answers(
    template_dir: Path, tmp_path: Path
) -> None:
    started = time.monotonic()
    staff = staff_token("staff-cache-rebuild")
    sku, good, bad = "CACHE-LAMP", "Product CACHE-LAMP", "TAMPERED lamp"
    variables = {"sku": sku}
    async with own_server(template_dir, tmp_path) as (server, http):
        await add_product(http, staff, sku, 2500, 10)
        token, _ = await register(http, "Rebuild Cache")
        await place(http, token, {sku: 1})
        checkpoint = query_rows(
            server.read_db,
            "SELECT position, generation FROM projection_checkpoints WHERE name = 'catalog'",
        )[0]

        await asyncio.to_thread(tamper, server.read_db, sku, bad)
        # Neither query was asked before the tamper: the tampered rows are what they read.
        await poll_until(http, PRODUCT, variables, None, bad, product_name, NOTICED_WITHIN)
        await poll_until(http, MY_ORDERS, None, token, [bad], line_product_names, NOTICED_WITHIN)
        # ... and now serve from the cache (order_history and order_detail never move here:
        # only the catalog dependency, recorded through the DataLoader, can invalidate it).
        assert product_name(await ask_twice(http, PRODUCT, variables)) == bad
        assert line_product_names(await ask_twice(http, MY_ORDERS, token=token)) == [bad]

        # Other clients keep asking (and filling the cache) all through the rebuild.
        stop = asyncio.Event()
        seen: list[Seen] = []
        readers = [
            asyncio.create_task(
                keep_asking(server, PRODUCT, variables, None, product_name, seen, stop)
            ),
            asyncio.create_task(
                keep_asking(server, MY_ORDERS, None, token, line_product_names, seen, stop)
            ),
        ]
        try:
            rebuild = await run_cli(server.env, "projections", "rebuild", "catalog")
            assert rebuild.returncode == 0, cli_output(rebuild)
            assert "Rebuilt catalog" in rebuild.stdout, cli_output(rebuild)
            took, _ = await poll_until(
                http, PRODUCT, variables, None, good, product_name, NOTICED_WITHIN
            )
            took_lines, _ = await poll_until(
                http, MY_ORDERS, None, token, [good], line_product_names, NOTICED_WITHIN
            )
            good_seen_at = time.monotonic()
            # Until the other clients have asked a few more times (bounded).
            deadline = good_seen_at + NOTICED_WITHIN
            while sum(s.started > good_seen_at for s in seen) < 4:
                assert not any(r.done() for r in readers), "a reader stopped"
                assert time.monotonic() < deadline, "the other clients stopped asking"
                await asyncio.sleep(0.01)
        finally:
            stop.set()
            outcomes = await asyncio.wait_for(asyncio.gather(*readers, return_exceptions=True), 20)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        assert all(s.value in (bad, good, [bad], [good]) for s in seen), seen[-5:]
        later = [s for s in seen if s.started > good_seen_at]
        assert len(later) >= 4, f"the other clients asked only {len(later)} times afterwards"
        assert all(s.value in (good, [good]) for s in later), [s.value for s in later]
        after = query_rows(
            server.read_db,
            "SELECT position, generation FROM projection_checkpoints WHERE name = 'catalog'",
        )[0]
        # Same position (nothing new was logged): only the generation says the rows changed.
        assert after["position"] == checkpoint["position"], (checkpoint, after)
        assert after["generation"] == checkpoint["generation"] + 1, (checkpoint, after)

        # Never the tampered name again, and the good one is cached in its turn.
        hits = (await counts(http)).hits
        for _ in range(10):
            assert product_name(await graphql(http, PRODUCT, variables)) == good
            assert line_product_names(await graphql(http, MY_ORDERS, token=token)) == [good]
        assert (await counts(http)).hits == hits + 20, "the rebuilt answer was not cached"
    print(
        f"\nresponse cache after a rebuild by the CLI: good name after {took:.2f} s "
        f"(order lines {took_lines:.2f} s); {time.monotonic() - started:.1f} s"
    )


@pytest.mark.timeout(60)
async def test_retry_by_another_process_invalidates_cached_answers(
    template_dir: Path, tmp_path: Path
) -> None:
    """``projections retry`` may rewrite rows at any position: it bumps the generation,
    so whatever the cache holds for that projector is read again."""
    started = time.monotonic()
    staff = staff_token("staff-cache-retry")
    sku, good, changed = "CACHE-DESK", "Product CACHE-DESK", "Rewritten desk"
    variables = {"sku": sku}
    async with own_server(template_dir, tmp_path) as (server, http):
        await add_product(http, staff, sku, 9900, 3)
        assert product_name(await ask_twice(http, PRODUCT, variables)) == good
        # The row changes behind the server's back at an unchanged position: the cached
        # answer may still be served (nothing says the rows changed) ...
        await asyncio.to_thread(tamper, server.read_db, sku, changed)
        body, hit = await ask(http, PRODUCT, variables)
        assert hit and product_name(body["data"]) == good
        # ... until a retry says they may have.
        retry = await run_cli(server.env, "projections", "retry", "catalog")
        assert retry.returncode == 0, cli_output(retry)
        took, seen = await poll_until(
            http, PRODUCT, variables, None, changed, product_name, NOTICED_WITHIN
        )
        assert set(seen) <= {good, changed}, seen
        assert product_name(await ask_twice(http, PRODUCT, variables)) == changed
        # Restore the row for good (a rebuild), and the cache follows again.
        rebuild = await run_cli(server.env, "projections", "rebuild", "catalog")
        assert rebuild.returncode == 0, cli_output(rebuild)
        await poll_until(http, PRODUCT, variables, None, good, product_name, NOTICED_WITHIN)
    print(
        f"\nresponse cache after a retry by the CLI: re-read after {took:.2f} s; "
        f"{time.monotonic() - started:.1f} s"
    )


@pytest.mark.timeout(60)
async def test_projections_are_never_cached_and_cached_answers_have_a_fresh_read_model(
    template_dir: Path, tmp_path: Path
) -> None:
    staff = staff_token("staff-cache-projections")
    async with own_server(template_dir, tmp_path) as (_, http):
        await add_product(http, staff, "CACHE-CUP", 700, 5)

        # The runner's state in memory: never from the cache, however often asked.
        before = await counts(http)
        for _ in range(3):
            states = (await graphql(http, PROJECTIONS, token=staff))["projections"]
            assert states and all(s["lag"] == 0 for s in states), states
        after = await counts(http)
        assert after.hits == before.hits, (before, after)
        assert after.misses == before.misses + 3, (before, after)
        assert after.held == before.held, (before, after)
        # Nor when asked alongside cacheable fields.
        both = '{ projections { name position } product(sku: "CACHE-CUP") { name } }'
        for _ in range(2):
            assert not (await ask(http, both, token=staff))[1]

        # A cached answer: readModel present, and as it is now, not as when cached.
        first, _ = await ask(http, ME)
        cached, hit = await ask(http, ME)
        assert hit and cached["data"] == {"me": None}
        position = assert_read_model(first)["position"]
        assert assert_read_model(cached)["position"] == position > 0
        assert cached["extensions"].keys() == first["extensions"].keys()
        product = (await ask_twice(http, PRODUCT, {"sku": "CACHE-CUP"}))["product"]
        assert product["priceCents"] == 700
        # The log moves on; the anonymous ``me`` read no table, so it is still cached,
        # and its readModel says where the read models are now.
        restocked = await product_payload(
            http, RESTOCK, "restockProduct", {"sku": "CACHE-CUP", "quantity": 1}, staff
        )
        assert restocked["stockAvailable"] == 6
        moved, hit = await ask(http, ME)
        assert hit and moved["data"] == {"me": None}
        assert assert_read_model(moved)["position"] == position + 1, (first, moved)
        # Also over GET, in the other media type.
        hits = (await counts(http)).hits
        for _ in range(2):
            response = await http.get(
                "/graphql",
                params={"query": ME},
                headers={"Accept": "application/graphql-response+json"},
            )
            assert response.status_code == 200, response.text
            media_type = response.headers["content-type"]
            assert media_type.startswith("application/graphql-response+json"), media_type
            assert response.json()["data"] == {"me": None}
            assert assert_read_model(response.json())["position"] == position + 1
        assert (await counts(http)).hits == hits + 1


@pytest.mark.timeout(60)
async def test_zero_megabytes_turns_the_cache_off(template_dir: Path, tmp_path: Path) -> None:
    staff = staff_token("staff-cache-off")
    mug = {"sku": "CACHE-OFF"}
    async with own_server(template_dir, tmp_path, SHOPFRONT_RESPONSE_CACHE_MB="0") as (_, http):
        await add_product(http, staff, "CACHE-OFF", 1000, 10)
        token, _ = await register(http, "Off Cache")
        for _ in range(3):
            assert (await graphql(http, PRODUCT, mug))["product"]["priceCents"] == 1000
            assert (await graphql(http, ME, token=token))["me"] == {"name": "Off Cache"}
            assert (await graphql(http, ME))["me"] is None
        off = await counts(http)
        assert (off.hits, off.held) == (0, 0.0), off
        await product_payload(
            http, CHANGE_PRICE, "changeProductPrice", {**mug, "priceCents": 1100}, staff
        )
        assert (await graphql(http, PRODUCT, mug))["product"]["priceCents"] == 1100
        assert (await counts(http)).hits == 0
