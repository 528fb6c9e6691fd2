"""The rate-limit table's migration upgrades and downgrades on both databases."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect

from tests.migrations import downgrade_to, read, round_trip_on_fresh_database, upgrade_to


def _tables(url: str) -> set[str]:
    return read(url, lambda sync: set(inspect(sync).get_table_names()))


def _round_trip(url: str) -> None:
    upgrade_to(url)
    assert "rate_limit_buckets" in _tables(url)
    downgrade_to(url, "0006")
    tables = _tables(url)
    assert "rate_limit_buckets" not in tables and "member_buckets" in tables
    upgrade_to(url)
    assert "rate_limit_buckets" in _tables(url)


async def test_upgrade_downgrade_upgrade(database_url: str, tmp_path: Path) -> None:
    await round_trip_on_fresh_database(database_url, tmp_path, _round_trip)
