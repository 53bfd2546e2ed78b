"""A process's generations only move up: a read of the checkpoints that started before a
newer one (a follower's pass on the worker thread, the response cache's check on the
event loop) may finish after it, and must not take a bumped generation back, or the
response cache would serve answers recorded before a rebuild or retry again."""

from __future__ import annotations

import sqlalchemy as sa

from projections.engine.read_side import ReadSide


def test_an_older_read_never_takes_a_generation_back() -> None:
    engine = sa.create_engine("sqlite://")
    runner = ReadSide(engine, engine, {})
    try:
        assert runner.observe_generations({"order_detail": 3, "catalog": 1})
        runner.positions["order_detail"] = 40
        # An older read (before the retry that bumped order_detail to 3) arrives late.
        assert not runner.observe_generations({"order_detail": 2, "catalog": 1})
        assert runner.version("order_detail") == (3, 40)
        assert runner.observe_generations({"order_detail": 3, "catalog": 2})
        assert runner.version("catalog") == (2, 0)
    finally:
        runner.close()
        engine.dispose()
