"""Automatic persisted queries (the APQ protocol of Apollo Client's persisted-queries link,
version 1): a client may send ``extensions.persistedQuery = {version: 1, sha256Hash}``
instead of the query text. A hash the server knows runs its query; an unknown one gets
``PERSISTED_QUERY_NOT_FOUND``, and the client sends the query with its hash once, which
registers it (the hash must be the query's) once it has run: a document that does not
parse or validate, or a request refused before running (a bad token), stores nothing.
GET works too, so that a persisted query is
a short, cacheable URL.

Kept per process, least recently used first out, bounded by count and by bytes; with
Redis configured also in Redis (``api/cluster/shared.py``), so a hash registered through
one process is known to all: a process that does not know a hash asks Redis before
answering PERSISTED_QUERY_NOT_FOUND. While Redis is unavailable each process has its own.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import re
from typing import Any, Protocol

from api.cluster.link import RedisUnavailable
from api.http.request import BadRequest

VERSION = 1
MAX_QUERIES = 10_000
MAX_BYTES = 16 * 2**20
NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
_HASH = re.compile(r"[0-9a-fA-F]{64}")


class PersistedQueryNotFound(Exception):
    """The hash is not (or no longer) known: send the query with it."""


class SharedQueries(Protocol):
    """A store every process sees (``api.cluster.shared.RedisQueries``); its methods
    raise RedisUnavailable when it cannot answer."""

    async def get(self, digest: str) -> str | None: ...

    async def put(self, digest: str, query: str) -> None: ...


class PersistedQueries:
    def __init__(
        self,
        max_queries: int = MAX_QUERIES,
        max_bytes: int = MAX_BYTES,
        shared: SharedQueries | None = None,
    ) -> None:
        self.max_queries, self.max_bytes = max_queries, max_bytes
        self.shared = shared
        self._queries: collections.OrderedDict[str, str] = collections.OrderedDict()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._queries)

    def resolve(self, query: str | None, extensions: dict[str, Any] | None) -> str | None:
        """The query to run: ``query`` itself, or the persisted query that
        ``extensions.persistedQuery`` names; when both are given, the hash must be the
        query's (``register`` stores it after it ran). Raises BadRequest or
        PersistedQueryNotFound."""
        persisted = None if extensions is None else extensions.get("persistedQuery")
        if persisted is None:
            return query
        digest = _digest(persisted)
        if query is None:
            found = self._queries.get(digest)
            if found is None:
                raise PersistedQueryNotFound(digest)
            self._queries.move_to_end(digest)
            return found
        if not isinstance(query, str):
            return query  # refused as such by the caller
        if hashlib.sha256(query.encode()).hexdigest() != digest:
            raise BadRequest(
                "extensions.persistedQuery.sha256Hash is not the SHA-256 of the query",
                code="PERSISTED_QUERY_HASH_MISMATCH",
            )
        return query

    async def recall(self, digest: str) -> bool:
        """Whether the shared store knows ``digest`` (a hash this process does not): if
        it does, the query is kept here too, and ``resolve`` finds it."""
        if self.shared is None:
            return False
        try:
            query = await self.shared.get(digest)
        except RedisUnavailable:
            return False
        if query is None or hashlib.sha256(query.encode()).hexdigest() != digest:
            return False
        self._remember(digest, query)
        return True

    async def remember(self, query: str, extensions: dict[str, Any] | None) -> None:
        """``register``, and a hash new to this process goes to the shared store too."""
        digest = self.register(query, extensions)
        if digest is not None and self.shared is not None:
            with contextlib.suppress(RedisUnavailable):
                await self.shared.put(digest, query)

    def register(self, query: str, extensions: dict[str, Any] | None) -> str | None:
        """Keep ``query`` under the hash of ``extensions.persistedQuery``, if any: called
        once it parsed, validated and ran, with ``resolve`` having checked the hash.
        Returns the hash if it is new here."""
        persisted = None if extensions is None else extensions.get("persistedQuery")
        if persisted is not None:
            digest = _digest(persisted)
            if self._remember(digest, query):
                return digest
        return None

    def _remember(self, digest: str, query: str) -> bool:
        if digest in self._queries:
            self._queries.move_to_end(digest)
            return False
        size = len(query)
        if size > self.max_bytes:
            return False
        self._queries[digest] = query
        self.bytes += size
        while len(self._queries) > self.max_queries or self.bytes > self.max_bytes:
            _, dropped = self._queries.popitem(last=False)
            self.bytes -= len(dropped)
        return True


def _digest(persisted: object) -> str:
    if not isinstance(persisted, dict):
        raise BadRequest("extensions.persistedQuery must be an object")
    if persisted.get("version") != VERSION:
        raise BadRequest(
            f"Unsupported persisted query version: only version {VERSION} is supported",
            code="PERSISTED_QUERY_VERSION_UNSUPPORTED",
        )
    digest = persisted.get("sha256Hash")
    if not isinstance(digest, str) or not _HASH.fullmatch(digest):
        raise BadRequest("extensions.persistedQuery.sha256Hash must be 64 hexadecimal digits")
    return digest.lower()
