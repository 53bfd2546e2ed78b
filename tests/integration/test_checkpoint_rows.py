"""projections.engine.checkpoints on a real read database: a claim moves one checkpoint
from the position the runner read to the end of its batch (and stamps it), or raises
CheckpointMoved and changes nothing; missing checkpoints are created at 0 and existing
ones are left alone; generations are read per projector."""

from __future__ import annotations

import datetime as dt
import time

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from projections.engine.checkpoints import (
    CheckpointMoved,
    claim,
    load_positions,
    read_generations,
)
from projections.tables import projection_checkpoints as checkpoints


def _rows(read: Engine) -> dict[str, tuple[int, int, dt.datetime]]:
    with read.connect() as conn:
        return {
            row.name: (int(row.position), int(row.generation), row.updated_at)
            for row in conn.execute(sa.select(checkpoints))
        }


def test_missing_checkpoints_are_created_at_zero_and_existing_ones_kept(read: Engine) -> None:
    first = load_positions(read, ["alpha", "beta"])
    assert first == {"alpha": 0, "beta": 0}
    with read.begin() as conn:
        claim(conn, "alpha", 0, 12)
    assert load_positions(read, ["alpha", "beta", "gamma"]) == {
        "alpha": 12,
        "beta": 0,
        "gamma": 0,
    }
    rows = _rows(read)
    assert {name: row[:2] for name, row in rows.items() if name in first or name == "gamma"} == {
        "alpha": (12, 0),
        "beta": (0, 0),
        "gamma": (0, 0),
    }
    assert all(isinstance(rows[name][2], dt.datetime) for name in ("alpha", "beta", "gamma"))


def test_a_claim_moves_only_its_checkpoint_and_stamps_it(read: Engine) -> None:
    load_positions(read, ["alpha", "beta"])
    before = _rows(read)
    with read.begin() as conn:
        claim(conn, "alpha", 0, 5)
    after = _rows(read)
    assert after["alpha"][:2] == (5, 0)
    assert after["beta"] == before["beta"]
    assert after["alpha"][2] >= before["alpha"][2]
    stamped = after["alpha"][2]
    stamped = stamped if stamped.tzinfo else stamped.replace(tzinfo=dt.UTC)
    assert abs((dt.datetime.now(dt.UTC) - stamped).total_seconds()) < 600


def test_a_claim_from_a_position_another_runner_moved_changes_nothing(read: Engine) -> None:
    load_positions(read, ["alpha"])
    with read.begin() as conn:
        claim(conn, "alpha", 0, 5)
    before = _rows(read)
    for stale in (0, 4, 6):
        with pytest.raises(CheckpointMoved, match="alpha"), read.begin() as conn:
            claim(conn, "alpha", stale, 9)
    with pytest.raises(CheckpointMoved), read.begin() as conn:
        claim(conn, "no-such-projector", 0, 9)
    assert _rows(read) == before


def test_generations_are_read_per_projector(read: Engine) -> None:
    load_positions(read, ["alpha", "beta"])
    with read.begin() as conn:
        conn.execute(checkpoints.update().where(checkpoints.c.name == "beta").values(generation=3))
    generations = read_generations(read)
    assert generations["alpha"] == 0
    assert generations["beta"] == 3
    assert all(type(value) is int for value in generations.values())


@pytest.mark.usefixtures("far_local_zone")
def test_checkpoints_are_stamped_in_utc_whatever_the_servers_zone(read: Engine) -> None:
    assert time.localtime().tm_gmtoff == 5 * 3600 + 1800
    load_positions(read, ["alpha"])
    with read.begin() as conn:
        claim(conn, "alpha", 0, 5)
    load_positions(read, ["beta"])
    rows = _rows(read)
    for name in ("alpha", "beta"):
        stamped = rows[name][2]
        stamped = stamped if stamped.tzinfo else stamped.replace(tzinfo=dt.UTC)
        assert abs((dt.datetime.now(dt.UTC) - stamped).total_seconds()) < 600, (name, stamped)
