"""The single bootstrap: engines, command bus, read side and broker, wired once.

``runner`` is the read side (``projections.engine.read_side.ReadSide``): everything
``api/`` asks of the projections goes through it."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from api.auth import Authenticator
from api.cluster.bus import ChangeBus
from api.cluster.db_wake import DbWake, ReadVersion, for_databases, sqlite_file
from api.cluster.link import RedisLink
from api.cluster.shared import RedisBuckets, RedisQueries
from api.database import Pool, create_engine, create_sync_engine
from api.http.persisted import PersistedQueries
from api.http.response_cache import ResponseCache
from api.middleware.security import RateLimits
from api.settings import Settings
from api.ws.limits import ConnectionLimits
from api.ws.pubsub import OrderBroker
from domain.bus import CommandBus
from projections.engine.leadership import Leadership, lock_for
from projections.engine.read_side import ReadSide
from projections.registry import PROJECTORS

log = logging.getLogger("shopfront")
KEY_REFRESH_SECONDS = 300.0


@dataclasses.dataclass
class Services:
    settings: Settings
    write_engine: Engine
    log_engine: Engine
    read_engine: AsyncEngine
    projector_engine: Engine
    bus: CommandBus
    runner: ReadSide
    broker: OrderBroker
    authenticator: Authenticator
    connection_limits: ConnectionLimits
    response_cache: ResponseCache
    # Shared by the HTTP rate-limit middleware and the WebSocket view.
    rate_limits: RateLimits
    persisted_queries: PersistedQueries = dataclasses.field(default_factory=PersistedQueries)
    # With SHOPFRONT_REDIS_URL: the link to Redis and the change bus over it.
    redis: RedisLink | None = None
    change_bus: ChangeBus | None = None
    # Without Redis (SHOPFRONT_DB_WAKE): wake-ups through the databases themselves.
    db_wake: DbWake | None = None
    # SQLite: the response cache's check of the read database before a hit.
    read_version: ReadVersion | None = None
    _key_refresh: asyncio.Task[None] | None = None

    @classmethod
    def create(cls, settings: Settings) -> Services:
        pool = Pool(
            settings.db_pool_size, settings.db_max_overflow, settings.db_statement_timeout_ms
        )
        write_engine = create_sync_engine(settings.write_database_url, "write", pool)
        log_engine = create_sync_engine(settings.write_database_url, "log", pool)
        read_engine = create_engine(settings.read_database_url, "read", pool)
        projector_engine = create_sync_engine(settings.read_database_url, "projector", pool)
        broker = OrderBroker()
        runner = ReadSide(
            log_engine,
            projector_engine,
            PROJECTORS,
            batch_size=settings.projection_batch_size,
            poll_interval=settings.projection_poll_interval,
            publish=broker.publish,
            crash_before_commit=settings.test_crash_before_commit,
            rebuild_helper_min_events=settings.rebuild_helper_min_events,
            **projector_role(settings, projector_engine),
        )
        redis, change_bus = None, None
        on_commit: Callable[[int], None] = runner.notify
        if settings.redis_url:
            redis = RedisLink(
                settings.redis_url, settings.redis_timeout, settings.redis_reconnect_max_seconds
            )
            change_bus = ChangeBus(redis, runner.signal)
            runner.on_applied = change_bus.applied
            on_commit = _both(runner.notify, change_bus.committed)
        db_wake = None
        if not settings.redis_url and settings.db_wake:
            db_wake = for_databases(
                settings.write_database_url,
                settings.read_database_url,
                runner,
                settings.sqlite_watch_interval,
            )
            if db_wake is not None:
                runner.on_applied = db_wake.applied
                live = db_wake
                runner.woken_by_others = lambda: live.listening
                on_commit = _both(runner.notify, db_wake.committed)
        # SQLite: before a response cache hit, re-read the generations if the read
        # database changed (a rebuild or retry in another process: never a stale hit).
        read_file = sqlite_file(settings.read_database_url)
        read_version = (
            None if read_file is None else ReadVersion(read_file, runner.observe_generations)
        )
        bus = CommandBus(write_engine, on_commit=on_commit)
        return cls(
            settings,
            write_engine,
            log_engine,
            read_engine,
            projector_engine,
            bus,
            runner,
            broker,
            Authenticator(settings),
            ConnectionLimits(
                settings.max_websockets_per_identity,
                settings.max_subscriptions_per_identity,
                settings.max_pending_websockets_per_address,
            ),
            ResponseCache(
                int(settings.response_cache_mb * 2**20),
                {table.name: name for name, p in PROJECTORS.items() for table in p.tables},
                runner.version,
                None if read_version is None else read_version.check,
            ),
            RateLimits(
                settings,
                None
                if redis is None
                else RedisBuckets(redis, settings.rate_limit_per_second, settings.rate_limit_burst),
            ),
            PersistedQueries(
                shared=None
                if redis is None
                else RedisQueries(redis, settings.persisted_query_ttl_seconds)
            ),
            redis,
            change_bus,
            db_wake,
            read_version,
        )

    async def start(self) -> None:
        if self.authenticator.jwks_url is not None:
            await asyncio.to_thread(self.authenticator.refresh_keys)
            self._key_refresh = asyncio.create_task(self._refresh_keys_periodically())
        await self.start_projections()

    async def start_projections(self) -> None:
        """The read side, and the change bus that wakes it (if Redis is configured)."""
        await self.runner.start()
        if self.change_bus is not None:
            await self.change_bus.start()
        if self.db_wake is not None:
            await self.db_wake.start()

    @property
    def bus_state(self) -> str:
        """The change bus: "off" (no Redis configured), "connected", or "degraded" (Redis
        unreachable: other processes' changes arrive by poll)."""
        if self.redis is None:
            return "off"
        return "connected" if self.redis.up else "degraded"

    async def _refresh_keys_periodically(self) -> None:
        while True:
            await asyncio.sleep(KEY_REFRESH_SECONDS)
            try:
                await asyncio.to_thread(self.authenticator.refresh_keys)
            except Exception:  # keep the keys we have; try again next time
                log.exception("could not refresh the JWKS")

    async def close(self) -> None:
        if self._key_refresh is not None:
            self._key_refresh.cancel()
        if self.change_bus is not None:
            await self.change_bus.close()
        if self.redis is not None:
            await self.redis.close()
        if self.db_wake is not None:
            await self.db_wake.close()
        if self.read_version is not None:
            self.read_version.close()
        await self.runner.stop()
        self.runner.close()
        self.bus.close()
        await self.read_engine.dispose()
        for engine in (self.write_engine, self.log_engine, self.projector_engine):
            engine.dispose()


def _both(first: Callable[[int], None], second: Callable[[int], None]) -> Callable[[int], None]:
    def both(position: int) -> None:
        first(position)
        second(position)

    return both


def projector_role(settings: Settings, projector_engine: Engine) -> dict[str, Any]:
    """Whether this process may apply events (``SHOPFRONT_PROJECTORS``), and the election
    among all those that may (``projections/engine/leadership.py``)."""
    if settings.projectors == "off":
        return {"project": False}
    lock = lock_for(projector_engine, settings.leader_takeover_seconds)
    return {
        "leadership": Leadership(projector_engine, lock),
        "leader_retry_interval": settings.leader_retry_interval,
    }
