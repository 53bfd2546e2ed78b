"""The order document: the whole order as screens show it, built from order events alone.

Pure functions, shared by the order history, order detail and fulfillment projectors.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from domain import events as e
from domain.events import ORDER_EVENT_TYPES, Event
from projections.base import OrderChange, StoredEvent, iso

Doc = dict[str, Any]


def _placed(event: StoredEvent[e.OrderPlaced]) -> Doc:
    data, at = event.data, iso(event.occurred_at)
    return {
        "id": data.order_id,
        "customer_id": data.customer_id,
        "status": "PLACED",
        "placed_at": at,
        "updated_at": at,
        "version": event.stream_version,
        "sort_key": event.position,
        "paid_position": None,
        "currency": data.currency,
        "total_cents": data.total_cents,
        "item_count": data.item_count,
        "lines": [
            {
                "sku": line.sku,
                "product_id": line.product_id,
                "product_name": line.product_name,
                "quantity": line.quantity,
                "unit_price_cents": line.unit_price_cents,
            }
            for line in data.lines
        ],
        "payment": None,
        "shipment": None,
        "timeline": [{"status": "PLACED", "at": at}],
        "cancel_reason": None,
    }


def apply_event(doc: Doc | None, event: StoredEvent[Any]) -> Doc:
    """Return the order document after ``event`` (``doc`` is None before OrderPlaced)."""
    if event.type == "OrderPlaced":
        return _placed(event)
    if doc is None:
        raise ValueError(f"{event.type} at position {event.position} for an unknown order")
    at = iso(event.occurred_at)
    data = event.data
    doc = {**doc, "version": event.stream_version, "updated_at": at}
    if isinstance(data, e.OrderPaid):
        status = "PAID"
        doc["paid_position"] = event.position
        doc["payment"] = {
            "status": "PAID",
            "amount_cents": data.amount_cents,
            "paid_at": at,
            "refunded_at": None,
        }
    elif isinstance(data, e.OrderCancelled):
        status = "CANCELLED"
        doc["cancel_reason"] = data.reason
        if doc["payment"] is not None:
            doc["payment"] = {**doc["payment"], "status": "REFUNDED", "refunded_at": at}
    elif isinstance(data, e.OrderShipped):
        status = "SHIPPED"
        doc["shipment"] = {
            "carrier": data.carrier,
            "tracking_number": data.tracking_number,
            "status": "SHIPPED",
            "shipped_at": at,
            "delivered_at": None,
        }
    elif isinstance(data, e.OrderDelivered):
        status = "DELIVERED"
        doc["shipment"] = {**doc["shipment"], "status": "DELIVERED", "delivered_at": at}
    else:
        raise ValueError(f"Not an order event: {event.type}")
    doc["status"] = status
    doc["timeline"] = [*doc["timeline"], {"status": status, "at": at}]
    return doc


def dumps(doc: Mapping[str, Any]) -> str:
    return orjson.dumps(doc).decode()


class _Statements:
    """One screen table's statements, built once: constructing a statement costs more
    than running it."""

    def __init__(self, table: sa.Table) -> None:
        self.table = table
        key = table.c.order_id
        self.select_docs = sa.select(key, table.c.doc).where(
            key.in_(sa.bindparam("ids", expanding=True))
        )
        self.by_key = key == sa.bindparam("k_order_id")
        self.delete = sa.delete(table).where(self.by_key)
        self.insert = sa.insert(table)
        self._updates: dict[tuple[str, ...], sa.Update] = {}

    def update(self, names: tuple[str, ...]) -> sa.Update:
        """UPDATE of the columns ``names`` (all but ``k_order_id``), by ``k_order_id``."""
        statement = self._updates.get(names)
        if statement is None:
            columns: dict[str, Any] = {
                name: sa.bindparam(name) for name in names if name != "k_order_id"
            }
            statement = self._updates[names] = (
                sa.update(self.table).where(self.by_key).values(columns)
            )
        return statement


# Maps an order's latest document to its row in a screen's table (None: no row).
RowOf = Callable[[Doc], dict[str, Any] | None]


@dataclasses.dataclass(frozen=True)
class OrderDocProjector:
    """Keeps one order screen's table: loads the batch's documents once, applies the
    events in memory, writes each changed document back once.

    ``row_of`` decides each order's row; ``keeps_all`` says whether every order has a
    row for life (so an event for an order without one is an error) or only some do.
    ``changes_table``, if given, also keeps the document after every event (for replay),
    and makes this projector the one whose commits are published to subscribers.
    """

    name: str
    table: sa.Table
    row_of: RowOf
    keeps_all: bool = True
    changes_table: sa.Table | None = None

    @property
    def tables(self) -> tuple[sa.Table, ...]:
        return (self.table,) if self.changes_table is None else (self.table, self.changes_table)

    def apply(
        self, conn: Connection, events: Sequence[StoredEvent[Event]]
    ) -> Sequence[OrderChange]:
        order_events = [ev for ev in events if ev.type in ORDER_EVENT_TYPES]
        if not order_events:
            return ()
        ids = {ev.data.order_id for ev in order_events}  # type: ignore[attr-defined]
        stored: dict[str, Doc] = {
            row.order_id: orjson.loads(row.doc)
            for row in conn.execute(self._statements.select_docs, {"ids": list(ids)})
        }
        docs: dict[str, Doc | None] = {order_id: stored.get(order_id) for order_id in ids}
        changes: list[OrderChange] = []
        for ev in order_events:
            order_id: str = ev.data.order_id  # type: ignore[attr-defined]
            doc = docs[order_id]
            if doc is None and ev.type != "OrderPlaced" and not self.keeps_all:
                continue  # an order this screen no longer (or never) shows
            doc = docs[order_id] = apply_event(doc, ev)
            changes.append(
                OrderChange(
                    order_id, doc["customer_id"], ev.stream_version, ev.type, ev.occurred_at, doc
                )
            )
        self._write(conn, stored, docs, {change.order_id for change in changes})
        if self.changes_table is None:
            return ()
        if changes:
            conn.execute(
                self.changes_table.insert(),
                [
                    {
                        "order_id": ch.order_id,
                        "version": ch.version,
                        "event": ch.event,
                        "occurred_at": ch.occurred_at,
                        "doc": dumps(ch.doc),
                    }
                    for ch in changes
                ],
            )
        return changes

    def _write(
        self,
        conn: Connection,
        stored: dict[str, Doc],
        docs: dict[str, Doc | None],
        touched: set[str],
    ) -> None:
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        deletes: list[dict[str, Any]] = []
        for order_id in touched:
            doc = docs[order_id]
            assert doc is not None
            row = self.row_of(doc)
            if row is None:
                if order_id in stored:
                    deletes.append({"k_order_id": order_id})
            elif order_id in stored:
                updates.append({"k_order_id": order_id, **row})
            else:
                inserts.append({"order_id": order_id, **row})
        statements = self._statements
        if deletes:
            conn.execute(statements.delete, deletes)
        if updates:
            conn.execute(statements.update(tuple(updates[0])), updates)
        if inserts:
            conn.execute(statements.insert, inserts)

    @functools.cached_property
    def _statements(self) -> _Statements:
        return _Statements(self.table)
