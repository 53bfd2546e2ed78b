"""State that one process's view would get wrong with several processes, kept in Redis
when it is configured: persisted queries (a hash registered through one process is
served by every other) and the per-identity rate limit (one bucket per identity for all
processes, so N processes do not give a client N allowances).

Both sit behind the process's own copy and fall back to it: while Redis is down or slow
(``RedisUnavailable``), a process keeps and serves the queries it has itself, and counts
each identity in its own buckets, as without Redis.
"""

from __future__ import annotations

from api.cluster.link import RedisLink

QUERY_PREFIX = "shopfront:apq:"
BUCKET_PREFIX = "shopfront:rate:"

# A token bucket, atomic across processes: refill by Redis's own clock, then take
# ``count`` tokens if there are that many (else take nothing and answer the seconds until
# there would be). The key expires once the bucket would be full again anyway.
TAKE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local count = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(now - at, 0) * rate)
local wait = 0
if tokens >= count then
  tokens = tokens - count
else
  wait = (math.min(count, burst) - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return tostring(wait)
"""


class RedisQueries:
    """Persisted queries by hash, each kept ``ttl`` seconds after its last use."""

    def __init__(self, link: RedisLink, ttl: int) -> None:
        self.link = link
        self.ttl = ttl

    async def get(self, digest: str) -> str | None:
        found = await self.link.call(
            "persisted query", lambda r: r.getex(QUERY_PREFIX + digest, ex=self.ttl)
        )
        if found is None:
            return None
        return found if isinstance(found, str) else found.decode()

    async def put(self, digest: str, query: str) -> None:
        await self.link.call(
            "persisted query", lambda r: r.set(QUERY_PREFIX + digest, query, ex=self.ttl)
        )


class RedisBuckets:
    """Token buckets per key in Redis: ``rate`` tokens a second, up to ``burst``."""

    def __init__(self, link: RedisLink, rate: float, burst: int) -> None:
        self.link = link
        self.rate = rate
        self.burst = burst
        self._take = link.client.register_script(TAKE)

    async def take(self, key: str, count: int = 1) -> float:
        """Take ``count`` tokens; 0 if allowed, else the seconds until they are there
        (and nothing taken)."""
        wait = await self.link.call(
            "rate limit",
            lambda r: self._take(keys=[BUCKET_PREFIX + key], args=[self.rate, self.burst, count]),
        )
        return float(wait)
