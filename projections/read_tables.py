"""Read models: one table per screen, shaped so each screen is one indexed read, no joins.

Order screens store the order as a JSON document (see ``order_doc.py``) next to the
columns they filter and sort on.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()
Timestamp = sa.DateTime(timezone=True)
Position = sa.BigInteger().with_variant(sa.Integer, "sqlite")

# Catalog screen: products(search, inStock) and product(sku).
catalog_products = sa.Table(
    "catalog_products",
    metadata,
    sa.Column("product_id", sa.String(36), primary_key=True),
    sa.Column("sku", sa.String(64), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("price_cents", sa.Integer, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("stock_available", sa.Integer, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    sa.Index("ix_catalog_products_name", "name", "product_id"),
)

# Order history screen: myOrders(status), newest first.
order_history = sa.Table(
    "order_history",
    metadata,
    sa.Column("order_id", sa.String(36), primary_key=True),
    sa.Column("customer_id", sa.String(36), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("sort_key", Position, nullable=False),
    sa.Column("doc", sa.Text, nullable=False),
    sa.Index("ix_order_history_customer", "customer_id", "sort_key"),
    sa.Index("ix_order_history_customer_status", "customer_id", "status", "sort_key"),
)

# Order detail screen: order(id), node(id) and the order subscriptions.
order_detail = sa.Table(
    "order_detail",
    metadata,
    sa.Column("order_id", sa.String(36), primary_key=True),
    sa.Column("customer_id", sa.String(36), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("doc", sa.Text, nullable=False),
)

# Every state the order detail screen went through, for subscribers that reconnect
# (orderStatus(afterVersion:)): the order document right after each of its events.
order_changes = sa.Table(
    "order_changes",
    metadata,
    sa.Column("order_id", sa.String(36), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("event", sa.String(64), nullable=False),
    sa.Column("occurred_at", Timestamp, nullable=False),
    sa.Column("doc", sa.Text, nullable=False),
)

# Fulfillment queue screen: open orders; the paid ones are the queue, oldest payment first.
fulfillment_queue = sa.Table(
    "fulfillment_queue",
    metadata,
    sa.Column("order_id", sa.String(36), primary_key=True),
    sa.Column("paid_sort_key", Position, nullable=True),
    sa.Column("doc", sa.Text, nullable=False),
    sa.Index("ix_fulfillment_queue_paid", "paid_sort_key"),
)

# Customer profile screen: me, and Order.customer.
customer_profiles = sa.Table(
    "customer_profiles",
    metadata,
    sa.Column("customer_id", sa.String(36), primary_key=True),
    sa.Column("email", sa.String(200), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("order_count", sa.Integer, nullable=False),
    sa.Column("lifetime_spend_cents", sa.Integer, nullable=False),
    sa.Column("registered_at", Timestamp, nullable=False),
    sa.Index("ix_customer_profiles_email", "email"),
)

# Sales dashboard screen: one row per figure. kind = 'total' (key 'all'),
# 'status' (key = order status) or 'product' (key = sku, label = product name).
sales_dashboard = sa.Table(
    "sales_dashboard",
    metadata,
    sa.Column("kind", sa.String(16), primary_key=True),
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("label", sa.String(200), nullable=True),
    sa.Column("tally", sa.Integer, nullable=False),  # orders, or units sold
    sa.Column("amount_cents", sa.BigInteger, nullable=False),
    sa.Index("ix_sales_dashboard_rank", "kind", "tally"),
)

projection_checkpoints = sa.Table(
    "projection_checkpoints",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("position", Position, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    # Bumped when the rows change other than by moving forward (rebuild, retry).
    sa.Column("generation", sa.Integer, nullable=False, server_default="0"),
)

# Events a projector could not apply ("poison"), parked with the error; later events of the
# same stream wait here behind them, so each order's events still apply in order.
projection_dead_letters = sa.Table(
    "projection_dead_letters",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("position", Position, primary_key=True),
    sa.Column("stream_id", sa.String(64), nullable=False),
    sa.Column("event_type", sa.String(64), nullable=False),
    sa.Column("error", sa.Text, nullable=False),
    sa.Column("parked_at", Timestamp, nullable=False),
    sa.Index("ix_projection_dead_letters_stream", "name", "stream_id"),
)
