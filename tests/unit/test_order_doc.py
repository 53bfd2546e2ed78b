"""Unit tests for the pure order-document builder projections.order_doc.apply_event."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Iterable
from typing import Any

import pytest

from domain import events as e
from projections.base import StoredEvent, iso
from projections.order_doc import Doc, apply_event, dumps

ORDER_ID = "ord-1"
CUSTOMER_ID = "cust-1"
T0 = dt.datetime(2024, 5, 1, 12, 0, 0, tzinfo=dt.UTC)

LINES = (
    e.OrderLineData("SKU-A", "prod-a", "Widget", 2, 1500),
    e.OrderLineData("SKU-B", "prod-b", "Gadget", 1, 999),
)
TOTAL = 2 * 1500 + 999
ITEMS = 3


def at(minutes: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def stored(data: e.Event, *, position: int, version: int, when: dt.datetime) -> StoredEvent[Any]:
    return StoredEvent(
        position=position,
        stream_id=f"order-{ORDER_ID}",
        stream_version=version,
        type=data.type,
        occurred_at=when,
        command_id=f"cmd-{position}",
        data=data,
    )


def placed(position: int = 10, version: int = 1, when: dt.datetime = T0) -> StoredEvent[Any]:
    data = e.OrderPlaced(ORDER_ID, CUSTOMER_ID, LINES, TOTAL, ITEMS, "EUR")
    return stored(data, position=position, version=version, when=when)


def paid(position: int = 20, version: int = 2, when: dt.datetime | None = None) -> StoredEvent[Any]:
    data = e.OrderPaid(ORDER_ID, CUSTOMER_ID, TOTAL, LINES)
    return stored(data, position=position, version=version, when=when or at(5))


def shipped(
    position: int = 30, version: int = 3, when: dt.datetime | None = None
) -> StoredEvent[Any]:
    data = e.OrderShipped(ORDER_ID, CUSTOMER_ID, "DHL", "TRACK-123")
    return stored(data, position=position, version=version, when=when or at(60))


def delivered(
    position: int = 40, version: int = 4, when: dt.datetime | None = None
) -> StoredEvent[Any]:
    data = e.OrderDelivered(ORDER_ID, CUSTOMER_ID)
    return stored(data, position=position, version=version, when=when or at(24 * 60))


def cancelled(
    *,
    previous: str,
    refunded: int,
    position: int = 25,
    version: int = 2,
    when: dt.datetime | None = None,
    reason: str | None = "changed my mind",
) -> StoredEvent[Any]:
    data = e.OrderCancelled(ORDER_ID, CUSTOMER_ID, reason, CUSTOMER_ID, previous, LINES, refunded)
    return stored(data, position=position, version=version, when=when or at(10))


def fold(events: Iterable[StoredEvent[Any]]) -> Doc:
    doc: Doc | None = None
    for event in events:
        doc = apply_event(doc, event)
    assert doc is not None
    return doc


def assert_iso_utc(value: str) -> None:
    """UTC, written exactly as the GraphQL DateTime scalar writes it."""
    assert isinstance(value, str)
    assert value.endswith("+00:00")
    parsed = dt.datetime.fromisoformat(value)
    assert parsed.tzinfo is not None
    assert parsed.utcoffset() == dt.timedelta(0)
    assert parsed.isoformat() == value


# --------------------------------------------------------------------------- iso helper


def test_iso_formats_utc_as_graphql_does() -> None:
    assert iso(T0) == "2024-05-01T12:00:00+00:00"


def test_iso_treats_naive_as_utc() -> None:
    assert iso(dt.datetime(2024, 5, 1, 12, 0, 0)) == "2024-05-01T12:00:00+00:00"


def test_iso_converts_other_zones_to_utc() -> None:
    cest = dt.timezone(dt.timedelta(hours=2))
    assert iso(dt.datetime(2024, 5, 1, 14, 0, 0, tzinfo=cest)) == "2024-05-01T12:00:00+00:00"


# --------------------------------------------------------------------------- OrderPlaced


def test_placed_builds_full_document() -> None:
    doc = apply_event(None, placed())
    t0 = "2024-05-01T12:00:00+00:00"
    assert doc == {
        "id": ORDER_ID,
        "customer_id": CUSTOMER_ID,
        "status": "PLACED",
        "placed_at": t0,
        "updated_at": t0,
        "version": 1,
        "sort_key": 10,
        "paid_position": None,
        "currency": "EUR",
        "total_cents": TOTAL,
        "item_count": ITEMS,
        "lines": [
            {
                "sku": "SKU-A",
                "product_id": "prod-a",
                "product_name": "Widget",
                "quantity": 2,
                "unit_price_cents": 1500,
            },
            {
                "sku": "SKU-B",
                "product_id": "prod-b",
                "product_name": "Gadget",
                "quantity": 1,
                "unit_price_cents": 999,
            },
        ],
        "payment": None,
        "shipment": None,
        "timeline": [{"status": "PLACED", "at": t0}],
        "cancel_reason": None,
    }


def test_placed_document_is_json_serializable() -> None:
    doc = fold([placed(), paid(), shipped(), delivered()])
    text = dumps(doc)
    assert isinstance(text, str)
    assert '"status":"DELIVERED"' in text


def test_placed_with_naive_time_is_utc() -> None:
    doc = apply_event(None, placed(when=dt.datetime(2024, 1, 2, 3, 4, 5, 678000)))
    assert doc["placed_at"] == "2024-01-02T03:04:05.678000+00:00"
    assert_iso_utc(doc["timeline"][0]["at"])


# --------------------------------------------------------------------------- full lifecycle


def test_full_lifecycle_placed_paid_shipped_delivered() -> None:
    events = [placed(), paid(), shipped(), delivered()]
    doc = fold(events)

    assert doc["status"] == "DELIVERED"
    assert doc["version"] == 4
    assert doc["sort_key"] == 10  # the placement position, never changed
    assert doc["paid_position"] == 20
    assert doc["placed_at"] == iso(T0)
    assert doc["updated_at"] == iso(at(24 * 60))
    assert doc["cancel_reason"] is None
    assert doc["total_cents"] == TOTAL

    assert [entry["status"] for entry in doc["timeline"]] == [
        "PLACED",
        "PAID",
        "SHIPPED",
        "DELIVERED",
    ]
    assert [entry["at"] for entry in doc["timeline"]] == [iso(ev.occurred_at) for ev in events]
    for entry in doc["timeline"]:
        assert_iso_utc(entry["at"])
    assert_iso_utc(doc["placed_at"])
    assert_iso_utc(doc["updated_at"])

    assert doc["payment"] == {
        "status": "PAID",
        "amount_cents": TOTAL,
        "paid_at": iso(at(5)),
        "refunded_at": None,
    }
    assert doc["shipment"] == {
        "carrier": "DHL",
        "tracking_number": "TRACK-123",
        "status": "DELIVERED",
        "shipped_at": iso(at(60)),
        "delivered_at": iso(at(24 * 60)),
    }
    assert_iso_utc(doc["payment"]["paid_at"])
    assert_iso_utc(doc["shipment"]["shipped_at"])
    assert_iso_utc(doc["shipment"]["delivered_at"])


def test_each_step_of_the_lifecycle() -> None:
    doc = apply_event(None, placed())

    doc = apply_event(doc, paid())
    assert doc["status"] == "PAID"
    assert doc["version"] == 2
    assert doc["paid_position"] == 20
    assert doc["payment"]["status"] == "PAID"
    assert doc["shipment"] is None
    assert doc["updated_at"] == iso(at(5))
    assert len(doc["timeline"]) == 2

    doc = apply_event(doc, shipped())
    assert doc["status"] == "SHIPPED"
    assert doc["version"] == 3
    assert doc["paid_position"] == 20
    assert doc["payment"]["status"] == "PAID"
    assert doc["shipment"] == {
        "carrier": "DHL",
        "tracking_number": "TRACK-123",
        "status": "SHIPPED",
        "shipped_at": iso(at(60)),
        "delivered_at": None,
    }
    assert doc["timeline"][-1] == {"status": "SHIPPED", "at": iso(at(60))}

    doc = apply_event(doc, delivered())
    assert doc["status"] == "DELIVERED"
    assert doc["shipment"]["status"] == "DELIVERED"
    assert doc["shipment"]["shipped_at"] == iso(at(60))
    assert doc["timeline"][-1] == {"status": "DELIVERED", "at": iso(at(24 * 60))}


def test_version_follows_stream_version_not_count() -> None:
    doc = fold([placed(version=7), paid(version=8)])
    assert doc["version"] == 8


# --------------------------------------------------------------------------- cancellation


def test_cancel_paid_order_refunds_payment() -> None:
    cancel_at = at(30)
    doc = fold(
        [
            placed(),
            paid(),
            cancelled(previous="PAID", refunded=TOTAL, position=31, version=3, when=cancel_at),
        ]
    )
    assert doc["status"] == "CANCELLED"
    assert doc["version"] == 3
    assert doc["cancel_reason"] == "changed my mind"
    assert doc["paid_position"] == 20
    assert doc["payment"] == {
        "status": "REFUNDED",
        "amount_cents": TOTAL,
        "paid_at": iso(at(5)),
        "refunded_at": iso(cancel_at),
    }
    assert_iso_utc(doc["payment"]["refunded_at"])
    assert doc["shipment"] is None
    assert [t["status"] for t in doc["timeline"]] == ["PLACED", "PAID", "CANCELLED"]
    assert doc["timeline"][-1]["at"] == iso(cancel_at)
    assert doc["updated_at"] == iso(cancel_at)


def test_cancel_placed_order_leaves_payment_none() -> None:
    doc = fold([placed(), cancelled(previous="PLACED", refunded=0, reason=None)])
    assert doc["status"] == "CANCELLED"
    assert doc["payment"] is None
    assert doc["paid_position"] is None
    assert doc["cancel_reason"] is None
    assert doc["version"] == 2
    assert [t["status"] for t in doc["timeline"]] == ["PLACED", "CANCELLED"]


def test_cancel_keeps_reason() -> None:
    doc = fold([placed(), cancelled(previous="PLACED", refunded=0, reason="too slow")])
    assert doc["cancel_reason"] == "too slow"


def test_refund_does_not_mutate_earlier_payment_dict() -> None:
    before = fold([placed(), paid()])
    payment_before = before["payment"]
    after = apply_event(before, cancelled(previous="PAID", refunded=TOTAL, version=3))
    assert after["payment"]["status"] == "REFUNDED"
    assert payment_before == {
        "status": "PAID",
        "amount_cents": TOTAL,
        "paid_at": iso(at(5)),
        "refunded_at": None,
    }


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "make",
    [
        paid,
        shipped,
        delivered,
        lambda: cancelled(previous="PLACED", refunded=0),
    ],
    ids=["paid", "shipped", "delivered", "cancelled"],
)
def test_event_for_unknown_order_raises(make: Any) -> None:
    event = make()
    with pytest.raises(ValueError, match=event.type) as info:
        apply_event(None, event)
    assert "unknown order" in str(info.value)
    assert str(event.position) in str(info.value)


def test_non_order_event_raises() -> None:
    doc = apply_event(None, placed())
    data = e.ProductRestocked("prod-a", "SKU-A", 5)
    event = stored(data, position=50, version=2, when=at(1))
    with pytest.raises(ValueError, match="Not an order event: ProductRestocked"):
        apply_event(doc, event)


def test_placed_restarts_document_even_if_doc_given() -> None:
    old = fold([placed(), paid()])
    doc = apply_event(old, placed(position=99, version=1, when=at(100)))
    assert doc["status"] == "PLACED"
    assert doc["sort_key"] == 99
    assert doc["payment"] is None
    assert doc["timeline"] == [{"status": "PLACED", "at": iso(at(100))}]


# --------------------------------------------------------------------------- purity


@pytest.mark.parametrize(
    ("history", "next_event"),
    [
        ([placed()], paid()),
        ([placed()], cancelled(previous="PLACED", refunded=0)),
        ([placed(), paid()], shipped()),
        ([placed(), paid()], cancelled(previous="PAID", refunded=TOTAL, version=3)),
        ([placed(), paid(), shipped()], delivered()),
    ],
    ids=["pay", "cancel-placed", "ship", "cancel-paid", "deliver"],
)
def test_apply_event_does_not_mutate_input(
    history: list[StoredEvent[Any]], next_event: StoredEvent[Any]
) -> None:
    doc = fold(history)
    snapshot = copy.deepcopy(doc)
    timeline = doc["timeline"]
    new = apply_event(doc, next_event)
    assert doc == snapshot
    assert new is not doc
    assert new["timeline"] is not timeline
    assert len(timeline) == len(snapshot["timeline"])
    assert new != doc


def test_apply_event_is_deterministic() -> None:
    events = [placed(), paid(), shipped(), delivered()]
    assert fold(events) == fold(events)
