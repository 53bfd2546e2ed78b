"""projections.engine.step.apply_batches on a real read database, with small projectors
of the test's own: each projector applies its batch with its checkpoint claimed in the
same transaction; one whose database work fails is reported and retried later without
holding back the others; one whose checkpoint another runner moved stops the step."""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
from collections.abc import Sequence
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from domain.events import CustomerRegistered, Event
from projections.base import OrderChange, Projector, StoredEvent
from projections.engine.checkpoints import claim, load_positions
from projections.engine.kill_hook import KillHook
from projections.engine.step import StepOutcome, apply_batches

T0 = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)


class Recording:
    """Applies a batch by remembering it (and, if asked, failing like a database)."""

    tables: tuple[sa.Table, ...] = ()

    def __init__(self, name: str, fail: str | None = None) -> None:
        self.name = name
        self.fail = fail
        self.applied: list[int] = []
        self.connections: list[Connection] = []

    def apply(self, conn: Connection, events: Sequence[StoredEvent[Event]]) -> list[OrderChange]:
        self.connections.append(conn)
        conn.execute(sa.text("SELECT 1"))
        if self.fail is not None:  # as the driver reports it, wrapped by SQLAlchemy
            orig = sqlite3.OperationalError(self.fail)
            raise sa.exc.OperationalError("UPDATE something", {}, orig) from orig
        self.applied.extend(event.position for event in events)
        return [
            OrderChange(f"{self.name}-{e.position}", "c", 1, "X", T0, {}, e.position)
            for e in events
        ]


def events(first: int, last: int) -> list[StoredEvent[Event]]:
    return [
        StoredEvent(
            p,
            f"customer-{p}",
            1,
            "CustomerRegistered",
            T0,
            f"cmd-{p}",
            CustomerRegistered(f"c{p}", f"c{p}@x", "C"),
        )
        for p in range(first, last + 1)
    ]


def checked_out(engine: Engine) -> int:
    """Connections of the engine's pool in use now."""
    pool: Any = engine.pool
    return int(pool.checkedout())


def run(
    read: Engine, projectors: Sequence[Recording], positions: dict[str, int], upto: int
) -> tuple[StepOutcome, bool, list[list[int]]]:
    by_name: dict[str, Projector] = {p.name: p for p in projectors}
    batches = {p: events(p + 1, upto) for p in set(positions.values())}
    outcome = StepOutcome(positions={}, errors={}, changes=[])
    published: list[list[int]] = []
    parked = apply_batches(
        read,
        by_name,
        positions,
        batches,
        outcome,
        kill_hook=KillHook(None),
        publish_soon=lambda changes: published.append([c.position for c in changes]),
    )
    return outcome, parked, published


def test_each_projector_applies_its_own_batch_and_moves_its_checkpoint(read: Engine) -> None:
    one, two, idle = Recording("one"), Recording("two"), Recording("idle")
    load_positions(read, ["one", "two", "idle"])
    with read.begin() as conn:
        claim(conn, "two", 0, 3)
        claim(conn, "idle", 0, 6)
    outcome, parked, published = run(read, [one, two, idle], {"one": 0, "two": 3, "idle": 6}, 6)
    assert parked is False
    assert (one.applied, two.applied, idle.applied) == ([1, 2, 3, 4, 5, 6], [4, 5, 6], [])
    assert idle.connections == []  # nothing to do: not even claimed
    assert outcome.positions == {"one": 6, "two": 6}
    assert outcome.errors == {"one": None, "two": None}
    assert outcome.advanced == 6  # the longest batch
    assert [c.position for c in outcome.changes] == [1, 2, 3, 4, 5, 6, 4, 5, 6]
    assert published == [[1, 2, 3, 4, 5, 6], [4, 5, 6]]  # each as its projector committed
    assert outcome.checkpoints_moved is False
    assert checked_out(read) == 0  # the step's connection went back to the pool
    assert load_positions(read, ["one", "two", "idle"]) == {"one": 6, "two": 6, "idle": 6}


def test_a_step_with_nothing_to_apply_opens_no_connection(read: Engine) -> None:
    idle = Recording("idle")
    load_positions(read, ["idle"])
    outcome, parked, published = run(read, [idle], {"idle": 4}, 4)
    assert not parked and published == [] and idle.connections == []
    assert outcome.positions == {} and outcome.errors == {} and outcome.advanced == 0
    assert checked_out(read) == 0


@pytest.mark.parametrize(
    ("failure", "level"), [("disk I/O error", "ERROR"), ("database is locked", "WARNING")]
)
def test_a_projector_whose_database_work_fails_holds_back_only_itself(
    read: Engine, caplog: pytest.LogCaptureFixture, failure: str, level: str
) -> None:
    failure_type = "sqlite3.OperationalError"
    broken, fine = Recording("broken", fail=failure), Recording("fine")
    load_positions(read, ["broken", "fine"])
    with caplog.at_level(logging.WARNING, logger="shopfront.projections"):
        outcome, _, published = run(read, [broken, fine], {"broken": 0, "fine": 0}, 4)
    error = outcome.errors["broken"]
    assert error is not None and error.startswith(f"OperationalError: ({failure_type}) {failure}")
    assert outcome.errors["fine"] is None
    assert outcome.positions == {"fine": 4}
    assert fine.applied == [1, 2, 3, 4] and published == [[1, 2, 3, 4]]
    assert outcome.advanced == 4
    # The next projector got a fresh connection, not the one the failure left behind.
    assert fine.connections[0] is not broken.connections[0]
    assert load_positions(read, ["broken", "fine"]) == {"broken": 0, "fine": 4}
    records = [r for r in caplog.records if r.getMessage().startswith("projector broken")]
    assert [r.levelname for r in records] == [level]
    assert "after position 0" in records[0].getMessage()
    if level == "WARNING":  # one line saying what the database said, no traceback
        said = f"OperationalError: ({failure_type}) {failure}"
        assert records[0].getMessage().endswith(f"database unavailable after position 0: {said}")
        assert records[0].exc_info is None
    else:
        assert records[0].exc_info is not None
    assert checked_out(read) == 0


def test_a_checkpoint_moved_by_another_runner_stops_the_step(read: Engine) -> None:
    first, second = Recording("first"), Recording("second")
    load_positions(read, ["first", "second"])
    with read.begin() as conn:  # another runner applied first's 1-2 meanwhile
        claim(conn, "first", 0, 2)
    outcome, _, published = run(read, [first, second], {"first": 0, "second": 0}, 5)
    assert outcome.checkpoints_moved is True
    assert first.applied == [] and second.applied == [] and published == []
    assert outcome.positions == {} and outcome.changes == []
    assert load_positions(read, ["first", "second"]) == {"first": 2, "second": 0}
