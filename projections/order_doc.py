"""The order document: the whole order as screens show it, built from order events alone.

Pure functions, shared by the order history, order detail and fulfillment projectors.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from domain import events as e
from domain.events import ORDER_EVENT_TYPES, Event
from domain.model import OrderStatus
from projections.base import OrderChange, StoredEvent, iso

Doc = dict[str, Any]


def _placed(event: StoredEvent[e.OrderPlaced]) -> Doc:
    data, at = event.data, iso(event.occurred_at)
    return {
        "id": data.order_id,
        "customer_id": data.customer_id,
        "status": OrderStatus.PLACED,
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
        "timeline": [{"status": OrderStatus.PLACED, "at": at}],
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
        status = OrderStatus.PAID
        doc["paid_position"] = event.position
        doc["payment"] = {
            "status": "PAID",
            "amount_cents": data.amount_cents,
            "paid_at": at,
            "refunded_at": None,
        }
    elif isinstance(data, e.OrderCancelled):
        status = OrderStatus.CANCELLED
        doc["cancel_reason"] = data.reason
        if doc["payment"] is not None:
            doc["payment"] = {**doc["payment"], "status": "REFUNDED", "refunded_at": at}
    elif isinstance(data, e.OrderShipped):
        status = OrderStatus.SHIPPED
        doc["shipment"] = {
            "carrier": data.carrier,
            "tracking_number": data.tracking_number,
            "status": "SHIPPED",
            "shipped_at": at,
            "delivered_at": None,
        }
    elif isinstance(data, e.OrderDelivered):
        status = OrderStatus.DELIVERED
        doc["shipment"] = {**doc["shipment"], "status": "DELIVERED", "delivered_at": at}
    else:
        raise ValueError(f"Not an order event: {event.type}")
    doc["status"] = status
    doc["timeline"] = [*doc["timeline"], {"status": status, "at": at}]
    return doc


Fold = tuple[dict[str, Any] | None, list[OrderChange]]
_shared_folds: contextvars.ContextVar[dict[tuple[object, ...], Fold] | None] = (
    contextvars.ContextVar("shopfront_shared_folds", default=None)
)
_shared_json: contextvars.ContextVar[dict[int, tuple[Mapping[str, Any], str]] | None] = (
    contextvars.ContextVar("shopfront_shared_json", default=None)
)


@contextlib.contextmanager
def shared_folds() -> Iterator[None]:
    """Within this block (one batch applied by several projectors on one thread), the
    order screens fold each order's events once and encode each document once."""
    folds = _shared_folds.set({})
    encoded = _shared_json.set({})
    try:
        yield
    finally:
        _shared_folds.reset(folds)
        _shared_json.reset(encoded)


def dumps(doc: Mapping[str, Any]) -> str:
    cache = _shared_json.get()
    if cache is None:
        return orjson.dumps(doc).decode()
    found = cache.get(id(doc))
    if found is not None and found[0] is doc:
        return found[1]
    text = orjson.dumps(doc).decode()
    cache[id(doc)] = (doc, text)  # holds the document: its id is not reused meanwhile
    return text


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
        folded = self.fold_batch(conn, events)
        if folded is None:
            return ()
        self.store(conn, *folded)
        return () if self.changes_table is None else folded[2]

    def store(
        self,
        conn: Connection,
        stored: Collection[str],
        docs: dict[str, Doc | None],
        changes: list[OrderChange],
    ) -> None:
        """Write a folded batch (see ``fold_batch``): each changed order's row, and with a
        ``changes_table`` the document after every change."""
        self._write(conn, stored, docs, {change.order_id for change in changes})
        if self.changes_table is not None and changes:
            conn.execute(
                self.changes_table.insert(),
                [
                    {
                        "order_id": ch.order_id,
                        "version": ch.version,
                        "event": ch.event,
                        "occurred_at": ch.occurred_at,
                        "doc": dumps(ch.doc),
                        "position": ch.position,
                    }
                    for ch in changes
                ],
            )

    def fold_batch(
        self, conn: Connection, events: Sequence[StoredEvent[Event]]
    ) -> tuple[Collection[str], dict[str, Doc | None], list[OrderChange]] | None:
        """The batch's order events folded onto the stored documents: (the orders that
        have a row, each order's document after the batch, every change in log order);
        None if the batch has no order event. Writes nothing."""
        order_events = [ev for ev in events if ev.type in ORDER_EVENT_TYPES]
        if not order_events:
            return None
        by_order: dict[str, list[StoredEvent[Event]]] = {}
        for ev in order_events:
            by_order.setdefault(ev.data.order_id, []).append(ev)  # type: ignore[attr-defined]
        stored = self.load_docs(conn, list(by_order))
        folds = _shared_folds.get()
        docs: dict[str, Doc | None] = {}
        changes: list[OrderChange] = []
        for order_id, evs in by_order.items():
            raw = stored.get(order_id)
            # The same stored document and the same events fold the same way: the order
            # screens applying one batch share the work (see ``shared_folds``).
            # keeps_all only matters for events of an order this screen has no row for.
            skips = self.keeps_all if raw is None and evs[0].type != "OrderPlaced" else None
            key = (order_id, raw, tuple(ev.position for ev in evs), skips)
            fold = None if folds is None else folds.get(key)
            if fold is None:
                fold = self._fold(order_id, None if raw is None else orjson.loads(raw), evs)
                if folds is not None:
                    folds[key] = fold
            docs[order_id], order_changes = fold
            changes.extend(order_changes)
        if len(by_order) > 1:
            changes.sort(key=lambda change: change.position)
        return stored.keys(), docs, changes

    def load_docs(self, conn: Connection, order_ids: list[str]) -> dict[str, str]:
        """The stored documents (JSON) of those of ``order_ids`` that have a row."""
        return {
            row.order_id: row.doc
            for row in conn.execute(self._statements.select_docs, {"ids": order_ids})
        }

    def _fold(
        self, order_id: str, doc: Doc | None, events: list[StoredEvent[Event]]
    ) -> tuple[Doc | None, list[OrderChange]]:
        """One order's document after ``events``, and its change after each of them."""
        changes: list[OrderChange] = []
        for ev in events:
            if doc is None and ev.type != "OrderPlaced" and not self.keeps_all:
                continue  # an order this screen no longer (or never) shows
            doc = apply_event(doc, ev)
            changes.append(
                OrderChange(
                    order_id,
                    doc["customer_id"],
                    ev.stream_version,
                    ev.type,
                    ev.occurred_at,
                    doc,
                    ev.position,
                )
            )
        return doc, changes

    def _write(
        self,
        conn: Connection,
        stored: Collection[str],
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
