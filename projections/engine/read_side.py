"""The read side as ``api/`` sees it: the tail loop (``Tail``: start, stop, step, catch up)
and what the edge asks of it: where the projectors are and how far behind (``position``,
``lag_ms``, ``status``), read-your-writes waits (``wait_for``), the orders this process
just committed (``committed_order``), each projector's version for the response cache
(``version``), new commits in this process (``notify``), and the operations of the CLI
(``rebuild``, ``retry``, ``list_dead_letters``, ``status_from_log``)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Mapping, Sequence
from typing import Any

from projections.engine import dead_letters
from projections.engine.event_source import occurred_at
from projections.engine.tail import Tail
from projections.rebuild.swap import rebuild as rebuild_projections


@dataclasses.dataclass(frozen=True, slots=True)
class ProjectionState:
    name: str
    position: int
    head_position: int
    lag: int
    lag_ms: float | None
    state: str
    dead_letters: int
    # The process that applies events (host:pid:id) and since when, as last known.
    leader: str | None = None
    leader_since: dt.datetime | None = None


class ReadSide(Tail):
    # -- what requests ask ------------------------------------------------------------------
    def notify(self, position: int) -> None:
        """A command in this process committed events up to ``position``."""
        self.high_water.observe(position)
        self._wake_up()

    def signal(self, head: int | None = None) -> None:
        """Another process committed (the change bus): the log reaches at least ``head``
        (None: unknown). A process that leads steps now, any other follows now: reads the
        checkpoints and the order changes since it last delivered, instead of at its
        next poll."""
        if head is not None:
            self.high_water.observe(head)
        # A leader reads the generations in its next step too (a retry or rebuild elsewhere).
        self._generations_due = 0.0
        self._wake_up()

    def log_moved(self, head: int | None = None) -> None:
        """Another process committed events (a database wake-up): a leader steps now; the
        others have nothing to read until the projections move."""
        if head is not None:
            self.high_water.observe(head)
        if self.leading:
            self._wake_up()

    def read_moved(self) -> None:
        """SQLite: a commit to the read database, this process's own steps included (its
        data_version cannot tell whose): a follower follows now; a leader reads the
        generations at its next step (the response cache checks them itself)."""
        self._generations_due = 0.0
        if not self.leading:
            self._wake_up()

    def lag_ms(self, position: int) -> float:
        """Milliseconds since this process first knew of an event after ``position``."""
        return self.high_water.lag_ms(position)

    async def wait_for(self, position: int, timeout: float) -> bool:
        """Wait until every projector has applied ``position``; False on timeout."""
        return await self.high_water.wait_for(position, timeout)

    @property
    def waiting(self) -> int:
        """How many callers are inside ``wait_for`` now."""
        return self.high_water.waiting

    def committed_order(self, order_id: str, position: int) -> Mapping[str, Any] | None:
        """The order's document as the order detail projection committed it, if this
        process committed it recently and at or after the event at ``position``: what
        reading its row now would give, without the read."""
        return self.recent.get(order_id, position)

    def version(self, name: str) -> tuple[int, int]:
        """(generation, position) of one projector: its rows are unchanged for as long as
        this is (what the response cache checks)."""
        return self.generations.get(name, 0), self.positions.get(name, 0)

    def status(self) -> list[ProjectionState]:
        """Where each projector is, from memory: no database read."""
        states = []
        head = self.head
        leader, since = self.leader or (None, None)
        for name in self.projectors:
            position = self.positions.get(name, 0)
            state = "error" if name in self.errors else "running" if self.running else "stopped"
            lag = max(head - position, 0)
            states.append(
                ProjectionState(
                    name,
                    position,
                    head,
                    lag,
                    self.lag_ms(position) if lag else 0.0,
                    state,
                    self.dead_letters.get(name, 0),
                    leader,
                    since,
                )
            )
        return states

    # -- operations (CLI, staff) --------------------------------------------------------------
    async def status_from_log(self) -> list[ProjectionState]:
        """Status with lag measured from the event log's own times and the leader as
        recorded in the read database (for the CLI)."""
        head = await self.head_position()
        self.leader = await self._in_thread(self._read_leader)

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

    async def rebuild(self, names: Sequence[str] | None = None) -> None:
        """Rebuild projectors (all by default) from position 0 into shadow tables while
        the live ones keep serving, then swap them in atomically (``projections/rebuild``)."""
        chosen = {name: self.projectors[name] for name in (names or self.projectors)}
        self.recent.clear()
        position = await self._in_thread(
            rebuild_projections,
            self.log_engine,
            self.read_engine,
            chosen,
            helper_min_events=self.rebuild_helper_min_events,
        )
        for name in chosen:
            self.positions[name] = position
            self.errors.pop(name, None)
        await self.reload_counts()
        self.applied()
        self._wake_up()

    async def retry(self, name: str | None = None) -> dict[str, tuple[int, int]]:
        """Re-apply parked events (of one projector, or all); returns, per projector with
        parked events, (how many applied now, how many still parked)."""
        chosen = {n: p for n, p in self.projectors.items() if name is None or n == name}
        results, changes = await self._in_thread(
            dead_letters.retry_parked, self.read_engine, self.log_engine, chosen
        )
        self.recent.clear()
        await self.reload_counts()
        publish = self.publication.publish
        if changes and publish is not None:
            await publish(changes)
        self.applied()
        return results
