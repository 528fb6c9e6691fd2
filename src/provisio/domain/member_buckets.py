"""Live members counted per id prefix, so that an offset page in id order skips whole buckets.

Member ids are random UUIDs (``models.new_id``): their first two hex digits split a workspace's members
into 256 buckets of about equal size. With a kept count per bucket, the members before offset ``n`` are
whole buckets plus part of one: a page adds up the counts (256 small rows at most) and steps through the
rows of a single bucket, ~1/256 of the workspace, instead of through all ``n`` rows before it. The
counts and the rows are read by one statement, so they agree even while members come and go.

``record`` is called wherever ``Workspace.member_count`` changes (``domain.members``), in the same
transaction, last: a bucket row is locked after the workspace and people rows (the lock order in
``provisio.domain.seats``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, bindparam, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from provisio.db.models import Member, MemberBucket, Workspace

PREFIX_LENGTH = 2


def prefix(member_id: str) -> str:
    return member_id[:PREFIX_LENGTH]


def _upsert(dialect: Any) -> Any:
    insert = dialect.insert(MemberBucket).values(
        workspace_id=bindparam("workspace_id"), prefix=bindparam("prefix"), live=bindparam("delta")
    )
    return insert.on_conflict_do_update(
        index_elements=[MemberBucket.workspace_id, MemberBucket.prefix],
        set_={"live": MemberBucket.live + insert.excluded.live},
    )


# Both dialects spell an upsert the same way, but through their own insert constructs.
_UPSERTS = {"postgresql": _upsert(postgresql), "sqlite": _upsert(sqlite)}


async def record(session: AsyncSession, workspace_id: str, member_id: str, delta: int) -> None:
    """Member ``member_id`` became live (``delta`` +1) or stopped being live (-1)."""
    statement = _UPSERTS[session.get_bind().dialect.name]
    await session.execute(
        statement, {"workspace_id": workspace_id, "prefix": prefix(member_id), "delta": delta}
    )


# The bucket holding the live member at offset :skip_rows (0-based) of the workspace bound as
# scope_workspace, and how many of that bucket's members come before it. No row past the last member.
_RUNNING = (
    select(
        MemberBucket.prefix,
        MemberBucket.live,
        # A ROWS frame: prefixes are unique, and SQLite computes it faster than the default RANGE frame.
        func.sum(MemberBucket.live).over(order_by=MemberBucket.prefix, rows=(None, 0)).label("upto"),
    )
    .where(MemberBucket.workspace_id == bindparam("scope_workspace"))
    .cte("running")
)
_TARGET = (
    select(_RUNNING.c.prefix, (bindparam("skip_rows") - (_RUNNING.c.upto - _RUNNING.c.live)).label("within"))
    .where(_RUNNING.c.upto > bindparam("skip_rows"))
    .order_by(_RUNNING.c.prefix)
    .limit(1)
    .cte("target")
)


def ids_after(live_ids: Select[Any], limit: int) -> Select[Any]:
    """``live_ids`` (the ids of the workspace's live members, filtered no further) from offset
    ``:skip_rows`` in id order, at most ``limit`` of them: from the first id of the offset's bucket on,
    skipping only that bucket's earlier members. Bind ``skip_rows`` and ``scope_workspace``."""
    return (
        live_ids.where(Member.id >= select(_TARGET.c.prefix).scalar_subquery())
        .order_by(Member.id)
        # Past the last member there is no target: no id matches, and OFFSET must still be a number.
        .offset(func.coalesce(select(_TARGET.c.within).scalar_subquery(), 0))
        .limit(limit)
    )


async def recount(session: AsyncSession) -> list[str]:
    """Rebuild every workspace's kept counts (``Workspace.member_count`` and the buckets) from its rows, in
    the caller's write transaction; the ids of the workspaces whose counts were wrong.

    Nothing in provisio lets them drift; this repairs what SQL written by hand, a partial restore or an
    old server version still writing during an upgrade could have left."""
    prefix_of = func.substr(Member.id, 1, PREFIX_LENGTH)
    rows = (
        select(Member.workspace_id, prefix_of, func.count())
        .where(Member.deleted_at.is_(None))
        .group_by(Member.workspace_id, prefix_of)
    )
    actual: dict[str, dict[str, int]] = {}
    for workspace_id, bucket, count in (await session.execute(rows)).all():
        actual.setdefault(workspace_id, {})[bucket] = count
    kept: dict[str, dict[str, int]] = {}
    for workspace_id, bucket, count in (
        await session.execute(select(MemberBucket.workspace_id, MemberBucket.prefix, MemberBucket.live))
    ).all():
        if count:
            kept.setdefault(workspace_id, {})[bucket] = count
    totals = dict((await session.execute(select(Workspace.id, Workspace.member_count))).all())
    wrong = sorted(
        workspace_id
        for workspace_id, total in totals.items()
        if kept.get(workspace_id, {}) != actual.get(workspace_id, {})
        or total != sum(actual.get(workspace_id, {}).values())
    )
    for workspace_id in wrong:
        buckets = actual.get(workspace_id, {})
        await session.execute(delete(MemberBucket).where(MemberBucket.workspace_id == workspace_id))
        if buckets:
            await session.execute(
                insert(MemberBucket),
                [{"workspace_id": workspace_id, "prefix": p, "live": n} for p, n in buckets.items()],
            )
        await session.execute(
            update(Workspace).where(Workspace.id == workspace_id).values(member_count=sum(buckets.values()))
        )
    return wrong
