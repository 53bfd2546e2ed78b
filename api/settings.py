"""Settings from the environment (``SHOPFRONT_`` prefix) and an optional ``.env`` file."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_JWT_SECRET = "shopfront-dev-only-secret-do-not-use-in-production"
# RFC 7518, 3.2: an HS256 key at least as long as the hash output.
MIN_JWT_SECRET_BYTES = 32


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SHOPFRONT_", env_file=".env", extra="ignore")

    write_database_url: str = "sqlite+aiosqlite:///var/write.db"
    read_database_url: str = "sqlite+aiosqlite:///var/read.db"
    # Redis (redis://host:port/db): the change bus between processes (a wake-up: every
    # change is still read from the read model by position), persisted queries and the
    # per-identity rate limit shared by all processes. Unset, or while it is down: each
    # process polls and keeps its own (docs/operations.md, "Redis").
    redis_url: str | None = None
    # Seconds any one Redis command may take (publish, rate limit, persisted query, the
    # listener's health PING); a slower or failed one degrades the bus to the fallback.
    redis_timeout: float = Field(default=0.25, gt=0)
    # Longest wait between two reconnect tries while Redis is down (backoff from 0.1 s,
    # doubling, jittered).
    redis_reconnect_max_seconds: float = Field(default=2.0, gt=0)
    # Without Redis: wake the other processes on commit through the database itself
    # (PostgreSQL LISTEN/NOTIFY; SQLite: a thread watching each file's data_version), so
    # they apply or deliver at once instead of at their next poll. Ignored (off) when
    # SHOPFRONT_REDIS_URL is set: the change bus does it (docs/operations.md).
    db_wake: bool = True
    # SQLite: how often (seconds) the watcher threads read PRAGMA data_version.
    sqlite_watch_interval: float = Field(default=0.002, gt=0)
    # How long Redis keeps a persisted query after its last use (seconds).
    persisted_query_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=1)
    # PostgreSQL: connections each pool keeps (a process has four pools: commands, the
    # event log's reader, GraphQL reads, projectors) and how many more it may open at a
    # peak; the statement_timeout of every connection (ms, 0: none) - a statement running
    # longer fails and its request answers DATABASE_UNAVAILABLE. SQLite ignores them.
    db_pool_size: int = Field(default=10, ge=1)
    db_max_overflow: int = Field(default=10, ge=0)
    db_statement_timeout_ms: int = Field(default=30_000, ge=0)
    jwt_secret: str = DEV_JWT_SECRET
    # RS256: tokens from an identity provider, verified with keys from a JWKS file or URL.
    jwt_algorithm: Literal["HS256", "RS256"] = "HS256"
    jwt_jwks: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    env: Literal["dev", "prod"] = "dev"
    # `shopfront serve` refuses a non-loopback address while the dev-only secret is in use.
    host: str = "127.0.0.1"
    port: int = 8000
    # How long a mutation waits for the read models to reach its events (read-your-writes).
    read_your_writes_timeout: float = Field(default=5.0, ge=0)
    # Fallback poll of the event log, for events written by other processes.
    projection_poll_interval: float = Field(default=0.5, gt=0)
    projection_batch_size: int = Field(default=500, ge=1)
    # inline: this API process may lead the projectors (one process of all those able to
    # leads at a time); off: it never applies events, only follows them (run
    # `shopfront project` somewhere). Either way it serves every query, mutation and
    # subscription.
    projectors: Literal["inline", "off"] = "inline"
    # Standbys try to take the projector lock this often (seconds) ...
    leader_retry_interval: float = Field(default=0.5, gt=0)
    # ... so that one leads within about this long after the leader dies; on PostgreSQL
    # also how long a silent leader's session lasts (TCP keepalives) before it loses it.
    leader_takeover_seconds: float = Field(default=2.0, gt=0)
    # A rebuild of a log this long or longer is shared with a helper process (a second CPU).
    rebuild_helper_min_events: int = Field(default=50_000, ge=0)
    # Browser origins allowed to open a WebSocket (same-origin is always allowed).
    allowed_origins: list[str] = Field(default_factory=list)
    # Browser origins allowed to call over HTTP (CORS); empty: same-origin only.
    cors_origins: list[str] = Field(default_factory=list)
    # Operations in one batched POST (a JSON array, as Apollo's BatchHttpLink sends).
    max_batch_operations: int = Field(default=10, ge=1)
    # Dev only: pages on localhost / 127.0.0.1 / [::1], any port (a frontend dev server),
    # may call over HTTP and open WebSockets too. Prod uses the two lists alone.
    dev_allow_loopback_origins: bool = True
    # Requests per second per identity (token subject, else client address); 0: no limit.
    rate_limit_per_second: float = Field(default=50.0, ge=0)
    rate_limit_burst: int = Field(default=100, ge=1)
    # Requests per second per client address, whoever signs in from it (HTTP and every
    # WebSocket operation count against both buckets); larger than per identity, since
    # many people can share one address behind a NAT. 0: no limit.
    rate_limit_per_address_per_second: float = Field(default=200.0, ge=0)
    rate_limit_per_address_burst: int = Field(default=400, ge=1)
    # registerCustomer per client address (each sign-up mints a new identity with its
    # own bucket): a small burst, refilling slowly. 0: no limit.
    registrations_per_address_per_minute: float = Field(default=2.0, ge=0)
    registrations_per_address_burst: int = Field(default=10, ge=1)
    # WebSocket limits: per identity, and how long a socket may stay silent.
    max_websockets_per_identity: int = Field(default=10, ge=1)
    max_subscriptions_per_identity: int = Field(default=100, ge=1)
    websocket_init_timeout: float = Field(default=10.0, gt=0)
    # WebSockets accepted from one address that have not sent connection_init yet.
    max_pending_websockets_per_address: int = Field(default=20, ge=1)
    websocket_idle_timeout: float = Field(default=300.0, gt=0)
    # Longest GraphQL document accepted (UTF-8 bytes), over HTTP and WebSocket; longer ones
    # are refused (QUERY_TOO_LARGE) before they are parsed or cached.
    max_query_bytes: int = Field(default=64 * 1024, ge=1024)
    # Query responses kept per process, invalidated by the read-table positions; 0: off.
    response_cache_mb: float = Field(default=64.0, ge=0)
    # Known query operations answered by a compiled plan straight from the read rows
    # (api/graphql/compiled/), after the same limits and with the same bytes as the
    # Strawberry executor, which answers everything else; false: Strawberry answers all.
    compiled_reads: bool = True
    # The order mutations (placeOrder, payOrder, cancelOrder, shipOrder, deliverOrder) on
    # the compiled path too: the same command, their payload written from the order
    # document the projection committed. Needs compiled_reads; false: Strawberry runs them.
    compiled_mutations: bool = True
    # permessage-deflate on WebSockets: zlib state held per connection, for messages of a
    # few hundred bytes; off unless asked for (docs/performance.md).
    websocket_compression: bool = False
    log_level: str = "info"
    # `shopfront serve`'s limits on slow or greedy clients (docs/operations.md): open
    # connections and tasks before new ones get 503 (0: none); the bytes of a request's
    # headers (431 beyond); seconds to receive a whole request body (408 and closed);
    # seconds an idle keep-alive connection stays open; bytes of one WebSocket message
    # (closed with 1009 beyond).
    limit_concurrency: int = Field(default=10_000, ge=0)
    max_header_bytes: int = Field(default=64 * 1024, ge=1024)
    body_read_timeout: float = Field(default=10.0, gt=0)
    keep_alive_timeout: int = Field(default=5, ge=1)
    websocket_max_message_bytes: int = Field(default=2**20, ge=1024)
    # Addresses of reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed
    # (comma-separated IPs or networks, "*" for any); unset: none, the peer's address is
    # the client's (rate limits, logs).
    forwarded_allow_ips: str | None = None
    # /metrics: served to `Authorization: Bearer <this>` only, when set; unset: public in
    # dev, not served (404) in prod.
    metrics_token: str | None = None
    # `shopfront serve`: objects allocated between two young garbage collections (Python's
    # default is 700); 0 leaves Python's. A request's objects die young: fewer young
    # collections mean less time walking the objects still in use (docs/performance.md).
    gc_young_threshold: int = Field(default=50_000, ge=0)
    # Test-only fault injection: "NAME[:N]" kills the process (SIGKILL) after projector NAME
    # has written its rows for the N-th time, before they commit. Never set it in production.
    test_crash_before_commit: str | None = None

    @property
    def is_dev(self) -> bool:
        return self.env == "dev"

    @property
    def uses_dev_secret(self) -> bool:
        return self.jwt_algorithm == "HS256" and self.jwt_secret == DEV_JWT_SECRET

    def startup_problem(self) -> str | None:
        """Why a server must not start with these settings, or None."""
        if self.leader_retry_interval >= self.leader_takeover_seconds:
            return (
                "SHOPFRONT_LEADER_RETRY_INTERVAL must be shorter than "
                "SHOPFRONT_LEADER_TAKEOVER_SECONDS (standbys must try within the bound)"
            )
        if self.is_dev:
            return None
        if self.uses_dev_secret:
            return "SHOPFRONT_JWT_SECRET must be set when SHOPFRONT_ENV=prod"
        if self.jwt_algorithm == "HS256" and len(self.jwt_secret.encode()) < MIN_JWT_SECRET_BYTES:
            return (
                f"SHOPFRONT_JWT_SECRET must be at least {MIN_JWT_SECRET_BYTES} bytes when "
                "SHOPFRONT_ENV=prod (e.g. python -c "
                "'import secrets; print(secrets.token_urlsafe(48))')"
            )
        if self.test_crash_before_commit:
            return (
                "SHOPFRONT_TEST_CRASH_BEFORE_COMMIT is a test-only fault hook (it kills the "
                "process): unset it when SHOPFRONT_ENV=prod"
            )
        return None
