"""Poison events: a stored event no projector can read (an OrderShipped whose payload lacks
``tracking_number``, as a buggy writer might have committed it) is parked with its error
instead of stopping the projectors. Later events of the same order wait behind it, so
that order's events still apply in order; every other order keeps flowing. Operators
see it (staff ``projections`` query, ``shopfront projections status``, /metrics), fix the
payload, and ``shopfront projections retry`` applies the parked events in order.

Mechanisms under test: park-and-continue with per-stream blocking in the runner, the
dead-letter table and its reporting, and retry; and that the server, polling only every
60 s, never answers from its response cache what the retry (run in another process)
replaced: on SQLite it checks the read database's data_version before a hit, on
PostgreSQL the retry's NOTIFY wakes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import re
import time
from pathlib import Path

import httpx
import orjson
import pytest

from api.graphql.ids import raw_id_of
from tests.conftest import _env_for, fresh_settings
from tests.reliability.support import (
    DASHBOARD,
    GET_ORDER,
    PAY,
    Json,
    RawEvent,
    Server,
    add_product,
    append_raw_events,
    assert_dashboard_exact,
    assert_same_tables,
    cli_output,
    connect,
    expected_dashboard,
    graphql,
    mutate,
    place,
    query_rows,
    read_snapshot,
    register,
    replay_snapshot,
    run_cli,
    staff_token,
    wait_caught_up,
)

SKU = "POISON-MUG"
WAITING = "waiting behind an earlier parked event of this stream"
MY_ORDERS = """{ myOrders(first: 50) { edges { node { id status version
  shipment { trackingNumber } } } } }"""


# The server's poll: so long that only a wake-up can explain a fresh answer.
SERVER_POLL = "60"


def parked_metrics(text: str) -> dict[str, float]:
    return gauge(text, "shopfront_projection_dead_letters")


def gauge(text: str, metric: str) -> dict[str, float]:
    pattern = rf'^{metric}\{{name="([^"]+)"\}} (\S+)$'
    return {m[1]: float(m[2]) for m in re.finditer(pattern, text, re.MULTILINE)}


def cache_hits(text: str) -> float:
    found = re.search(r'^shopfront_response_cache_lookups_total\{result="hit"\} (\S+)$', text, re.M)
    assert found is not None, text[:2000]
    return float(found[1])


async def bumped(http: httpx.AsyncClient, before: dict[str, float]) -> None:
    """Wait (bounded, well under the server's poll) until /metrics shows every
    projector's generation moved past ``before``."""
    deadline = time.monotonic() + 5
    while True:
        now = gauge((await http.get("/metrics")).text, "shopfront_projection_generation")
        if all(now.get(name, 0) > seen for name, seen in before.items()):
            return
        assert time.monotonic() < deadline, f"generations never moved: {before} -> {now}"
        await asyncio.sleep(0.02)


@pytest.mark.timeout(90)
async def test_poison_event_is_parked_reported_and_retried(
    template_dir: Path, tmp_path: Path
) -> None:
    started = time.monotonic()
    env = _env_for(fresh_settings(template_dir, tmp_path / "db"))
    on_postgres = env["SHOPFRONT_READ_DATABASE_URL"].startswith("postgresql")
    # On SQLite without the data_version watcher: only the response cache's own check
    # before a hit can then explain a fresh first answer after the retry.
    server_env = {**env, "SHOPFRONT_PROJECTION_POLL_INTERVAL": SERVER_POLL}
    if not on_postgres:
        server_env["SHOPFRONT_DB_WAKE"] = "false"
    server = Server(server_env, tmp_path / "server.log")
    staff = staff_token("staff-poison")
    await server.start()
    try:
        async with server.client() as http:
            await add_product(http, staff, SKU, 1250, 100)
            token, customer_global_id = await register(http, "Poison customer")
            customer_id = raw_id_of("Customer", customer_global_id)
            victim = await place(http, token, {SKU: 2})
            victim = await mutate(http, PAY, "payOrder", {"orderId": victim["id"]}, token)
            assert (victim["status"], victim["version"]) == ("PAID", 2), victim
            bystander = await place(http, token, {SKU: 1})
            await wait_caught_up(http, staff)
            order_id = raw_id_of("Order", victim["id"])
            assert order_id is not None and customer_id is not None
            stream = f"order-{order_id}"

            # A buggy writer ships and delivers the order: the write model is right, but
            # the OrderShipped it logged lacks a field. OrderDelivered after it is fine.
            now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
            shipped = {"order_id": order_id, "customer_id": customer_id, "carrier": "DHL"}
            delivered = {"order_id": order_id, "customer_id": customer_id}
            poison_at, behind_at = await asyncio.to_thread(
                append_raw_events,
                server.write_db,
                [
                    RawEvent(stream, 3, "OrderShipped", shipped),
                    RawEvent(stream, 4, "OrderDelivered", delivered),
                ],
                [
                    (
                        "UPDATE orders SET status = 'DELIVERED', version = 4, updated_at = ? "
                        "WHERE id = ? AND version = 2",
                        (now, order_id),
                    ),
                    (
                        "INSERT INTO shipments (order_id, carrier, tracking_number, status, "
                        "shipped_at, delivered_at) VALUES (?, 'DHL', 'TRK-FIXED', 'DELIVERED', "
                        "?, ?)",
                        (order_id, now, now),
                    ),
                    (
                        "UPDATE products SET stock_on_hand = stock_on_hand - 2, "
                        "stock_reserved = stock_reserved - 2 WHERE sku = ?",
                        (SKU,),
                    ),
                ],
            )

            # Other orders keep flowing: placed, paid, read back (read-your-writes).
            later = await place(http, token, {SKU: 3})
            later = await mutate(http, PAY, "payOrder", {"orderId": later["id"]}, token)
            assert later["status"] == "PAID", later
            states = await wait_caught_up(http, staff)
            assert states[0]["headPosition"] > behind_at, states
            for state in states:
                assert state["deadLetters"] == 2, state
                parked = state["parkedEvents"]
                assert [(p["position"], p["streamId"], p["eventType"]) for p in parked] == [
                    (poison_at, stream, "OrderShipped"),
                    (behind_at, stream, "OrderDelivered"),
                ], state
                assert "tracking_number" in parked[0]["error"], parked
                assert parked[1]["error"] == WAITING, parked
            mine = {
                edge["node"]["id"]: edge["node"]
                for edge in (await graphql(http, MY_ORDERS, token=token))["myOrders"]["edges"]
            }
            assert {i: (o["status"], o["version"]) for i, o in mine.items()} == {
                victim["id"]: ("PAID", 2),  # its next events are parked, in order
                bystander["id"]: ("PLACED", 1),
                later["id"]: ("PAID", 2),
            }, mine
            stuck = (await graphql(http, GET_ORDER, {"id": victim["id"]}, token))["order"]
            assert (stuck["status"], stuck["version"], stuck["shipment"]) == ("PAID", 2, None)
            hits = cache_hits((await http.get("/metrics")).text)
            again = (await graphql(http, GET_ORDER, {"id": victim["id"]}, token))["order"]
            assert again == stuck
            assert cache_hits((await http.get("/metrics")).text) == hits + 1  # cached

            # The operator's views.
            status = await run_cli(env, "projections", "status")
            assert status.returncode == 0, cli_output(status)
            assert "Parked events" in status.stdout, cli_output(status)
            for needle in (str(poison_at), str(behind_at), "OrderShipped", "OrderDelivered"):
                assert needle in status.stdout, (needle, cli_output(status))
            metrics = (await http.get("/metrics")).text
            generations = gauge(metrics, "shopfront_projection_generation")
            assert generations.keys() == {s["name"] for s in states}, generations
            by_name = parked_metrics(metrics)
            assert by_name and all(v == 2 for v in by_name.values()), by_name
            assert by_name.keys() == {s["name"] for s in states}, by_name

            # The fix: the payload gets its missing field; retry applies both, in order.
            with contextlib.closing(connect(server.write_db)) as conn:
                fixed = {**shipped, "tracking_number": "TRK-FIXED"}
                conn.execute(
                    "UPDATE events SET payload = ? WHERE position = ?",
                    (orjson.dumps(fixed).decode(), poison_at),
                )
            retry = await run_cli(env, "projections", "retry")
            assert retry.returncode == 0, cli_output(retry)
            for state in states:
                line = f"{state['name']}: re-applied 2, still parked 0"
                assert line in retry.stdout, cli_output(retry)
            assert query_rows(server.read_db, "SELECT * FROM projection_dead_letters") == []

            # The retry ran in another process and bumped the generations. The server
            # polls every 60 s and has the old answer in its response cache: on SQLite
            # the very next answer is fresh (the cache checks data_version before a hit);
            # on PostgreSQL the retry's NOTIFY reaches it within moments (bounded wait on
            # /metrics), and the next answer is fresh.
            if on_postgres:
                await bumped(http, generations)
            healed = (await graphql(http, GET_ORDER, {"id": victim["id"]}, token))["order"]
            assert (healed["status"], healed["version"]) == ("DELIVERED", 4), healed
            assert healed["shipment"] == {
                "carrier": "DHL",
                "trackingNumber": "TRK-FIXED",
                "status": "DELIVERED",
            }, healed
            docs = query_rows(
                server.read_db,
                "SELECT version, doc FROM order_detail WHERE order_id = ?",
                (order_id,),
            )
            doc: Json = orjson.loads(docs[0]["doc"])
            assert [t["status"] for t in doc["timeline"]] == [
                "PLACED",
                "PAID",
                "SHIPPED",
                "DELIVERED",
            ], doc
            changes = query_rows(
                server.read_db,
                "SELECT version, event FROM order_changes WHERE order_id = ? ORDER BY version",
                (order_id,),
            )
            assert [(c["version"], c["event"]) for c in changes] == [
                (1, "OrderPlaced"),
                (2, "OrderPaid"),
                (3, "OrderShipped"),
                (4, "OrderDelivered"),
            ], changes

            # The server's own counters clear with its next step.
            await place(http, token, {SKU: 1})
            states = await wait_caught_up(http, staff)
            assert all(s["deadLetters"] == 0 and s["parkedEvents"] == [] for s in states), states
            assert set(parked_metrics((await http.get("/metrics")).text).values()) == {0.0}
            dashboard = (await graphql(http, DASHBOARD, token=staff))["salesDashboard"]
            assert_dashboard_exact(
                dashboard, await asyncio.to_thread(expected_dashboard, server.write_db)
            )
            stock_query = "query($sku: String!) { product(sku: $sku) { stockAvailable } }"
            product = (await graphql(http, stock_query, {"sku": SKU}))["product"]
            stock = query_rows(
                server.write_db,
                "SELECT stock_on_hand - stock_reserved AS n FROM products WHERE sku = ?",
                (SKU,),
            )
            assert product["stockAvailable"] == stock[0]["n"], (product, stock)
    finally:
        await server.stop()

    # What retry produced equals what a clean replay of the fixed log produces.
    # Parked events included: none left live, none in the replay.
    live = await asyncio.to_thread(read_snapshot, server.read_db, with_dead_letters=True)
    replayed = await replay_snapshot(
        template_dir,
        tmp_path / "replay",
        env["SHOPFRONT_WRITE_DATABASE_URL"],
        with_dead_letters=True,
    )
    assert live["projection_dead_letters"] == replayed["projection_dead_letters"] == []
    rows = assert_same_tables(live, replayed)
    print(
        f"\npoison events: position {poison_at} parked, {behind_at} waiting behind it, in "
        f"{len(states)} projectors; other orders flowed, retry healed it; {rows} read rows "
        f"equal to a replay; {time.monotonic() - started:.1f} s"
    )
