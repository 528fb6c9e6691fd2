"""Buckets in Redis (``PROVISIO_REDIS_URL``), shared by every process that uses that Redis.

A claim is one Lua script, the GCRA step of ``provisio.ratelimit.core.gcra``: Redis runs a script
atomically, so concurrent claims on one bucket are ordered. A bucket's key expires when the bucket is
full again, so idle workspaces leave nothing behind.
"""

from __future__ import annotations

import redis.asyncio as redis

from provisio.ratelimit.core import EPSILON, Grant, Rate, retry_after

KEY_PREFIX = "provisio:ratelimit:"
# A claim that takes longer than this fails (and the limiter lets the request through): a slow Redis
# must not stall the SCIM API.
TIMEOUT_S = 0.5

# KEYS[1] bucket; ARGV now, want, interval, tolerance, epsilon. Returns {granted, tat as text}: Redis
# turns a Lua number into an integer, so the time travels as a string.
_CLAIM = """
local now = tonumber(ARGV[1])
local want = tonumber(ARGV[2])
local interval = tonumber(ARGV[3])
local tolerance = tonumber(ARGV[4])
local base = tonumber(redis.call('GET', KEYS[1]) or '')
if base == nil or base < now then base = now end
local available = (tolerance - (base - now)) / interval + tonumber(ARGV[5])
local granted = 0
if available >= 1 then granted = math.min(want, math.floor(available)) end
if granted > 0 then
  base = base + granted * interval
  local ttl = math.ceil((base - now) * 1000) + 1000
  redis.call('SET', KEYS[1], string.format('%.17g', base), 'PX', ttl)
end
return {granted, string.format('%.17g', base)}
"""


class RedisStore:
    shared = True

    def __init__(self, url: str, *, key_prefix: str = KEY_PREFIX) -> None:
        self.client = redis.Redis.from_url(url, socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S)
        self.key_prefix = key_prefix
        self._script = self.client.register_script(_CLAIM)

    async def claim(self, key: str, want: int, rate: Rate, now: float) -> Grant:
        args: list[str | int] = [repr(now), want, repr(rate.interval), repr(rate.tolerance), repr(EPSILON)]
        granted, tat = await self._script(keys=[self.key_prefix + key], args=args)
        if granted:
            return Grant(int(granted))
        return Grant(0, retry_after(float(tat), now, rate))

    async def close(self) -> None:
        await self.client.aclose()
