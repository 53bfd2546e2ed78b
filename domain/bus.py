"""The command bus: one transaction per command (or per group of commands), retries on
optimistic-concurrency conflicts, and tells the projector runner when events committed."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Callable, Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from domain.commands import Command
from domain.event_log import Recorder, append
from domain.events import Event
from domain.handlers import HANDLERS
from domain.model import DomainError
from domain.order_handlers import ConcurrencyConflict

MAX_ATTEMPTS = 8


@dataclasses.dataclass(frozen=True, slots=True)
class CommandResult:
    entity_id: str
    # Position of the last event this command's result depends on (None: no events).
    position: int | None
    events: tuple[Event, ...]


class CommandBus:
    def __init__(
        self, engine: AsyncEngine, on_commit: Callable[[int], None] | None = None
    ) -> None:
        self.engine = engine
        self.on_commit = on_commit
        # SQLite has one writer at a time; queueing here beats spinning on SQLITE_BUSY.
        self._lock: asyncio.Lock | None = (
            asyncio.Lock() if engine.dialect.name == "sqlite" else None
        )

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncConnection]:
        async with contextlib.AsyncExitStack() as stack:
            if self._lock is not None:
                await stack.enter_async_context(self._lock)
            conn = await stack.enter_async_context(self.engine.begin())
            yield conn

    async def execute(self, command: Command) -> CommandResult:
        """Run one command in its own transaction. Raises ``DomainError`` on refusal."""
        for attempt in range(MAX_ATTEMPTS):
            try:
                async with self._transaction() as conn:
                    result = await _run(conn, command)
            except (ConcurrencyConflict, sa.exc.IntegrityError):
                # Lost a race (order version, unique key): re-run against the new state,
                # where the rules give the right answer (e.g. INVALID_STATE).
                if attempt == MAX_ATTEMPTS - 1:
                    raise DomainError(
                        "CONFLICT", "The order changed concurrently; try again"
                    ) from None
                await asyncio.sleep(0.001 * 2**attempt)
                continue
            self._committed(result.position)
            return result
        raise AssertionError("unreachable")

    async def execute_many(
        self, commands: Sequence[Command]
    ) -> list[CommandResult | DomainError]:
        """Group commit: run commands in one transaction, each in its own savepoint, so a
        refused command rolls back alone while the accepted ones share one commit."""
        results: list[CommandResult | DomainError | None] = []
        async with self._transaction() as conn:
            for command in commands:
                try:
                    async with conn.begin_nested():
                        results.append(await _run(conn, command))
                except DomainError as error:
                    results.append(error)
                except (ConcurrencyConflict, sa.exc.IntegrityError):
                    results.append(None)  # lost a race: re-run alone below
        done: list[CommandResult | DomainError] = []
        for command, result in zip(commands, results, strict=True):
            if result is None:
                try:
                    result = await self.execute(command)
                except DomainError as error:
                    result = error
            done.append(result)
        positions = [r.position for r in done if isinstance(r, CommandResult) and r.position]
        if positions:
            self._committed(max(positions))
        return done

    def _committed(self, position: int | None) -> None:
        if position is not None and self.on_commit is not None:
            self.on_commit(position)


async def _run(conn: AsyncConnection, command: Command) -> CommandResult:
    recorder = Recorder(command_id=str(uuid.uuid4()), now=dt.datetime.now(dt.UTC))
    entity_id = await HANDLERS[type(command)](conn, command, recorder)
    recorded = tuple(event for _, _, event in recorder.pending)
    position = await append(conn, recorder)
    return CommandResult(entity_id, position or recorder.replayed_position, recorded)
