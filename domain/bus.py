"""The command bus: one transaction per command (or per group of commands), retries on
optimistic-concurrency conflicts, and tells the projector runner when events committed.

Transactions run on worker threads with a blocking connection (see api/database.py for
why); SQLite gets exactly one writer thread, so commands queue instead of fighting over
the database lock.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.engine import Connection

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


Outcome = CommandResult | DomainError


class CommandBus:
    def __init__(self, engine: Engine, on_commit: Callable[[int], None] | None = None) -> None:
        self.engine = engine
        self.on_commit = on_commit
        workers = 1 if engine.dialect.name == "sqlite" else 8
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="shopfront-write")

    async def execute(self, command: Command) -> CommandResult:
        """Run one command in its own transaction. Raises ``DomainError`` on refusal."""
        loop = asyncio.get_running_loop()
        outcome = await loop.run_in_executor(self._executor, self._execute, command)
        if isinstance(outcome, DomainError):
            raise outcome
        self._committed(outcome.position)
        return outcome

    async def execute_many(self, commands: Sequence[Command]) -> list[Outcome]:
        """Group commit: run commands in one transaction, each in its own savepoint, so a
        refused command rolls back alone while the accepted ones share one commit."""
        loop = asyncio.get_running_loop()
        outcomes = await loop.run_in_executor(self._executor, self._execute_many, commands)
        positions = [o.position for o in outcomes if isinstance(o, CommandResult) and o.position]
        if positions:
            self._committed(max(positions))
        return outcomes

    def close(self) -> None:
        self._executor.shutdown(wait=True)

    def _committed(self, position: int | None) -> None:
        if position is not None and self.on_commit is not None:
            self.on_commit(position)

    # -- on the writer thread -----------------------------------------------------------
    def _execute(self, command: Command) -> Outcome:
        for attempt in range(MAX_ATTEMPTS):
            try:
                with self.engine.begin() as conn:
                    return _run(conn, command)
            except DomainError as error:
                return error
            except (ConcurrencyConflict, sa.exc.IntegrityError):
                # Lost a race (order version, unique key): re-run against the new state,
                # where the rules give the right answer (e.g. INVALID_STATE).
                time.sleep(0.001 * 2**attempt)
        return DomainError("CONFLICT", "The data changed concurrently; try again")

    def _execute_many(self, commands: Sequence[Command]) -> list[Outcome]:
        outcomes: list[Outcome | None] = []
        with self.engine.begin() as conn:
            for command in commands:
                try:
                    with conn.begin_nested():
                        outcomes.append(_run(conn, command))
                except DomainError as error:
                    outcomes.append(error)
                except (ConcurrencyConflict, sa.exc.IntegrityError):
                    outcomes.append(None)  # lost a race: re-run alone below
        return [
            self._execute(command) if outcome is None else outcome
            for command, outcome in zip(commands, outcomes, strict=True)
        ]


def _run(conn: Connection, command: Command) -> CommandResult:
    recorder = Recorder(command_id=str(uuid.uuid4()), now=dt.datetime.now(dt.UTC))
    entity_id = HANDLERS[type(command)](conn, command, recorder)
    recorded = tuple(event for _, _, event in recorder.pending)
    position = append(conn, recorder)
    return CommandResult(entity_id, position or recorder.replayed_position, recorded)
