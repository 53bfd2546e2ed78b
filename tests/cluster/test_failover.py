"""The leading projector process is killed (SIGKILL, before a batch commits) in the
middle of a burst of orders on PostgreSQL: a standby leads within the takeover bound,
every acknowledged order is in the read model, and the read model equals a replay of the
whole event log from scratch."""

from __future__ import annotations

import asyncio
import datetime as dt
import signal
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from api.database import create_sync_engine
from api.graphql.ids import from_global_id
from projections.base import as_utc
from projections.screens.order_detail import order_detail
from tests.cluster.conftest import Cluster, pid_of, until
from tests.e2e.client import Api, api_client
from tests.integration.integration_support import (
    Snapshot,
    assert_snapshots_equal,
    replay_snapshot,
    snapshot,
)
from tests.reliability.support import staff_token

TAKEOVER_SECONDS = 2.0
MARGIN = 1.0
ORDERS = 80
CONCURRENCY = 8


async def test_a_standby_takes_over_when_the_leader_is_killed_mid_batch(
    pg_cluster: Cluster, template_dir: Path, tmp_path: Path
) -> None:
    cluster = pg_cluster
    settings = {
        "SHOPFRONT_LEADER_TAKEOVER_SECONDS": str(TAKEOVER_SECONDS),
        "SHOPFRONT_READ_YOUR_WRITES_TIMEOUT": "15",
    }
    url = cluster.api("api", "off", **settings)
    # The first leader kills itself (SIGKILL) after writing its third order detail batch,
    # before that batch commits.
    first = cluster.projector(
        "first", SHOPFRONT_TEST_CRASH_BEFORE_COMMIT="order_detail:3", **settings
    )
    until(lambda: pid_of(cluster.leader()) == first.pid, "the first projector to lead")
    second = cluster.projector("second", **settings)
    assert pid_of(cluster.leader()) == first.pid  # the second stands by

    staff = staff_token()
    async with api_client(url) as api:
        product = await api.add_product(staff, stock=10_000)
        customers = [await api.register_customer(f"Burst {n}") for n in range(CONCURRENCY)]
        watch = asyncio.create_task(asyncio.to_thread(_takeover, cluster, first.pid, second.pid))
        acknowledged: list[str] = []

        async def shopper(token: str) -> None:
            for _ in range(ORDERS // CONCURRENCY):
                payload = await api.order_mutation(
                    "placeOrder",
                    "PlaceOrderInput",
                    {"lines": [{"sku": product["sku"], "quantity": 1}]},
                    token=token,
                    fields="id status",
                )
                if payload["order"] is not None:
                    acknowledged.append(from_global_id(payload["order"]["id"])[1])

        await asyncio.wait_for(asyncio.gather(*(shopper(t) for t, _ in customers)), 60)
        died_mid_burst = first.poll() is not None
        takeover = await asyncio.wait_for(watch, 30)
        print(f"standby led {takeover * 1000:.0f} ms after the leader was killed")
        assert died_mid_burst and first.returncode == -signal.SIGKILL
        assert takeover <= TAKEOVER_SECONDS + MARGIN
        assert len(acknowledged) == ORDERS
        await _caught_up(api, staff)

    read = create_sync_engine(cluster.read_url, "projector")
    log = create_sync_engine(cluster.write_url, "log")
    try:
        with read.connect() as conn:
            stored = set(conn.scalars(sa.select(order_detail.c.order_id)))
        assert set(acknowledged) <= stored
        live = _utc(snapshot(read))
        replayed = _utc(await replay_snapshot(template_dir, tmp_path / "replay", log))
        assert_snapshots_equal(live, replayed)
    finally:
        read.dispose()
        log.dispose()
    assert "Traceback" not in (cluster.work / "second.log").read_text()


def _takeover(cluster: Cluster, dead: int, standby: int) -> float:
    """Seconds from the leader's death to the standby recording that it leads."""
    deadline = time.monotonic() + 60
    while _alive(dead):
        assert time.monotonic() < deadline, "the leader was not killed"
        time.sleep(0.005)
    died = time.monotonic()
    until(lambda: pid_of(cluster.leader()) == standby, "the standby to lead")
    return time.monotonic() - died


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"  # a zombie is dead, not yet reaped
    except FileNotFoundError:
        return False


async def _caught_up(api: Api, staff: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        data = await api.data("{ projections { position headPosition } }", token=staff)
        if all(p["position"] == p["headPosition"] for p in data["projections"]):
            return
        assert time.monotonic() < deadline, data
        await asyncio.sleep(0.05)


def _utc(found: Snapshot) -> Snapshot:
    """Times as UTC-aware values whatever the engine gave back (SQLite: naive UTC)."""

    def fix(value: Any) -> Any:
        return as_utc(value) if isinstance(value, dt.datetime) else value

    return {t: [{k: fix(v) for k, v in row.items()} for row in rows] for t, rows in found.items()}
