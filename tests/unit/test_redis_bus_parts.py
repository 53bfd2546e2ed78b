"""The change bus's pure parts: reconnect backoff, URLs in logs, and what a listening
process does with a message (the bus over a real Redis: tests/cluster/test_bus_*.py)."""

from __future__ import annotations

import orjson

from api.cluster.bus import ChangeBus
from api.cluster.link import BACKOFF_BASE, RedisLink, backoff, redacted


def test_backoff_grows_is_capped_and_jittered() -> None:
    cap = 2.0
    for failures in range(1, 40):
        ceiling = min(cap, BACKOFF_BASE * 2 ** (failures - 1))
        waits = {backoff(failures, cap) for _ in range(50)}
        assert all(ceiling / 2 <= wait <= ceiling for wait in waits), (failures, waits)
        assert len(waits) > 1  # jittered: processes do not reconnect in step


def test_redis_urls_are_logged_without_their_password() -> None:
    assert "secret" not in redacted("redis://user:secret@cache:6379/0")
    assert "secret" not in redacted("redis://:secret@cache:6379/0")
    assert redacted("redis://cache:6379/0") == "redis://cache:6379/0"


def _bus() -> tuple[ChangeBus, list[int | None]]:
    signals: list[int | None] = []
    link = RedisLink("redis://127.0.0.1:1/0", timeout=0.1, reconnect_max=1.0)
    return ChangeBus(link, signals.append), signals


def test_a_message_from_another_process_wakes_this_one_with_the_position() -> None:
    bus, signals = _bus()
    bus._received(orjson.dumps({"from": "other", "at": 1.0, "head": 7}))
    bus._received(orjson.dumps({"from": "other", "at": 1.0, "head": 7, "applied": 9}))
    assert signals == [7, 9]
    assert bus.received == 2


def test_own_and_malformed_messages_are_ignored() -> None:
    bus, signals = _bus()
    bus._received(orjson.dumps({"from": bus.process, "at": 1.0, "head": 7}))
    for junk in (b"not json", b"[]", orjson.dumps({"from": "x"}), orjson.dumps({"head": "x"})):
        bus._received(junk)
    assert signals == []
    assert bus.received == 0


def test_commits_while_a_publish_is_in_flight_go_out_as_one_message() -> None:
    bus, _ = _bus()
    bus.committed(3)
    bus.applied(2)
    bus.committed(5)
    payload = bus._take_pending()
    assert payload is not None
    message = orjson.loads(payload)
    assert (message["head"], message["applied"]) == (5, 2)
    assert bus._take_pending() is None
