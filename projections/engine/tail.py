"""The tail loop: follows the event log and has the projectors apply it, each with its
checkpoint committed in the same read-database transaction as the rows it produced
(``step.py``): no event is skipped or applied twice.

Only the leader applies events (``leadership.py``); a process that does not lead, or may
not project at all, follows the checkpoints instead (``follow.py``): it learns positions
and generations from the read database at every poll (sooner while a request waits for
one) and delivers to its subscribers the order changes the leader committed. Either way
changes are delivered once, in position order: ``delivered`` is how far they have been,
and a leader steps only once it has delivered everything up to its own checkpoint.

Woken at once by commits in this process (``notify``) and by other processes' through a
change bus when there is one, else through the database (``api/cluster/db_wake.py``):
``ReadSide.signal``, with ``on_applied`` telling them what the leader committed. Polls
slowly for other processes either way, so a lost wake-up only delays. The database work
runs on one worker thread; positions change only on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from sqlalchemy import Engine

from migrations.engine import database_unavailable, one_line
from projections.base import OrderChange, Projector
from projections.engine import checkpoints, dead_letters
from projections.engine.event_source import head_position, read_events
from projections.engine.follow import Followed, changes_table, follow
from projections.engine.high_water import HighWater
from projections.engine.kill_hook import KillHook
from projections.engine.leadership import Leadership, read_leader
from projections.engine.publication import OrderedPublication, Publish
from projections.engine.recent_orders import RecentOrders
from projections.engine.step import StepOutcome, apply_batches
from projections.order_doc import shared_folds

log = logging.getLogger("shopfront.projections")
P = ParamSpec("P")
T = TypeVar("T")
# How often a process that does not lead reads the checkpoints while a request waits for a
# position (read-your-writes), instead of the poll interval.
FOLLOW_WAITING_POLL = 0.01


class Tail:
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
        project: bool = True,
        leadership: Leadership | None = None,
        leader_retry_interval: float = 0.5,
    ) -> None:
        """``project``: may this process apply events at all (False: it only follows);
        ``leadership``: the election it applies them under (None: always, alone)."""
        self.log_engine = log_engine
        self.read_engine = read_engine
        self.projectors = projectors
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        # From how many events a rebuild uses a helper process (``ReadSide.rebuild``).
        self.rebuild_helper_min_events = rebuild_helper_min_events
        self.positions: dict[str, int] = {}
        # Bumped in the checkpoint row whenever a projector's rows change other than by
        # moving forward (a rebuild swapped in, parked events retried), in any process.
        self.generations: dict[str, int] = {}
        self.errors: dict[str, str] = {}
        self.dead_letters: dict[str, int] = {}
        self.publication = OrderedPublication(publish)
        self.recent = RecentOrders()
        self.high_water = HighWater(lambda: self.position, self._wake_up)
        self._kill_hook = KillHook(crash_before_commit)
        self._wake = asyncio.Event()
        # The loop found nothing to do and sleeps until woken or its next poll (tests).
        self.idle = False
        self._task: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="shopfront-projector")
        # When the steps next read the generations (monotonic time): once per poll.
        self._generations_due = 0.0
        self.project = project
        self.leadership = leadership
        self.leader_retry_interval = leader_retry_interval
        self._leader_retry_due = 0.0
        # The projector whose commits go to subscribers, its changes table, and the
        # position up to which this process has delivered them.
        self._changes_source = changes_table(projectors.values())
        self.delivered = 0
        # (holder, since) of the leader as last read or known; None: nobody recorded.
        self.leader: tuple[str, dt.datetime] | None = None
        # Called with the position reached after this process committed projections (a
        # step as the leader, a rebuild, a retry): the change bus tells the others.
        self.on_applied: Callable[[int], None] | None = None
        # Whether other processes' commits wake this one now (the database wake-ups are
        # live): then a request waiting for a position does not need the 10 ms follows.
        self.woken_by_others: Callable[[], bool] | None = None

    async def _in_thread(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(*args, **kwargs))

    def _wake_up(self) -> None:
        self._wake.set()

    def applied(self, position: int | None = None) -> None:
        """This process committed projections up to ``position`` (None: where every
        projector is): say so to the others (the change bus)."""
        if self.on_applied is not None:
            self.on_applied(self.position if position is None else position)

    def _changes_committed(self, changes: Sequence[OrderChange]) -> None:
        """The publishing projector committed ``changes``: tell the other processes first
        (they read them from the changes table, committed with its checkpoint), then hand
        them to this process's subscribers, whose fan-out would otherwise hold the others
        back by its whole length. The step's end says again where every projector is."""
        self.applied(max(change.position for change in changes))
        self.publication.schedule(changes)

    @property
    def head(self) -> int:
        return self.high_water.head

    @property
    def position(self) -> int:
        """The position every projector has reached."""
        return min(self.positions.values(), default=0)

    # -- life cycle -----------------------------------------------------------------------
    async def load_checkpoints(self) -> None:
        self.recent.clear()  # rows may have changed other than by our own steps
        self.positions = await self._in_thread(
            checkpoints.load_positions, self.read_engine, self.projectors
        )
        head = await self._in_thread(self._read_head)
        await self.reload_counts()
        self.high_water.observe(head)

    async def reload_counts(self) -> None:
        """Read the generations and the parked events' counts again."""
        self.observe_generations(await self._in_thread(self._read_generations))
        self.dead_letters = await self._in_thread(self._count_dead_letters)

    def observe_generations(self, found: Mapping[str, int]) -> bool:
        """Generations as read from the read database: each only ever moves up here (a
        read that started before a newer one may finish after it). True if one moved."""
        moved = False
        for name, generation in found.items():
            if generation > self.generations.get(name, -1):
                self.generations[name] = generation
                moved = True
        if moved:
            self.recent.clear()  # rows replaced by a rebuild or retry
        return moved

    def _read_head(self) -> int:
        with self.log_engine.connect() as conn:
            return head_position(conn)

    def _count_dead_letters(self) -> dict[str, int]:
        return dead_letters.count_parked(self.read_engine, self.projectors)

    def _read_generations(self) -> dict[str, int]:
        self._generations_due = time.monotonic() + self.poll_interval
        return checkpoints.read_generations(self.read_engine)

    async def start(self) -> None:
        await self.load_checkpoints()
        self.delivered = self._publisher_position()
        self._task = asyncio.create_task(self._loop(), name="projection-runner")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.leadership is not None:
            # After any step still on the worker thread: a standby takes over at its next try.
            await self._in_thread(self.leadership.release)

    def close(self) -> None:
        self._executor.shutdown(wait=True)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    # -- the loop -------------------------------------------------------------------------
    async def _loop(self) -> None:
        failures = 0
        while True:
            self._wake.clear()
            leading = False
            try:
                leading = await self._lead()
                if leading and self.delivered >= self._publisher_position():
                    advanced = await self.step()
                    if advanced:
                        self.applied()
                else:
                    advanced = await self.follow()
                failures = 0
            except Exception as error:
                if database_unavailable(error):  # a restart: one line per try, no traceback
                    log.warning("projection step: database unavailable: %s", one_line(error))
                else:
                    log.exception("projection step failed")
                failures += 1
                advanced = 0
                await asyncio.sleep(min(0.1 * 2**failures, 5.0))
            if not advanced:
                # asyncio.timeout, not wait_for: a cancel arriving as the wake-up does can
                # leave 3.11's wait_for waiting forever.
                self.idle = True
                try:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self._idle_wait(leading)):
                            await self._wake.wait()
                finally:
                    self.idle = False

    def _idle_wait(self, leading: bool) -> float:
        if leading:
            return self.poll_interval
        wait = self.poll_interval
        if self.high_water.waiting and not (self.woken_by_others and self.woken_by_others()):
            wait = min(wait, FOLLOW_WAITING_POLL)
        if self.project and self.leadership is not None:
            wait = min(wait, self.leader_retry_interval)
        return wait

    # -- leading or following ---------------------------------------------------------------
    @property
    def leading(self) -> bool:
        """Whether this process applies events now."""
        if not self.project:
            return False
        return self.leadership is None or self.leadership.leading

    def _publisher_position(self) -> int:
        source = self._changes_source
        return 0 if source is None else self.positions.get(source[0], 0)

    async def _lead(self) -> bool:
        """Whether this process is to apply the next batch: it may project and it leads
        (still holds the lock, checked before every step, or takes it if it is free;
        standbys try once per retry interval)."""
        leadership = self.leadership
        if not self.project:
            return False
        if leadership is None:
            return True
        was = leadership.leading
        if not was and time.monotonic() < self._leader_retry_due:
            return False
        leading = await self._in_thread(leadership.keep)
        if not leading:
            self._leader_retry_due = time.monotonic() + self.leader_retry_interval
        if leading != was:
            self.recent.clear()
        if leading and leadership.since is not None:
            self.leader = (leadership.holder, leadership.since)
        return leading

    async def follow(self) -> int:
        """Learn where the projectors are from the read database and deliver the order
        changes committed since the last delivered; returns whether more are waiting."""
        followed, parked, leader = await self._in_thread(self._follow, self.delivered)
        self.dead_letters = parked
        if not self.leading:
            self.leader = leader
        self.observe_generations(followed.generations)
        self.positions.update(followed.positions)
        self.high_water.observe(followed.head)
        if followed.changes:
            self.publication.schedule(followed.changes)
            await self.publication.drain()
        self.delivered = followed.delivered
        await self.high_water.advanced()
        return int(followed.more)

    def _follow(
        self, delivered: int
    ) -> tuple[Followed, dict[str, int], tuple[str, dt.datetime] | None]:
        followed = follow(
            self.read_engine, self.log_engine, self.projectors, self._changes_source, delivered
        )
        return followed, self._count_dead_letters(), self._read_leader()

    def _read_leader(self) -> tuple[str, dt.datetime] | None:
        with self.read_engine.connect() as conn:
            return read_leader(conn)

    async def step(self) -> int:
        """Apply the next batch to every projector behind; return how many events moved
        some projector forward."""
        loop = asyncio.get_running_loop()

        def publish_soon(changes: Sequence[OrderChange]) -> None:
            # On the worker thread right after the publishing projector commits.
            loop.call_soon_threadsafe(self._changes_committed, changes)

        outcome = await self._in_thread(self._step, dict(self.positions), publish_soon)
        # Every publish of this step was scheduled before the step's result reached us:
        # wait until the last has gone out (in commit order).
        await self.publication.drain()
        source = self._changes_source
        if source is not None and source[0] in outcome.positions:
            self.delivered = max(self.delivered, outcome.positions[source[0]])
        if outcome.checkpoints_moved:
            await self.load_checkpoints()
            return 1
        self.observe_generations(outcome.generations)
        self.positions.update(outcome.positions)
        self.recent.remember(outcome.changes)
        if outcome.dead_letters is not None:
            self.dead_letters = outcome.dead_letters
        self.high_water.observe(outcome.head)
        for name, error in outcome.errors.items():
            if error is None:
                self.errors.pop(name, None)
            else:
                self.errors[name] = error
        await self.high_water.advanced()
        return outcome.advanced

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
        with shared_folds():  # the order screens fold each order once per step
            parked = apply_batches(
                self.read_engine,
                self.projectors,
                positions,
                batches,
                outcome,
                kill_hook=self._kill_hook,
                publish_soon=publish_soon,
            )
        # Recount parked events only if there are (or may now be) some: a retry elsewhere
        # can clear known ones, and a poison event in this step can add one.
        if parked or any(self.dead_letters.values()):
            outcome.dead_letters = self._count_dead_letters()
        return outcome

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
        """The head of the log, read from the log."""
        self.high_water.observe(await self._in_thread(self._read_head))
        return self.head
