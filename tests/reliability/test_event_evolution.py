"""Event schema evolution: ProductAdded is at schema version 2 (``currency`` added); events
stored at version 1, before the shop knew about currencies, stay in the log as they were
written. The projectors read them through the upcaster (v1 -> v2: currency "EUR"), so the
catalog shows such a product with the right price in EUR, and it can be ordered.

Without the upcaster the same stored event cannot be read: it is parked as a dead letter
(the log does not stop); with the upcaster back, ``retry`` applies it. That is the proof
that the upcaster is what makes old events readable.

Integration level: the real services (command bus, projection runner) on SQLite files,
and the GraphQL schema executed in-process.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import orjson
import pytest

from api.bootstrap import Services
from api.graphql.context import Context
from api.graphql.schema import build_schema
from domain import commands as c
from domain import events as domain_events
from tests.reliability.support import (
    Db,
    Json,
    RawEvent,
    append_raw_events,
    database_of,
    query_rows,
)

WAIT = 10.0
PRODUCT = (
    "query($sku: String!) { product(sku: $sku) { sku name priceCents currency stockAvailable } }"
)
CATALOG = "{ products(first: 100) { edges { node { sku priceCents currency } } } }"
STAFF = c.Actor("staff-evolution", "staff")


def v1_product(
    sku: str, price_cents: int, stock: int
) -> tuple[RawEvent, tuple[str, tuple[Any, ...]]]:
    """A ProductAdded as a v1 writer stored it (no currency), and its write-model row."""
    product_id = str(uuid.uuid4())
    payload = {
        "product_id": product_id,
        "sku": sku,
        "name": f"Old product {sku}",
        "description": "stored before currencies",
        "price_cents": price_cents,
        "stock": stock,
    }
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    row = (
        "INSERT INTO products (id, sku, name, description, price_cents, currency, "
        "stock_on_hand, stock_reserved, version, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, 'EUR', ?, 0, 1, ?, ?)",
        (product_id, sku, payload["name"], payload["description"], price_cents, stock, now, now),
    )
    return RawEvent(f"product-{product_id}", 1, "ProductAdded", payload, schema_version=1), row


def v2_product(sku: str, price_cents: int, currency: str) -> RawEvent:
    payload = {
        "product_id": str(uuid.uuid4()),
        "sku": sku,
        "name": f"New product {sku}",
        "description": None,
        "price_cents": price_cents,
        "currency": currency,
        "stock": 5,
    }
    return RawEvent(f"product-{payload['product_id']}", 1, "ProductAdded", payload, 2)


async def query(services: Services, source: str, variables: Json | None = None) -> Json:
    result = await build_schema().execute(
        source, variable_values=variables, context_value=Context(services, None)
    )
    assert result.errors is None, result.errors
    assert result.data is not None
    return result.data


async def caught_up(services: Services, position: int) -> None:
    services.runner.notify(position)  # as a commit in this process would
    assert await services.runner.wait_for(position, WAIT), services.runner.status()


def stored(write_db: Db, position: int) -> Json:
    (row,) = query_rows(
        write_db, "SELECT type, schema_version, payload FROM events WHERE position = ?", (position,)
    )
    return row


async def test_v1_product_added_is_read_through_the_upcaster(services: Services) -> None:
    write_db = database_of(services.settings.write_database_url)
    old, row = v1_product("OLD-V1", 1999, 7)
    (old_at, new_at) = append_raw_events(write_db, [old, v2_product("NEW-V2", 500, "EUR")], [row])
    await caught_up(services, new_at)

    product = (await query(services, PRODUCT, {"sku": "OLD-V1"}))["product"]
    assert product == {
        "sku": "OLD-V1",
        "name": "Old product OLD-V1",
        "priceCents": 1999,
        "currency": "EUR",
        "stockAvailable": 7,
    }
    catalog = {
        e["node"]["sku"]: e["node"] for e in (await query(services, CATALOG))["products"]["edges"]
    }
    assert catalog == {
        "OLD-V1": {"sku": "OLD-V1", "priceCents": 1999, "currency": "EUR"},
        "NEW-V2": {"sku": "NEW-V2", "priceCents": 500, "currency": "EUR"},
    }
    assert await services.runner.list_dead_letters() == []

    # Usable like any product: an order for it is priced from it and reserves its stock.
    customer = await services.bus.execute(
        c.RegisterCustomer(None, f"evolution-{uuid.uuid4().hex[:8]}@example.com", "Evolution")
    )
    placed = await services.bus.execute(
        c.PlaceOrder(c.Actor(customer.entity_id, "customer"), (c.LineRequest("OLD-V1", 3),))
    )
    assert placed.position is not None
    await caught_up(services, placed.position)
    product = (await query(services, PRODUCT, {"sku": "OLD-V1"}))["product"]
    assert product["stockAvailable"] == 4, product
    (order,) = query_rows(write_db, "SELECT total_cents, currency FROM orders")
    assert order == {"total_cents": 3 * 1999, "currency": "EUR"}

    # Upcasting happens on read: the log still holds what was written, at version 1.
    event = stored(write_db, old_at)
    assert (event["type"], event["schema_version"]) == ("ProductAdded", 1)
    assert "currency" not in orjson.loads(event["payload"])


async def test_without_the_upcaster_the_v1_event_is_parked(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert ("ProductAdded", 1) in domain_events.UPCASTERS
    monkeypatch.delitem(domain_events.UPCASTERS, ("ProductAdded", 1))
    write_db = database_of(services.settings.write_database_url)
    old, row = v1_product("OLD-V1", 1999, 7)
    (old_at, new_at) = append_raw_events(write_db, [old, v2_product("NEW-V2", 500, "EUR")], [row])
    await caught_up(services, new_at)  # parked, not stuck: the log goes on

    assert (await query(services, PRODUCT, {"sku": "OLD-V1"}))["product"] is None
    assert (await query(services, PRODUCT, {"sku": "NEW-V2"}))["product"]["currency"] == "EUR"
    letters = await services.runner.list_dead_letters()
    catalog_letters = [d for d in letters if d.name == "catalog"]
    assert [(d.position, d.event_type, d.stream_id) for d in catalog_letters] == [
        (old_at, "ProductAdded", old.stream_id)
    ], letters
    assert "KeyError" in catalog_letters[0].error, catalog_letters
    assert "ProductAdded" in catalog_letters[0].error, catalog_letters
    assert {d.position for d in letters} == {old_at}, letters
    status = {s.name: s for s in services.runner.status()}
    assert status["catalog"].dead_letters == 1 and status["catalog"].lag == 0, status

    # Put the upcaster back: the parked event now reads, and retry applies it.
    monkeypatch.undo()
    assert ("ProductAdded", 1) in domain_events.UPCASTERS
    results = await services.runner.retry()
    assert results["catalog"] == (1, 0), results
    assert all(still == 0 for _, still in results.values()), results
    assert await services.runner.list_dead_letters() == []
    product = (await query(services, PRODUCT, {"sku": "OLD-V1"}))["product"]
    assert (product["priceCents"], product["currency"], product["stockAvailable"]) == (
        1999,
        "EUR",
        7,
    )
