"""Rate limits: the GCRA rule and leases (``core``), and where the buckets live.

Which store a server uses: Redis when ``PROVISIO_REDIS_URL`` is set; else the database when it is
PostgreSQL; else (SQLite) this process's memory, so that the limits are then per process.
"""

from __future__ import annotations

from sqlalchemy.engine import make_url

from provisio.config import Settings
from provisio.ratelimit.core import Grant, Limiter, LimiterStore, MemoryStore, Rate, Refused

__all__ = ["Grant", "Limiter", "LimiterStore", "MemoryStore", "Rate", "Refused", "scim_limiter", "store_for"]


def store_for(settings: Settings) -> LimiterStore:
    if settings.redis_url:
        from provisio.ratelimit.redis_store import RedisStore

        return RedisStore(settings.redis_url)
    if make_url(settings.database_url).get_backend_name() == "postgresql":
        from provisio.ratelimit.sql import SqlStore

        return SqlStore(settings.database_url)
    return MemoryStore()


def scim_limiter(settings: Settings) -> Limiter | None:
    """The per-workspace limit of the SCIM API, or None when it is off."""
    if settings.scim_rate_limit_per_second <= 0:
        return None
    rate = Rate(settings.scim_rate_limit_per_second, settings.scim_rate_limit_burst)
    return Limiter(store_for(settings), rate)
