"""The command bus: one transaction per command (or per group of commands), retries on
optimistic-concurrency conflicts, and tells the projector runner when events committed.

Transactions run on worker threads with a blocking connection (see api/database.py for
why); SQLite gets exactly one writer thread, so commands queue instead of fighting over
the database lock. Commands that queue up while the writer is busy go in together when it
is free (group commit): one transaction, a savepoint per command, one commit and fsync
for the group, and each command's outcome exactly as if it had run alone.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import cast

import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from domain.commands import Command
from domain.event_log import Recorder
from domain.events import Event
from domain.handlers import HANDLERS
from domain.model import DomainError
from domain.sql_unit_of_work import SqlUnitOfWork
from domain.unit_of_work import ConcurrencyConflict, UnitOfWork

MAX_ATTEMPTS = 8
MAX_GROUP = 64  # commands per group commit


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
        # One writer: commands waiting for it are grouped (on the event loop only).
        self._grouped = workers == 1
        self._waiting: list[tuple[Command, asyncio.Future[Outcome | Exception]]] = []
        self._writing: asyncio.Task[None] | None = None

    async def execute(self, command: Command) -> CommandResult:
        """Run one command (alone, or in a group commit with those waiting with it).
        Raises ``DomainError`` on refusal."""
        loop = asyncio.get_running_loop()
        if not self._grouped:
            outcome: Outcome | Exception = await loop.run_in_executor(
                self._executor, self._execute, command
            )
            self._committed_outcomes([outcome])  # wake this process's projections now
        else:
            future: asyncio.Future[Outcome | Exception] = loop.create_future()
            self._waiting.append((command, future))
            if self._writing is None:
                self._writing = asyncio.create_task(self._write_groups())
            outcome = await future
        if isinstance(outcome, Exception):  # a DomainError (a refusal), or a failure
            raise outcome
        return outcome

    async def _write_groups(self) -> None:
        """Hand the waiting commands to the writer thread, a group at a time, until none
        wait; commands arriving meanwhile form the next group."""
        loop = asyncio.get_running_loop()
        try:
            while self._waiting:
                group = self._waiting[:MAX_GROUP]
                del self._waiting[:MAX_GROUP]
                commands = [command for command, _ in group]
                try:
                    outcomes = await loop.run_in_executor(
                        self._executor, self._execute_group, commands
                    )
                except Exception as error:  # the group's transaction failed: all of it
                    outcomes = [error] * len(group)
                self._committed_outcomes(outcomes)
                for (_, future), outcome in zip(group, outcomes, strict=True):
                    if not future.done():  # not cancelled by a caller that went away
                        future.set_result(outcome)
        finally:
            self._writing = None

    async def execute_many(self, commands: Sequence[Command]) -> list[Outcome]:
        """Group commit: run commands in one transaction, each in its own savepoint, so a
        refused command rolls back alone while the accepted ones share one commit."""
        loop = asyncio.get_running_loop()
        outcomes = await loop.run_in_executor(self._executor, self._execute_group, commands)
        self._committed_outcomes(outcomes)
        for outcome in outcomes:
            if isinstance(outcome, Exception) and not isinstance(outcome, DomainError):
                raise outcome
        return cast(list[Outcome], outcomes)  # what is left: results and refusals

    def close(self) -> None:
        self._executor.shutdown(wait=True)

    def _committed_outcomes(self, outcomes: Sequence[Outcome | Exception]) -> None:
        positions = [o.position for o in outcomes if isinstance(o, CommandResult) and o.position]
        if positions and self.on_commit is not None:
            self.on_commit(max(positions))

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
            except sa.exc.DBAPIError as error:
                if not _rolled_back_by_server(error):
                    raise
                time.sleep(0.001 * 2**attempt)  # PostgreSQL chose it: run it again
        return DomainError("CONFLICT", "The data changed concurrently; try again")

    def _execute_group(self, commands: Sequence[Command]) -> list[Outcome | Exception]:
        """Commands in one transaction, each in a savepoint: a refused or failed command
        rolls back alone. A database failure fails the whole group (raised: nothing of it
        committed); a command that lost a race runs again alone after the commit."""
        if len(commands) == 1:
            return [self._execute(commands[0])]
        outcomes: list[Outcome | Exception | None] = []
        with self.engine.begin() as conn:
            for command in commands:
                try:
                    with conn.begin_nested():
                        outcomes.append(_run(conn, command))
                except DomainError as error:
                    outcomes.append(error)
                except (ConcurrencyConflict, sa.exc.IntegrityError):
                    outcomes.append(None)  # lost a race: re-run alone below
                except sa.exc.DBAPIError:
                    raise  # the database failed: the transaction may be gone
                except Exception as error:  # this command's own failure (a bug)
                    outcomes.append(error)
        return [
            self._execute(command) if outcome is None else outcome
            for command, outcome in zip(commands, outcomes, strict=True)
        ]


# SQLSTATE class 40: the server rolled the transaction back (deadlock_detected,
# serialization_failure); nothing of it committed, so it may run again.
_ROLLED_BACK = frozenset({"40P01", "40001"})


def _rolled_back_by_server(error: sa.exc.DBAPIError) -> bool:
    return getattr(error.orig, "sqlstate", None) in _ROLLED_BACK


def _run(conn: Connection, command: Command) -> CommandResult:
    recorder = Recorder(command_id=str(uuid.uuid4()), now=dt.datetime.now(dt.UTC))
    return handle(SqlUnitOfWork(conn, recorder), command)


def handle(uow: UnitOfWork, command: Command) -> CommandResult:
    """Run the command's handler in the unit of work and append the events it recorded
    (the caller owns the transaction). Raises ``DomainError`` on refusal."""
    entity_id = HANDLERS[type(command)](uow, command)
    recorded = tuple(event for _, _, event in uow.events.pending)
    position = uow.append_events()
    return CommandResult(entity_id, position or uow.events.replayed_position, recorded)
