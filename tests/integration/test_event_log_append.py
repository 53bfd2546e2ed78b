"""domain.event_log.append on a real write database: the events one command records take
consecutive positions after the head, in the order they were recorded, and the head
counter moves with them in the same transaction."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from api.database import create_sync_engine
from api.settings import Settings
from domain import write_tables as w
from domain.event_log import Recorder, append
from domain.events import CustomerRegistered


def _recorder(command_id: str, *emails: str) -> Recorder:
    recorder = Recorder(command_id, dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC))
    for version, email in enumerate(emails, start=1):
        recorder.record(f"customer-{email}", version, CustomerRegistered(email, email, email))
    return recorder


def test_a_commands_events_take_consecutive_positions_in_recorded_order(
    settings: Settings,
) -> None:
    engine = create_sync_engine(settings.write_database_url, "write")
    try:
        with engine.begin() as conn:
            head = conn.execute(sa.select(w.event_log_head.c.position)).scalar_one()
            assert append(conn, _recorder("nothing")) is None
            assert append(conn, _recorder("one", "a")) == head + 1
            last = append(conn, _recorder("three", "b", "c", "d"))
            assert last == head + 4
        with engine.connect() as conn:
            assert conn.execute(sa.select(w.event_log_head.c.position)).scalar_one() == last
            rows = conn.execute(
                sa.select(w.events.c.position, w.events.c.stream_id, w.events.c.command_id)
                .where(w.events.c.position > head)
                .order_by(w.events.c.position)
            ).all()
    finally:
        engine.dispose()
    assert [tuple(row) for row in rows] == [
        (head + 1, "customer-a", "one"),
        (head + 2, "customer-b", "three"),
        (head + 3, "customer-c", "three"),
        (head + 4, "customer-d", "three"),
    ]
