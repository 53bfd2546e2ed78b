"""The write model (relational, the source of truth) and the event log (outbox)."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()
Timestamp = sa.DateTime(timezone=True)

customers = sa.Table(
    "customers",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("email", sa.String(200), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
)

products = sa.Table(
    "products",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("sku", sa.String(64), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("price_cents", sa.Integer, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("stock_on_hand", sa.Integer, nullable=False),
    sa.Column("stock_reserved", sa.Integer, nullable=False, server_default="0"),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    sa.CheckConstraint("price_cents >= 0", name="ck_products_price"),
    sa.CheckConstraint("stock_reserved >= 0", name="ck_products_reserved"),
    sa.CheckConstraint("stock_on_hand >= stock_reserved", name="ck_products_stock"),
)

orders = sa.Table(
    "orders",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("customer_id", sa.String(36), sa.ForeignKey("customers.id"), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("total_cents", sa.Integer, nullable=False),
    sa.Column("item_count", sa.Integer, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("idempotency_key", sa.String(200), nullable=True),
    sa.Column("request_hash", sa.String(64), nullable=True),
    sa.Column("placed_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    sa.UniqueConstraint("customer_id", "idempotency_key", name="uq_orders_idempotency"),
    sa.Index("ix_orders_customer", "customer_id"),
)

order_lines = sa.Table(
    "order_lines",
    metadata,
    sa.Column("order_id", sa.String(36), sa.ForeignKey("orders.id"), primary_key=True),
    sa.Column("line_no", sa.Integer, primary_key=True),
    sa.Column("product_id", sa.String(36), sa.ForeignKey("products.id"), nullable=False),
    sa.Column("sku", sa.String(64), nullable=False),
    sa.Column("product_name", sa.String(200), nullable=False),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("unit_price_cents", sa.Integer, nullable=False),
    sa.CheckConstraint("quantity > 0", name="ck_order_lines_quantity"),
)

payments = sa.Table(
    "payments",
    metadata,
    sa.Column("order_id", sa.String(36), sa.ForeignKey("orders.id"), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("amount_cents", sa.Integer, nullable=False),
    sa.Column("paid_at", Timestamp, nullable=True),
    sa.Column("refunded_at", Timestamp, nullable=True),
)

shipments = sa.Table(
    "shipments",
    metadata,
    sa.Column("order_id", sa.String(36), sa.ForeignKey("orders.id"), primary_key=True),
    sa.Column("carrier", sa.String(200), nullable=False),
    sa.Column("tracking_number", sa.String(200), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("shipped_at", Timestamp, nullable=True),
    sa.Column("delivered_at", Timestamp, nullable=True),
)

# The event log. ``position`` is handed out from ``event_log_head`` inside the writing
# transaction, so positions become visible in commit order with no gaps, on SQLite and
# on PostgreSQL alike (a sequence would let a reader see 7 before a slower 6 commits).
events = sa.Table(
    "events",
    metadata,
    sa.Column(
        "position",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        primary_key=True,
        autoincrement=False,
    ),
    sa.Column("stream_id", sa.String(64), nullable=False),
    sa.Column("stream_version", sa.Integer, nullable=False),
    sa.Column("type", sa.String(64), nullable=False),
    sa.Column("schema_version", sa.Integer, nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("occurred_at", Timestamp, nullable=False),
    sa.Column("command_id", sa.String(36), nullable=False),
    sa.UniqueConstraint("stream_id", "stream_version", name="uq_events_stream_version"),
)

event_log_head = sa.Table(
    "event_log_head",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("position", sa.BigInteger().with_variant(sa.Integer, "sqlite"), nullable=False),
)
