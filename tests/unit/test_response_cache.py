"""Unit tests of api.http.response_cache: what is stored, for how long, under which key, and
how the byte bound is kept. No server: the projectors' versions come from a dict."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from api.http.response_cache import (
    Key,
    Recording,
    ResponseCache,
    Version,
    mark_uncacheable,
    record_tables,
)

# read table -> the projector that writes it (a cut-down PROJECTORS)
OWNERS = {
    "catalog_products": "catalog",
    "order_history": "order_history",
    "order_detail": "order_detail",
    "order_changes": "order_detail",
    "customer_profiles": "customer_profile",
}
PRODUCT = "query($sku: String!) { product(sku: $sku) { name priceCents } }"
DATA: dict[str, Any] = {"product": {"name": "Mug", "priceCents": 1250}}


class Versions:
    """The fake runner: (generation, position) per projector, changed by the test."""

    def __init__(self) -> None:
        self.by_name: dict[str, Version] = {name: (0, 10) for name in set(OWNERS.values())}

    def __call__(self, name: str) -> Version:
        return self.by_name[name]

    def advance(self, name: str, events: int = 1) -> None:
        generation, position = self.by_name[name]
        self.by_name[name] = (generation, position + events)

    def bump_generation(self, name: str) -> None:
        generation, position = self.by_name[name]
        self.by_name[name] = (generation + 1, position)


def make_cache(max_bytes: int = 1 << 20) -> tuple[ResponseCache, Versions]:
    versions = Versions()
    return ResponseCache(max_bytes, OWNERS, versions), versions


def key_of(
    query: str = PRODUCT,
    operation: str | None = None,
    variables: dict[str, Any] | None = None,
    who: str = "anonymous",
) -> Key:
    key = ResponseCache.key(
        query, operation, {"sku": "MUG"} if variables is None else variables, who
    )
    assert key is not None
    return key


def execute(
    cache: ResponseCache,
    key: Key,
    tables: tuple[str, ...],
    data: Any = DATA,
    *,
    uncacheable: bool = False,
) -> None:
    """What api.http.operation does around one execution: record, read, close, put."""
    recording = cache.recording()
    try:
        record_tables(tables)
        if uncacheable:
            mark_uncacheable()
    finally:
        recording.close()
    cache.put(key, recording, data, None)


def body_of(cache: ResponseCache, key: Key) -> bytes | None:
    entry = cache.get(key)
    return None if entry is None else entry.body


# -- validity ---------------------------------------------------------------------------
def test_entry_is_served_while_versions_are_unchanged() -> None:
    cache, _ = make_cache()
    key = key_of()
    assert cache.get(key) is None
    execute(cache, key, ("catalog_products",), {"product": None})
    assert len(cache) == 1 and cache.bytes > 0
    for _ in range(3):
        assert body_of(cache, key) == b'{"data":{"product":null}'
    assert (cache.hits, cache.misses) == (3, 1)


def test_entry_keeps_the_executions_extensions() -> None:
    cache, _ = make_cache()
    key = key_of()
    recording = cache.recording()
    record_tables(("catalog_products",))
    recording.close()
    cache.put(key, recording, DATA, {"cost": 3})
    entry = cache.get(key)
    assert entry is not None
    assert entry.extensions == {"cost": 3}
    assert entry.body == b'{"data":{"product":{"name":"Mug","priceCents":1250}}'


@pytest.mark.parametrize("change", ["position", "generation"])
def test_entry_is_dropped_once_a_dependency_moves(change: str) -> None:
    cache, versions = make_cache()
    key = key_of()
    execute(cache, key, ("catalog_products", "order_history"))
    assert cache.get(key) is not None
    if change == "position":
        versions.advance("order_history")
    else:
        versions.bump_generation("order_history")
    assert cache.get(key) is None
    assert len(cache) == 0 and cache.bytes == 0
    # Stays gone even if the version came back (it is dropped, not hidden).
    assert cache.get(key) is None
    assert (cache.hits, cache.misses) == (1, 2)


def test_generation_change_alone_invalidates_at_the_same_position() -> None:
    """A rebuild swapped in at the position the runner had already reached: only the
    generation tells the rows changed."""
    cache, versions = make_cache()
    key = key_of()
    execute(cache, key, ("catalog_products",))
    versions.by_name["catalog"] = (1, 10)
    assert cache.get(key) is None


def test_versions_are_taken_before_the_execution_reads() -> None:
    """The projector moved while the query ran: what it read may be either side of the
    move, so the entry must not count as current for the new version."""
    cache, versions = make_cache()
    key = key_of()
    recording = cache.recording()
    versions.advance("catalog")  # the runner commits during the execution
    record_tables(("catalog_products",))
    recording.close()
    cache.put(key, recording, DATA, None)
    assert len(cache) == 1  # stored, but for the version before
    assert cache.get(key) is None


def test_only_projectors_of_tables_read_are_dependencies() -> None:
    cache, versions = make_cache()
    key = key_of()
    execute(cache, key, ("catalog_products",))
    for other in ("order_history", "order_detail", "customer_profile"):
        versions.advance(other, 5)
        versions.bump_generation(other)
    assert cache.get(key) is not None
    versions.advance("catalog")
    assert cache.get(key) is None


def test_both_tables_of_one_projector_share_its_version() -> None:
    cache, versions = make_cache()
    key = key_of()
    execute(cache, key, ("order_changes",))
    versions.advance("catalog")
    assert cache.get(key) is not None
    versions.bump_generation("order_detail")
    assert cache.get(key) is None


def test_a_query_reading_no_table_stays_valid() -> None:
    """An anonymous ``me`` (null, nothing read) depends on nothing but the key."""
    cache, versions = make_cache()
    key = key_of("{ me { name } }", variables={})
    execute(cache, key, (), {"me": None})
    for name in list(versions.by_name):
        versions.advance(name)
        versions.bump_generation(name)
    assert body_of(cache, key) == b'{"data":{"me":null}'


# -- what is not stored -------------------------------------------------------------------
def test_a_table_no_projector_owns_prevents_storing() -> None:
    cache, _ = make_cache()
    key = key_of()
    execute(cache, key, ("catalog_products", "projection_dead_letters"))
    assert len(cache) == 0 and cache.bytes == 0
    assert cache.get(key) is None


def test_mark_uncacheable_prevents_storing() -> None:
    cache, _ = make_cache()
    key = key_of("{ projections { name } }", variables={}, who="staff:s1")
    execute(cache, key, (), {"projections": []}, uncacheable=True)
    assert len(cache) == 0 and cache.bytes == 0
    execute(cache, key, ("catalog_products",), uncacheable=True)
    assert len(cache) == 0
    assert cache.get(key) is None


def test_record_and_mark_outside_a_recording_are_no_ops() -> None:
    cache, _ = make_cache()
    record_tables(("projection_dead_letters",))
    mark_uncacheable()
    key = key_of()
    execute(cache, key, ("catalog_products",))  # nothing left over from before
    assert cache.get(key) is not None


def test_disabled_when_max_bytes_is_zero() -> None:
    cache, _ = make_cache(0)
    assert not cache.enabled
    key = key_of()
    execute(cache, key, ("catalog_products",))
    assert len(cache) == 0 and cache.bytes == 0
    assert cache.get(key) is None
    assert make_cache(1)[0].enabled


# -- keys -------------------------------------------------------------------------------
def test_different_variables_identity_and_operation_are_different_keys() -> None:
    cache, _ = make_cache()
    base = key_of()
    execute(cache, base, ("catalog_products",))
    others = [
        key_of(variables={"sku": "PEN"}),
        key_of(variables={}),
        key_of(who="customer:c1"),
        key_of(who="staff:c1"),
        key_of(who="customer:c2"),
        key_of(operation="Product"),
        key_of(PRODUCT + " "),
    ]
    assert len(set(others) | {base}) == len(others) + 1
    for key in others:
        assert cache.get(key) is None, key
    assert cache.get(base) is not None
    # And each is its own entry.
    for number, key in enumerate(others):
        execute(cache, key, ("catalog_products",), {"n": number})
    for number, key in enumerate(others):
        assert body_of(cache, key) == b'{"data":{"n":%d}' % number
    assert body_of(cache, base) == b'{"data":{"product":{"name":"Mug","priceCents":1250}}'


def test_variables_key_is_independent_of_dict_order() -> None:
    one = {"sku": "MUG", "first": 5, "filter": {"a": 1, "b": [1, 2], "c": None}}
    two = {"filter": {"c": None, "b": [1, 2], "a": 1}, "first": 5, "sku": "MUG"}
    assert list(one) != list(two)
    assert key_of(variables=one) == key_of(variables=two)
    assert key_of(variables=one) != key_of(variables={**one, "filter": {"b": [2, 1]}})
    cache, _ = make_cache()
    execute(cache, key_of(variables=one), ("catalog_products",))
    assert cache.get(key_of(variables=two)) is not None


def test_variables_that_are_not_json_give_no_key() -> None:
    assert ResponseCache.key(PRODUCT, None, {"sku": object()}, "anonymous") is None


# -- the byte bound ---------------------------------------------------------------------
def entry_size(key: Key, data: Any) -> int:
    """What one entry counts for, as the cache itself measures it."""
    probe, _ = make_cache()
    execute(probe, key, ("catalog_products",), data)
    assert len(probe) == 1
    return probe.bytes


def numbered(n: int) -> Key:
    return key_of(variables={"n": n})  # one digit: every such entry has the same size


def test_byte_bound_evicts_least_recently_used_first() -> None:
    size = entry_size(numbered(0), {"v": 0})
    cache, _ = make_cache(8 * size + size // 2)  # room for 8 entries, not 9
    for n in range(8):
        execute(cache, numbered(n), ("catalog_products",), {"v": n})
    assert len(cache) == 8 and cache.bytes == 8 * size
    # Use 0 and 1 again: 2 is now the least recently used.
    assert cache.get(numbered(0)) is not None
    assert cache.get(numbered(1)) is not None
    execute(cache, numbered(8), ("catalog_products",), {"v": 8})
    assert len(cache) == 8 and cache.bytes == 8 * size <= cache.max_bytes
    execute(cache, numbered(9), ("catalog_products",), {"v": 9})
    assert len(cache) == 8 and cache.bytes <= cache.max_bytes
    hits = cache.hits
    assert cache.get(numbered(2)) is None
    assert cache.get(numbered(3)) is None
    for n in (0, 1, 4, 5, 6, 7, 8, 9):
        assert body_of(cache, numbered(n)) == b'{"data":{"v":%d}' % n, n
    assert cache.hits == hits + 8


def test_replacing_an_entry_does_not_count_it_twice() -> None:
    size = entry_size(numbered(0), {"v": 0})
    cache, versions = make_cache()
    execute(cache, numbered(0), ("catalog_products",), {"v": 0})
    execute(cache, numbered(0), ("catalog_products",), {"v": 1})
    assert len(cache) == 1 and cache.bytes == size
    assert body_of(cache, numbered(0)) == b'{"data":{"v":1}'
    versions.advance("catalog")
    assert cache.get(numbered(0)) is None
    assert cache.bytes == 0


def test_entries_larger_than_an_eighth_are_not_stored() -> None:
    size = entry_size(numbered(0), {"v": 0})
    fits, _ = make_cache(8 * size)
    execute(fits, numbered(0), ("catalog_products",), {"v": 0})
    assert len(fits) == 1 and fits.bytes == size
    too_big, _ = make_cache(8 * size - 1)
    execute(too_big, numbered(0), ("catalog_products",), {"v": 0})
    assert len(too_big) == 0 and too_big.bytes == 0
    # A big answer leaves what is there alone.
    small, _ = make_cache(8 * size)
    execute(small, numbered(1), ("catalog_products",), {"v": 1})
    execute(small, numbered(2), ("catalog_products",), {"v": "x" * (8 * size)})
    assert len(small) == 1
    assert small.get(numbered(1)) is not None


def test_a_cache_filled_exactly_to_its_bound_keeps_every_entry() -> None:
    size = entry_size(numbered(0), {"v": 0})
    cache, _ = make_cache(8 * size)  # exactly 8 entries
    for n in range(8):
        execute(cache, numbered(n), ("catalog_products",), {"v": n})
    assert len(cache) == 8 and cache.bytes == cache.max_bytes
    for n in range(8):
        assert body_of(cache, numbered(n)) == b'{"data":{"v":%d}' % n, n


def test_an_entry_counts_its_body_query_and_variables_plus_a_fixed_overhead() -> None:
    """What the byte bound measures: the stored body, the query text and the variables'
    text (all three are held by the entry) and 200 bytes for the objects around them."""
    cache, _ = make_cache()
    query = PRODUCT + " " * 50
    key = key_of(query, variables={"sku": "A-LONG-SKU-" * 4})
    execute(cache, key, ("catalog_products",))
    body = body_of(cache, key)
    assert body is not None
    assert cache.bytes == len(body) + len(query) + len(key[2]) + 200
    other = key_of(variables={"sku": "P"})
    execute(cache, other, ("catalog_products",), {"p": 1})
    assert (
        cache.bytes
        == (len(body) + len(query) + len(key[2]) + 200)
        + len(b'{"data":{"p":1}')
        + len(PRODUCT)
        + len(other[2])
        + 200
    )


def test_misses_count_every_answer_not_served_from_the_cache() -> None:
    cache, versions = make_cache()
    key = key_of()
    assert cache.get(key) is None
    assert cache.get(key_of(who="customer:c1")) is None
    execute(cache, key, ("catalog_products",))
    versions.advance("catalog")
    assert cache.get(key) is None  # stale: dropped
    assert (cache.hits, cache.misses) == (0, 3)


# -- recordings -------------------------------------------------------------------------
def test_recording_close_restores_the_context_variable() -> None:
    cache, _ = make_cache()
    outer = cache.recording()
    record_tables(("catalog_products",))
    inner = Recording(cache.version)
    record_tables(("order_history",))
    inner.close()
    record_tables(("customer_profiles",))  # the outer one's again
    outer.close()
    record_tables(("order_detail",))  # nobody's
    assert inner.tables == {"order_history"}
    assert outer.tables == {"catalog_products", "customer_profiles"}
    later = cache.recording()
    later.close()
    assert later.tables == set()


def test_recording_keeps_every_projectors_version_from_its_start() -> None:
    cache, versions = make_cache()
    before = dict(versions.by_name)
    recording = cache.recording()
    versions.advance("catalog")
    versions.bump_generation("order_history")
    recording.close()
    for name, version in before.items():
        assert recording.before(name) == version


async def test_concurrent_executions_record_separately_and_tasks_inherit() -> None:
    """Requests run in their own tasks; a DataLoader batch runs in a task started from
    the request's: it records into the request's set."""
    cache, _ = make_cache()
    started = asyncio.Event()

    async def child(table: str) -> None:
        await asyncio.sleep(0)
        record_tables((table,))

    async def request(own: str, loaded: str) -> set[str]:
        recording = cache.recording()
        try:
            record_tables((own,))
            started.set()
            await asyncio.sleep(0.01)
            await asyncio.create_task(child(loaded))
        finally:
            recording.close()
        return recording.tables

    first, second = await asyncio.gather(
        request("order_history", "catalog_products"),
        request("customer_profiles", "order_detail"),
    )
    assert started.is_set()
    assert first == {"order_history", "catalog_products"}
    assert second == {"customer_profiles", "order_detail"}
