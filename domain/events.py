"""Domain events: what happened, in the past tense. Stored in the event log (the outbox)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar


@dataclasses.dataclass(frozen=True, slots=True)
class Event:
    SCHEMA_VERSION: ClassVar[int] = 1

    def payload(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def type(self) -> str:
        return type(self).__name__


@dataclasses.dataclass(frozen=True, slots=True)
class CustomerRegistered(Event):
    customer_id: str
    email: str
    name: str


@dataclasses.dataclass(frozen=True, slots=True)
class ProductAdded(Event):
    """v2 added ``currency``; v1 payloads (a single-currency shop, EUR) are upcast."""

    SCHEMA_VERSION: ClassVar[int] = 2

    product_id: str
    sku: str
    name: str
    description: str | None
    price_cents: int
    currency: str
    stock: int


@dataclasses.dataclass(frozen=True, slots=True)
class ProductRestocked(Event):
    product_id: str
    sku: str
    quantity: int


@dataclasses.dataclass(frozen=True, slots=True)
class ProductPriceChanged(Event):
    product_id: str
    sku: str
    old_price_cents: int
    price_cents: int


@dataclasses.dataclass(frozen=True, slots=True)
class OrderLineData:
    """A line as ordered: the product's name and price are frozen at order time."""

    sku: str
    product_id: str
    product_name: str
    quantity: int
    unit_price_cents: int


@dataclasses.dataclass(frozen=True, slots=True)
class OrderPlaced(Event):
    order_id: str
    customer_id: str
    lines: tuple[OrderLineData, ...]
    total_cents: int
    item_count: int
    currency: str


@dataclasses.dataclass(frozen=True, slots=True)
class OrderPaid(Event):
    order_id: str
    customer_id: str
    amount_cents: int
    # What was sold, for consumers that count sales per product.
    lines: tuple[OrderLineData, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class OrderCancelled(Event):
    order_id: str
    customer_id: str
    reason: str | None
    cancelled_by: str
    previous_status: str
    # Stock released back to the catalog, and the amount refunded (0 if it was never paid).
    lines: tuple[OrderLineData, ...]
    refunded_cents: int


@dataclasses.dataclass(frozen=True, slots=True)
class OrderShipped(Event):
    order_id: str
    customer_id: str
    carrier: str
    tracking_number: str


@dataclasses.dataclass(frozen=True, slots=True)
class OrderDelivered(Event):
    order_id: str
    customer_id: str


EVENT_TYPES: dict[str, type[Event]] = {
    cls.__name__: cls
    for cls in (
        CustomerRegistered,
        ProductAdded,
        ProductRestocked,
        ProductPriceChanged,
        OrderPlaced,
        OrderPaid,
        OrderCancelled,
        OrderShipped,
        OrderDelivered,
    )
}

ORDER_EVENT_TYPES = frozenset(
    {"OrderPlaced", "OrderPaid", "OrderCancelled", "OrderShipped", "OrderDelivered"}
)

# Upcasters turn a stored payload of an older schema version into the next version:
# (event type, from version) -> function. Projectors only ever see current versions.
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


def _product_added_v1_to_v2(payload: dict[str, Any]) -> dict[str, Any]:
    return {"currency": "EUR", **payload}


UPCASTERS: dict[tuple[str, int], Upcaster] = {
    ("ProductAdded", 1): _product_added_v1_to_v2,
}


def upcast(event_type: str, schema_version: int, payload: dict[str, Any]) -> dict[str, Any]:
    current = EVENT_TYPES[event_type].SCHEMA_VERSION
    while schema_version < current:
        payload = UPCASTERS[(event_type, schema_version)](payload)
        schema_version += 1
    return payload


def from_payload(event_type: str, payload: dict[str, Any]) -> Event:
    """Rebuild a typed event from its current-version payload."""
    cls = EVENT_TYPES[event_type]
    if "lines" in payload:
        payload = {**payload, "lines": tuple(OrderLineData(**line) for line in payload["lines"])}
    return cls(**payload)
