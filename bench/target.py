"""What the load generator needs to know about a running server."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    """A running SCIM server the load generator talks to."""

    label: str  # "sqlite", "postgresql" or "peer"
    base_url: str  # the SCIM base (tenant URL)
    token: str
    trivial_url: str  # the cheapest endpoint it has, for the "trivial" scenario
    pid: int
    database_url: str | None = None  # provisio's database, for seeding large N directly
    database_marker: str | None = None  # PostgreSQL database name, to account its backends' CPU
