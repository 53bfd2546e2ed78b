"""The read database's shared pieces: the one ``metadata`` every read table is defined on,
the column types the screens share, and the engine's own tables (checkpoints, dead
letters). Each screen's table is defined in its module under ``screens/``."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()
Timestamp = sa.DateTime(timezone=True)
Position = sa.BigInteger().with_variant(sa.Integer, "sqlite")

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

# Which process applies events now, and since when: written by the leader when it takes
# over (``engine/leadership.py``), for people and dashboards. Informational only: the lock
# itself is a PostgreSQL advisory lock or a lock file, and the checkpoint row is the fence.
projection_leader = sa.Table(
    "projection_leader",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("holder", sa.String(200), nullable=False),
    sa.Column("since", Timestamp, nullable=False),
)
