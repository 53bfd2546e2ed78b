"""Tails the event log and applies the projectors, each with its checkpoint committed in the
same read-database transaction as the rows it produced: no event is skipped or applied twice.

Woken at once by commits in this process (``notify``); polls slowly for other processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from projections.base import OrderChange, Projector
from projections.event_source import head_position, occurred_at, read_events
from projections.read_tables import projection_checkpoints as checkpoints

log = logging.getLogger("shopfront.projections")
Publish = Callable[[Sequence[OrderChange]], Awaitable[None]]


class CheckpointMoved(Exception):
    """Another runner (another process, or a rebuild) moved the checkpoint under us."""


@dataclasses.dataclass(frozen=True, slots=True)
class ProjectionState:
    name: str
    position: int
    head_position: int
    lag: int
    lag_ms: float | None
    state: str


class ProjectionRunner:
    def __init__(
        self,
        log_engine: AsyncEngine,
        read_engine: AsyncEngine,
        projectors: Mapping[str, Projector],
        *,
        batch_size: int = 500,
        poll_interval: float = 0.5,
        publish: Publish | None = None,
    ) -> None:
        self.log_engine = log_engine
        self.read_engine = read_engine
        self.projectors = projectors
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.publish = publish
        self.positions: dict[str, int] = {}
        self.errors: dict[str, str] = {}
        self.head = 0
        self._wake = asyncio.Event()
        self._advanced = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    # -- life cycle ---------------------------------------------------------------------
    async def load_checkpoints(self) -> None:
        async with self.read_engine.begin() as conn:
            stored = dict(
                (await conn.execute(sa.select(checkpoints.c.name, checkpoints.c.position))).all()
            )
            missing = [name for name in self.projectors if name not in stored]
            if missing:
                now = dt.datetime.now(dt.UTC)
                await conn.execute(
                    checkpoints.insert(),
                    [{"name": n, "position": 0, "updated_at": now} for n in missing],
                )
        self.positions = {name: int(stored.get(name, 0)) for name in self.projectors}
        self.head = max(self.head, await head_position(self.log_engine))

    async def start(self) -> None:
        await self.load_checkpoints()
        self._task = asyncio.create_task(self._loop(), name="projection-runner")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def notify(self, position: int) -> None:
        """A command in this process committed events up to ``position``."""
        self.head = max(self.head, position)
        self._wake.set()

    # -- the loop -------------------------------------------------------------------------
    async def _loop(self) -> None:
        failures = 0
        while True:
            self._wake.clear()
            try:
                advanced = await self.step()
                failures = 0
            except Exception:
                log.exception("projection step failed")
                failures += 1
                advanced = 0
                await asyncio.sleep(min(0.1 * 2**failures, 5.0))
            if not advanced:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_interval)

    async def step(self) -> int:
        """Apply the next batch to every projector behind; return how many events moved
        some projector forward."""
        floor = min(self.positions.values(), default=0)
        batch = await read_events(self.log_engine, floor, self.batch_size)
        if not batch:
            return 0
        self.head = max(self.head, batch[-1].position)
        advanced = 0
        for name, projector in self.projectors.items():
            position = self.positions[name]
            todo = [event for event in batch if event.position > position]
            if not todo:
                continue
            try:
                async with self.read_engine.begin() as conn:
                    changes = await projector.apply(conn, todo)
                    moved = await conn.execute(
                        checkpoints.update()
                        .where(checkpoints.c.name == name, checkpoints.c.position == position)
                        .values(position=todo[-1].position, updated_at=dt.datetime.now(dt.UTC))
                    )
                    if moved.rowcount != 1:
                        raise CheckpointMoved(name)
            except CheckpointMoved:
                await self.load_checkpoints()
                return 1
            except Exception as error:
                self.errors[name] = f"{type(error).__name__}: {error}"
                log.exception("projector %s failed after position %d", name, position)
                continue
            self.errors.pop(name, None)
            self.positions[name] = todo[-1].position
            advanced = max(advanced, len(todo))
            if changes and self.publish is not None:
                await self.publish(changes)
        async with self._advanced:
            self._advanced.notify_all()
        return advanced

    async def catch_up(self, timeout: float | None = None) -> None:
        """Run until every projector has reached the head of the log (CLI, tests)."""
        if not self.positions:
            await self.load_checkpoints()
        deadline = None if timeout is None else time.monotonic() + timeout
        while min(self.positions.values()) < await head_position(self.log_engine):
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError("projections did not catch up")
            if not await self.step():
                await asyncio.sleep(0.05)

    async def wait_for(self, position: int, timeout: float) -> bool:
        """Wait until every projector has applied ``position``; False on timeout."""

        def reached() -> bool:
            return min(self.positions.values(), default=0) >= position

        if reached():
            return True
        self._wake.set()
        try:
            async with self._advanced:
                await asyncio.wait_for(self._advanced.wait_for(reached), timeout)
        except TimeoutError:
            return False
        return True

    @property
    def position(self) -> int:
        return min(self.positions.values(), default=0)

    # -- operations -------------------------------------------------------------------------
    async def rebuild(self, name: str) -> None:
        """Empty a projector's tables and rewind it to 0; the loop (or ``catch_up``) replays."""
        projector = self.projectors[name]
        async with self.read_engine.begin() as conn:
            for table in projector.tables:
                await conn.execute(table.delete())
            await conn.execute(
                checkpoints.update().where(checkpoints.c.name == name)
                .values(position=0, updated_at=dt.datetime.now(dt.UTC))
            )
        self.positions[name] = 0
        self.errors.pop(name, None)
        self._wake.set()

    async def status(self) -> list[ProjectionState]:
        head = self.head = max(self.head, await head_position(self.log_engine))
        states = []
        for name in self.projectors:
            position = self.positions.get(name, 0)
            lag = max(head - position, 0)
            lag_ms: float | None = 0.0
            if lag:
                since = await occurred_at(self.log_engine, position + 1)
                lag_ms = None if since is None else max(time.time() - since, 0) * 1000
            state = "error" if name in self.errors else "running" if self.running else "stopped"
            states.append(ProjectionState(name, position, head, lag, lag_ms, state))
        return states
