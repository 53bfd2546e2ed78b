"""Tails the event log and applies the projectors, each with its checkpoint committed in the
same read-database transaction as the rows it produced: no event is skipped or applied twice.

Woken at once by commits in this process (``notify``); polls slowly for other processes.
The database work runs on one worker thread; positions change only on the event loop.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import datetime as dt
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from domain.events import Event
from projections import dead_letters
from projections.base import OrderChange, Projector, StoredEvent
from projections.dead_letters import apply_or_park
from projections.event_source import head_position, occurred_at, read_events
from projections.order_doc import shared_folds
from projections.read_tables import projection_checkpoints as checkpoints
from projections.rebuild import rebuild as rebuild_projection

log = logging.getLogger("shopfront.projections")
Publish = Callable[[Sequence[OrderChange]], Awaitable[None]]
# Order documents kept as the order detail projection last committed them (newest kept).
RECENT_ORDERS = 4096
P = ParamSpec("P")
T = TypeVar("T")


# Built once (statement construction costs more than running it): move a checkpoint from
# the position we read to the end of the batch, or touch nothing if someone else moved it.
_CLAIM = (
    checkpoints.update()
    .where(
        checkpoints.c.name == sa.bindparam("k_name"),
        checkpoints.c.position == sa.bindparam("k_position"),
    )
    .values(position=sa.bindparam("new_position"), updated_at=sa.bindparam("now"))
)


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
    dead_letters: int


@dataclasses.dataclass(slots=True)
class StepOutcome:
    positions: dict[str, int]
    errors: dict[str, str | None]
    changes: list[OrderChange]
    generations: dict[str, int] = dataclasses.field(default_factory=dict)
    dead_letters: dict[str, int] | None = None
    advanced: int = 0
    head: int = 0
    checkpoints_moved: bool = False


class ProjectionRunner:
    def __init__(
        self,
        log_engine: Engine,
        read_engine: Engine,
        projectors: Mapping[str, Projector],
        *,
        batch_size: int = 500,
        poll_interval: float = 0.5,
        publish: Publish | None = None,
        crash_before_commit: str | None = None,
        rebuild_helper_min_events: int | None = None,
    ) -> None:
        self.log_engine = log_engine
        self.rebuild_helper_min_events = rebuild_helper_min_events
        self.read_engine = read_engine
        self.projectors = projectors
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.publish = publish
        self.positions: dict[str, int] = {}
        # Bumped in the checkpoint row whenever a projector's rows change other than by
        # moving forward (a rebuild swapped in, parked events retried), in any process.
        self.generations: dict[str, int] = {}
        self.errors: dict[str, str] = {}
        self.dead_letters: dict[str, int] = {}
        # Test-only fault injection, "NAME" or "NAME:N": die like SIGKILL after applying
        # NAME's rows (the N-th time), before its transaction commits.
        self._crash_name, _, after = (crash_before_commit or "").partition(":")
        self._crash_countdown = int(after or 1)
        self.head = 0
        # (position, monotonic time) each time the known head moved: how long the
        # projections have been behind, without reading the event log again.
        self._head_seen: collections.deque[tuple[int, float]] = collections.deque()
        self._wake = asyncio.Event()
        # Callers inside ``wait_for`` right now (tests see a request waiting on it).
        self.waiting = 0
        # The loop found nothing to do and sleeps until woken or its next poll (tests).
        self.idle = False
        self._advanced = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        # The last publish scheduled: each waits for the one before (commit order).
        self._published: asyncio.Future[None] | None = None
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="shopfront-projector")
        # order id -> its latest change committed by this runner (see ``committed_order``).
        self._recent: dict[str, OrderChange] = {}
        # When the steps next read the generations (monotonic time): once per poll.
        self._generations_due = 0.0

    async def _in_thread(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(*args, **kwargs))

    # -- life cycle ---------------------------------------------------------------------
    def committed_order(self, order_id: str, position: int) -> Mapping[str, Any] | None:
        """The order's document as the order detail projection committed it, if this
        runner committed it recently and at or after the event at ``position``: what
        reading its row now would give, without the read."""
        change = self._recent.get(order_id)
        return None if change is None or change.position < position else change.doc

    def _remember(self, changes: Sequence[OrderChange]) -> None:
        recent = self._recent
        for change in changes:
            recent.pop(change.order_id, None)
            recent[change.order_id] = change
        while len(recent) > RECENT_ORDERS:
            del recent[next(iter(recent))]  # the least recently changed

    async def load_checkpoints(self) -> None:
        self._recent.clear()  # rows may have changed other than by our own steps
        self.positions, head = await self._in_thread(self._load_checkpoints)
        self.generations = await self._in_thread(self._read_generations)
        self.dead_letters = await self._in_thread(self._count_dead_letters)
        self._observe_head(head)

    def _fault_point(self, name: str) -> None:
        if name == self._crash_name:
            self._crash_countdown -= 1
            if self._crash_countdown <= 0:
                log.warning("fault injection: killing the process before %s commits", name)
                os.kill(os.getpid(), signal.SIGKILL)

    def _count_dead_letters(self) -> dict[str, int]:
        return dead_letters.count_parked(self.read_engine, self.projectors)

    def _read_generations(self) -> dict[str, int]:
        self._generations_due = time.monotonic() + self.poll_interval
        with self.read_engine.connect() as conn:
            rows = conn.execute(sa.select(checkpoints.c.name, checkpoints.c.generation))
            return {row[0]: int(row[1]) for row in rows}

    def version(self, name: str) -> tuple[int, int]:
        """(generation, position) of one projector: its rows are unchanged for as long as
        this is (what the response cache checks)."""
        return self.generations.get(name, 0), self.positions.get(name, 0)

    def _load_checkpoints(self) -> tuple[dict[str, int], int]:
        with self.read_engine.begin() as conn:
            stored = dict(conn.execute(sa.select(checkpoints.c.name, checkpoints.c.position)).all())
            missing = [name for name in self.projectors if name not in stored]
            if missing:
                now = dt.datetime.now(dt.UTC)
                conn.execute(
                    checkpoints.insert(),
                    [{"name": n, "position": 0, "updated_at": now} for n in missing],
                )
        with self.log_engine.connect() as conn:
            head = head_position(conn)
        return {name: int(stored.get(name, 0)) for name in self.projectors}, head

    async def start(self) -> None:
        await self.load_checkpoints()
        self._task = asyncio.create_task(self._loop(), name="projection-runner")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def close(self) -> None:
        self._executor.shutdown(wait=True)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def notify(self, position: int) -> None:
        """A command in this process committed events up to ``position``."""
        self._observe_head(position)
        self._wake.set()

    def _observe_head(self, position: int) -> None:
        if position > self.head:
            self.head = position
            self._head_seen.append((position, time.monotonic()))
        floor = self.position
        while len(self._head_seen) > 1 and self._head_seen[1][0] <= floor:
            self._head_seen.popleft()

    def lag_ms(self, position: int) -> float:
        """Milliseconds since the runner first knew of an event after ``position``."""
        for seen, at in self._head_seen:
            if seen > position:
                return (time.monotonic() - at) * 1000
        return 0.0

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
                # asyncio.timeout, not wait_for: a cancel arriving as the wake-up does
                # left 3.11's wait_for waiting forever (seen: stop() right after rebuild()).
                self.idle = True
                try:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self.poll_interval):
                            await self._wake.wait()
                finally:
                    self.idle = False

    async def step(self) -> int:
        """Apply the next batch to every projector behind; return how many events moved
        some projector forward."""
        loop = asyncio.get_running_loop()

        def publish_soon(changes: Sequence[OrderChange]) -> None:
            # Called on the projector thread right after the publishing projector commits:
            # subscribers need not wait for the projectors applied after it.
            loop.call_soon_threadsafe(self._publish_in_order, changes)

        outcome = await self._in_thread(self._step, dict(self.positions), publish_soon)
        # Every publish of this step was scheduled before the step's result reached us:
        # wait until the last has gone out (in commit order). Taken, so that a failed
        # publish is reported by this step only.
        published, self._published = self._published, None
        if published is not None:
            await published
        if outcome.checkpoints_moved:
            await self.load_checkpoints()
            return 1
        if any(self.generations.get(n) != g for n, g in outcome.generations.items()):
            self._recent.clear()  # rows replaced by a rebuild or retry elsewhere
        self.positions.update(outcome.positions)
        self.generations.update(outcome.generations)
        self._remember(outcome.changes)
        if outcome.dead_letters is not None:
            self.dead_letters = outcome.dead_letters
        self._observe_head(outcome.head)
        for name, error in outcome.errors.items():
            if error is None:
                self.errors.pop(name, None)
            else:
                self.errors[name] = error
        async with self._advanced:
            self._advanced.notify_all()
        return outcome.advanced

    def _publish_in_order(self, changes: Sequence[OrderChange]) -> None:
        previous = self._published

        async def publish() -> None:
            if previous is not None:
                with contextlib.suppress(Exception):  # reported by the step that awaited it
                    await previous
            if self.publish is not None:
                await self.publish(changes)

        self._published = asyncio.ensure_future(publish())

    def _step(
        self,
        positions: dict[str, int],
        publish_soon: Callable[[Sequence[OrderChange]], None] | None = None,
    ) -> StepOutcome:
        outcome = StepOutcome(positions={}, errors={}, changes=[])
        # Noticed within one poll: a rebuild or retry run by another process (read once
        # per poll interval, not in every step of a busy runner).
        if time.monotonic() >= self._generations_due:
            outcome.generations = self._read_generations()
        # One batch per distinct position: a projector stuck on a failing event must not
        # hold the others to its own window of the log.
        with self.log_engine.connect() as conn:
            batches = {p: read_events(conn, p, self.batch_size) for p in set(positions.values())}
        if not any(batches.values()):
            # Idle: recount parked events, which a retry in another process may have cleared.
            outcome.dead_letters = self._count_dead_letters()
            return outcome
        outcome.head = max(batch[-1].position for batch in batches.values() if batch)
        # Recount parked events only if there are (or may now be) some: a retry elsewhere
        # can clear known ones, and a poison event in this step can add one.
        recount = any(self.dead_letters.values())
        with shared_folds():  # the order screens fold each order once per step
            recount = self._apply_each(positions, batches, outcome, recount, publish_soon)
        if recount:
            outcome.dead_letters = self._count_dead_letters()
        return outcome

    def _apply_each(
        self,
        positions: dict[str, int],
        batches: dict[int, Sequence[StoredEvent[Event]]],
        outcome: StepOutcome,
        recount: bool,
        publish_soon: Callable[[Sequence[OrderChange]], None] | None,
    ) -> bool:
        """Each projector applies its batch in its own transaction (on one connection,
        while it works); returns whether the parked events need counting again."""
        conn: Connection | None = None
        try:
            for name, projector in self.projectors.items():
                position = positions[name]
                todo = batches[position]
                if not todo:
                    continue
                if conn is None:
                    conn = self.read_engine.connect()
                try:
                    with conn.begin():
                        # Claim the batch first: if another runner moved the checkpoint,
                        # stop before applying (and tripping over) rows it has written.
                        moved = conn.execute(
                            _CLAIM,
                            {
                                "k_name": name,
                                "k_position": position,
                                "new_position": todo[-1].position,
                                "now": dt.datetime.now(dt.UTC),
                            },
                        )
                        if moved.rowcount != 1:
                            raise CheckpointMoved(name)
                        changes, parked = apply_or_park(conn, name, projector, todo)
                        recount = recount or parked
                        self._fault_point(name)
                except CheckpointMoved:
                    outcome.checkpoints_moved = True
                    return recount
                except Exception as error:  # the database itself failed: retry it later
                    outcome.errors[name] = f"{type(error).__name__}: {error}"
                    log.exception("projector %s failed after position %d", name, position)
                    conn.close()  # not reused: the next projector gets a fresh one
                    conn = None
                    continue
                outcome.errors[name] = None
                outcome.positions[name] = todo[-1].position
                outcome.changes.extend(changes)
                if changes and publish_soon is not None:
                    publish_soon(changes)
                outcome.advanced = max(outcome.advanced, len(todo))
            return recount
        finally:
            if conn is not None:
                conn.close()

    async def catch_up(self, timeout: float | None = None) -> None:
        """Run until every projector has reached the head of the log (CLI, tests)."""
        if not self.positions:
            await self.load_checkpoints()
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.position < await self.head_position():
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError("projections did not catch up")
            if not await self.step():
                await asyncio.sleep(0.05)

    async def head_position(self) -> int:
        def read() -> int:
            with self.log_engine.connect() as conn:
                return head_position(conn)

        self._observe_head(await self._in_thread(read))
        return self.head

    async def wait_for(self, position: int, timeout: float) -> bool:
        """Wait until every projector has applied ``position``; False on timeout."""

        def reached() -> bool:
            return self.position >= position

        if reached():
            return True
        self._wake.set()
        self.waiting += 1
        try:
            async with asyncio.timeout(timeout), self._advanced:
                await self._advanced.wait_for(reached)
        except TimeoutError:
            return False
        finally:
            self.waiting -= 1
        return True

    @property
    def position(self) -> int:
        """The position every projector has reached."""
        return min(self.positions.values(), default=0)

    # -- operations -------------------------------------------------------------------------
    async def rebuild(self, names: Sequence[str] | None = None) -> None:
        """Rebuild projectors (all by default) from position 0 into shadow tables while
        the live ones keep serving, then swap them in atomically (see ``rebuild.py``)."""
        chosen = {name: self.projectors[name] for name in (names or self.projectors)}
        self._recent.clear()
        position = await self._in_thread(
            rebuild_projection,
            self.log_engine,
            self.read_engine,
            chosen,
            helper_min_events=self.rebuild_helper_min_events,
        )
        for name in chosen:
            self.positions[name] = position
            self.errors.pop(name, None)
        self.generations = await self._in_thread(self._read_generations)
        self.dead_letters = await self._in_thread(self._count_dead_letters)
        self._wake.set()

    def status(self) -> list[ProjectionState]:
        """Where each projector is, from memory: no database read."""
        states = []
        for name in self.projectors:
            position = self.positions.get(name, 0)
            state = "error" if name in self.errors else "running" if self.running else "stopped"
            lag = max(self.head - position, 0)
            states.append(
                ProjectionState(
                    name,
                    position,
                    self.head,
                    lag,
                    self.lag_ms(position) if lag else 0.0,
                    state,
                    self.dead_letters.get(name, 0),
                )
            )
        return states

    async def status_from_log(self) -> list[ProjectionState]:
        """Status with lag measured from the event log's own times (for the CLI)."""
        head = await self.head_position()

        def lag_ms(position: int) -> float | None:
            if position >= head:
                return 0.0
            with self.log_engine.connect() as conn:
                since = occurred_at(conn, position + 1)
            return None if since is None else max(time.time() - since, 0) * 1000

        return [
            dataclasses.replace(s, lag_ms=await self._in_thread(lag_ms, s.position))
            for s in self.status()
        ]

    async def list_dead_letters(self) -> list[dead_letters.DeadLetter]:
        def work() -> list[dead_letters.DeadLetter]:
            with self.read_engine.connect() as conn:
                return dead_letters.list_dead_letters(conn)

        return await self._in_thread(work)

    async def retry(self, name: str | None = None) -> dict[str, tuple[int, int]]:
        """Re-apply parked events (of one projector, or all); returns, per projector with
        parked events, (how many applied now, how many still parked)."""

        chosen = {n: p for n, p in self.projectors.items() if name is None or n == name}
        results, changes = await self._in_thread(
            dead_letters.retry_parked, self.read_engine, self.log_engine, chosen
        )
        self._recent.clear()
        self.generations = await self._in_thread(self._read_generations)
        self.dead_letters = await self._in_thread(self._count_dead_letters)
        if changes and self.publish is not None:
            await self.publish(changes)
        return results
