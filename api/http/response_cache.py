"""A cache of query responses, invisible to clients except in speed.

An entry is the serialised ``data`` (and extensions) of one executed query, keyed by
(document, operation name, variables, who is asking), and valid for as long as every read
table it read is unchanged. A read table changes only when its projector moves forward or
when its rows are replaced (rebuild, retry of parked events, which bump the projector's
generation), so an entry records, for each projector whose tables the query read,
``(generation, position)`` as it was *before* the query ran: if either moved since, the
entry is stale and is dropped. A query that read something else than a read table (the
projection runner's state in memory, say) marks itself uncacheable.

The tables a query reads are recorded by :func:`projections.reads.fetch_all` into the set
this module puts in a context variable for the duration of one request (DataLoader batches run
in tasks that inherit it).

Bounded by bytes (least recently used first out). Per process: each server process has its
own, kept right by its own projection runner (positions, generations) and by what tells it
of other processes' commits (the change bus, the database wake-ups, at worst its poll).
A rebuild or retry run by another process bumps a generation: on SQLite, before serving a
hit, ``freshen`` checks that the read database has not changed since the generations
were last read (``api/cluster/db_wake.ReadVersion``), so no hit is older than a bump
committed before the request; on PostgreSQL the bump's NOTIFY (or the bus) wakes the
process, which reads the generations at once.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from projections.reads import record_tables as record_tables  # also for tests
from projections.reads import tables_read

Version = tuple[int, int]
Key = tuple[str, str | None, str, str]

# Something the response depends on other than the read tables (set -> not cacheable).
UNCACHEABLE = "\0uncacheable"


def mark_uncacheable() -> None:
    """Call from a resolver whose answer depends on something other than the read tables."""
    record_tables((UNCACHEABLE,))


@dataclasses.dataclass(slots=True)
class Entry:
    body: bytes  # serialised {"data": ...}, without the closing brace
    extensions: dict[str, Any] | None
    depends: tuple[tuple[str, Version], ...]


class Recording:
    """What one execution read; see :meth:`ResponseCache.recording`."""

    __slots__ = ("_token", "before", "tables")

    def __init__(self, before: Callable[[str], Version]) -> None:
        self.before = before
        self.tables: set[str] = set()
        self._token = tables_read.set(self.tables)

    def close(self) -> None:
        tables_read.reset(self._token)


class ResponseCache:
    def __init__(
        self,
        max_bytes: int,
        table_owner: Mapping[str, str],
        version: Callable[[str], Version],
        freshen: Callable[[], None] | None = None,
    ) -> None:
        self.max_bytes = max_bytes
        # Called before a hit is checked: brings the versions up to date if it can cheaply.
        self.freshen = freshen
        self.table_owner = dict(table_owner)  # read table -> projector that writes it
        self.version = version
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self._entries: collections.OrderedDict[Key, Entry] = collections.OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    @staticmethod
    def key(
        query: str, operation_name: str | None, variables: dict[str, Any] | None, who: str
    ) -> Key | None:
        try:
            # As text: a small bytes object from orjson holds on to far more memory than
            # its length for as long as it lives (docs/performance.md), which the cache's
            # own accounting would not see.
            encoded = orjson.dumps(variables, option=orjson.OPT_SORT_KEYS).decode()
        except TypeError:  # not JSON after all (cannot come from a JSON body): no caching
            return None
        return query, operation_name, encoded, who

    def get(self, key: Key) -> Entry | None:
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        if self.freshen is not None:
            self.freshen()
        version = self.version
        if any(version(name) != seen for name, seen in entry.depends):
            self._drop(key)
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return entry

    def recording(self) -> Recording:
        """Start recording the tables an execution reads, with every projector's version
        as it is now (before the execution reads anything)."""
        versions = {name: self.version(name) for name in set(self.table_owner.values())}
        return Recording(versions.__getitem__)

    def put(
        self, key: Key, recording: Recording, data: Any, extensions: dict[str, Any] | None
    ) -> None:
        tables = recording.tables
        if UNCACHEABLE in tables or not self.enabled:
            return
        owners = set()
        for table in tables:
            owner = self.table_owner.get(table)
            if owner is None:  # a table no projector owns: cannot tell when it changes
                return
            owners.add(owner)
        body = b'{"data":' + orjson.dumps(data)
        size = _size(key, body)
        if size > self.max_bytes // 8:
            return
        self._drop(key)
        self._entries[key] = Entry(
            body, extensions, tuple((name, recording.before(name)) for name in sorted(owners))
        )
        self.bytes += size
        while self.bytes > self.max_bytes:
            self._drop(next(iter(self._entries)))

    def _drop(self, key: Key) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self.bytes -= _size(key, entry.body)

    def __len__(self) -> int:
        return len(self._entries)


def _size(key: Key, body: bytes) -> int:
    """Roughly what an entry holds in memory."""
    return len(body) + len(key[0]) + len(key[2]) + 200
