"""Prometheus metrics: HTTP requests and latencies, projector positions, lag and errors,
subscriptions, the response cache."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from api.bootstrap import Services
from api.cluster.bus import ChangeBus
from api.cluster.db_wake import DbWake
from api.graphql.compiled import CompiledReads
from api.ws import frames as ws_frames
from projections.engine.read_side import ReadSide


class ProjectionCollector(Collector):
    def __init__(self, services: Services) -> None:
        self.services = services

    def collect(self) -> Iterator[Metric]:
        runner = self.services.runner
        position = GaugeMetricFamily(
            "shopfront_projection_position", "Last event position applied", labels=["name"]
        )
        lag = GaugeMetricFamily(
            "shopfront_projection_lag_events", "Events not yet applied", labels=["name"]
        )
        errors = GaugeMetricFamily(
            "shopfront_projection_errors", "1 if the projector is failing", labels=["name"]
        )
        parked = GaugeMetricFamily(
            "shopfront_projection_dead_letters", "Events parked as poison", labels=["name"]
        )
        generation = GaugeMetricFamily(
            "shopfront_projection_generation",
            "Generation of the projector's rows as this process knows it (bumped by a "
            "rebuild or a retry of parked events, in any process)",
            labels=["name"],
        )
        for name in runner.projectors:
            generation.add_metric([name], runner.generations.get(name, 0))
            applied = runner.positions.get(name, 0)
            position.add_metric([name], applied)
            lag.add_metric([name], max(runner.head - applied, 0))
            errors.add_metric([name], 1 if name in runner.errors else 0)
            parked.add_metric([name], runner.dead_letters.get(name, 0))
        yield position
        yield lag
        yield errors
        yield parked
        yield generation
        yield from _leadership(runner)
        head = GaugeMetricFamily("shopfront_event_log_head", "Last known event position")
        head.add_metric([], runner.head)
        yield head
        subscribers = GaugeMetricFamily("shopfront_subscriptions", "Live order subscriptions")
        subscribers.add_metric([], self.services.broker.subscriber_count)
        yield subscribers
        broker = self.services.broker
        handed = CounterMetricFamily(
            "shopfront_subscription_changes",
            "Order changes handed to live subscriptions: sent at once on the express lane, "
            "or queued for the subscription's stream",
            labels=["lane"],
        )
        handed.add_metric(["express"], broker.express_deliveries)
        handed.add_metric(["queued"], broker.queued_deliveries)
        yield handed
        frames = CounterMetricFamily(
            "shopfront_websocket_shared_frames",
            "Express messages written to a WebSocket as a frame made once for every "
            "subscriber of a broadcast with the same message (not framed per connection)",
        )
        frames.add_metric([], ws_frames.counts.written)
        yield frames
        cache = self.services.response_cache
        lookups = CounterMetricFamily(
            "shopfront_response_cache_lookups",
            "Query responses looked up in the response cache",
            labels=["result"],
        )
        lookups.add_metric(["hit"], cache.hits)
        lookups.add_metric(["miss"], cache.misses)
        yield lookups
        held = GaugeMetricFamily("shopfront_response_cache_bytes", "Bytes held by the cache")
        held.add_metric([], cache.bytes)
        yield held


def _leadership(runner: ReadSide) -> Iterator[Metric]:
    """Whether this process leads the projectors (labelled with its id), and how many
    times it took or lost the lead."""
    leadership = runner.leadership
    if leadership is None:
        return
    leader = GaugeMetricFamily(
        "shopfront_projector_leader",
        "1 while this process applies events to the projections, 0 while it stands by",
        labels=["process"],
    )
    leader.add_metric([leadership.holder], 1 if leadership.leading else 0)
    yield leader
    changes = CounterMetricFamily(
        "shopfront_projector_leadership_changes",
        "Times this process became or stopped being the projector leader",
    )
    changes.add_metric([], leadership.changes)
    yield changes


class CompiledReadsCollector(Collector):
    def __init__(self, compiled: CompiledReads) -> None:
        self.compiled = compiled

    def collect(self) -> Iterator[Metric]:
        operations = CounterMetricFamily(
            "shopfront_graphql_operations",
            "Query operations run over HTTP (response cache hits aside), by path: a compiled "
            "plan, or the Strawberry executor (fallback)",
            labels=["path"],
        )
        operations.add_metric(["compiled"], self.compiled.compiled)
        operations.add_metric(["fallback"], self.compiled.fallback)
        yield operations
        mutations = CounterMetricFamily(
            "shopfront_graphql_mutations",
            "Mutation operations run over HTTP, by path: a compiled plan (the order "
            "mutations), or the Strawberry executor (fallback)",
            labels=["path"],
        )
        mutations.add_metric(["compiled"], self.compiled.compiled_mutations)
        mutations.add_metric(["fallback"], self.compiled.fallback_mutations)
        yield mutations


class BusCollector(Collector):
    """The change bus over Redis (only with SHOPFRONT_REDIS_URL set)."""

    def __init__(self, bus: ChangeBus) -> None:
        self.bus = bus

    def collect(self) -> Iterator[Metric]:
        link = self.bus.link
        connected = GaugeMetricFamily(
            "shopfront_bus_connected",
            "1 while the change bus is connected to Redis; 0 while degraded (changes from "
            "other processes arrive by poll)",
        )
        connected.add_metric([], 1 if link.up else 0)
        yield connected
        messages = CounterMetricFamily(
            "shopfront_bus_messages",
            "Change bus messages published by this process, and received from others",
            labels=["direction"],
        )
        messages.add_metric(["sent"], self.bus.sent)
        messages.add_metric(["received"], self.bus.received)
        yield messages
        reconnects = CounterMetricFamily(
            "shopfront_bus_reconnects", "Times the link to Redis came back after failing"
        )
        reconnects.add_metric([], link.reconnects)
        yield reconnects
        failures = CounterMetricFamily(
            "shopfront_redis_failures",
            "Redis commands that failed or timed out (each fell back to this process alone)",
        )
        failures.add_metric([], link.failures)
        yield failures


class DbWakeCollector(Collector):
    """Wake-ups through the databases (without Redis, SHOPFRONT_DB_WAKE)."""

    def __init__(self, wake: DbWake) -> None:
        self.wake = wake

    def collect(self) -> Iterator[Metric]:
        listening = GaugeMetricFamily(
            "shopfront_db_wake_listening",
            "1 while this process listens for other processes' commits through the "
            "database (PostgreSQL LISTEN, SQLite data_version watchers); 0: by poll only",
        )
        listening.add_metric([], 1 if self.wake.listening else 0)
        yield listening
        messages = CounterMetricFamily(
            "shopfront_db_wake_messages",
            "Wake-ups received from the database: NOTIFY messages from other processes "
            "(PostgreSQL), commits seen by the data_version watchers (SQLite)",
        )
        messages.add_metric([], self.wake.messages)
        yield messages


class Metrics:
    def __init__(self, services: Services, compiled: CompiledReads | None = None) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "shopfront_http_requests",
            "HTTP requests",
            ["path", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "shopfront_http_request_seconds",
            "HTTP request latency",
            ["path"],
            registry=self.registry,
        )
        self.registry.register(ProjectionCollector(services))
        if compiled is not None:
            self.registry.register(CompiledReadsCollector(compiled))
        if services.db_wake is not None:
            self.registry.register(DbWakeCollector(services.db_wake))
        if services.change_bus is not None:
            self.registry.register(BusCollector(services.change_bus))
            self.registry.register(services.change_bus.delay)


class RequestCounts:
    """The HTTP requests' counter and latency histogram, recorded by the edge middleware
    (api/middleware/edge.py) once each request is answered."""

    PATHS = frozenset(("/graphql", "/healthz", "/readyz", "/metrics"))

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self._seen: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def observe(self, path: str, method: str, status: int, seconds: float) -> None:
        count, latency = self._children(path if path in self.PATHS else "other", method, status)
        count.inc()
        latency.observe(seconds)

    def _children(self, path: str, method: str, status: int) -> tuple[Counter, Histogram]:
        """The labelled counter and histogram of a kind of request, looked up once (a
        ``labels()`` call costs about as much as the rest of a cached answer's metrics)."""
        key = (path, method, status)
        found = self._seen.get(key)
        if found is None:
            found = (
                self.metrics.requests.labels(path, method, str(status)),
                self.metrics.latency.labels(path),
            )
            if len(self._seen) < 1024:  # bounded, whatever methods clients make up
                self._seen[key] = found
        return found
