"""Seeding straight into the database, for large N (100 000 users through the API take many minutes).

Rows are cloned from a user the API created (the template), so every column, including any added later,
has the value the server would have written; the columns the server derives from the document (see
``provisio.domain.members._sync_columns``) and the linked ``people`` row are rewritten for each user.
The tables are reflected from the live database: nothing here imports provisio's models.
"""

from __future__ import annotations

import copy
import time
import uuid
from typing import Any

from sqlalchemy import MetaData, and_, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from bench.users import SeededUser, user_name

BATCH = 5_000
TABLES = ["members", "people", "workspaces", "member_buckets"]
DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}


def _async_url(database_url: str) -> str:
    url = make_url(database_url)
    return url.set(drivername=DRIVERS[url.get_backend_name()]).render_as_string(hide_password=False)


def _member_doc(template: dict[str, Any], name: str, index: int) -> dict[str, Any]:
    """The template's stored document with what ``bench.users.new_user`` varies per user replaced."""
    doc = copy.deepcopy(template)
    doc["userName"] = name
    doc["externalId"] = f"ext-{index}"
    doc["displayName"] = f"Given{index} Family{index}"
    doc["name"] = {**doc.get("name", {}), "givenName": f"Given{index}", "familyName": f"Family{index}"}
    doc["emails"] = [{**doc["emails"][0], "value": name}]
    return doc


def _rows(
    member: dict[str, Any], person: dict[str, Any] | None, start: int, count: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[SeededUser]]:
    members, people, seeded = [], [], []
    for index in range(start, start + count):
        name = user_name(index)
        doc = _member_doc(member["doc"], name, index)
        row = dict(member)
        row.update(
            id=str(uuid.uuid4()),
            user_name=name,
            user_name_lower=name.lower(),
            external_id=doc["externalId"],
            display_name=doc["displayName"],
            given_name=doc["name"]["givenName"],
            family_name=doc["name"]["familyName"],
            email_lower=name.lower(),
            doc=doc,
        )
        if person is not None:
            person_row = dict(person, id=str(uuid.uuid4()), email=name, email_lower=name.lower())
            row["person_id"] = person_row["id"]
            people.append(person_row)
        members.append(row)
        seeded.append(SeededUser(id=row["id"], user_name=name, index=index))
    return members, people, seeded


async def _template(
    conn: AsyncConnection, template_id: str
) -> tuple[MetaData, dict[str, Any], dict[str, Any] | None]:
    """The reflected tables, and the member ``template_id`` with its ``people`` row (None if it has none)."""
    meta = MetaData()
    await conn.run_sync(lambda sync: meta.reflect(sync, only=TABLES))
    members, people = meta.tables["members"], meta.tables["people"]
    member = (await conn.execute(select(members).where(members.c.id == template_id))).mappings().one()
    person = None
    if member.get("person_id"):
        found = await conn.execute(select(people).where(people.c.id == member["person_id"]))
        person = dict(found.mappings().one())
    return meta, dict(member), person


async def _recount(conn: AsyncConnection, meta: MetaData, workspace_id: str) -> None:
    """What the server keeps beside the rows it writes, rebuilt from the rows: the workspace's live member
    count (an unfiltered list's totalResults) and its counts per id prefix
    (``provisio.domain.member_buckets``)."""
    members, buckets, workspaces = (meta.tables[n] for n in ("members", "member_buckets", "workspaces"))
    live = and_(members.c.workspace_id == workspace_id, members.c.deleted_at.is_(None))
    prefix = func.substr(members.c.id, 1, 2)
    per_prefix = (
        select(members.c.workspace_id, prefix, func.count())
        .where(live)
        .group_by(members.c.workspace_id, prefix)
    )
    await conn.execute(buckets.delete().where(buckets.c.workspace_id == workspace_id))
    await conn.execute(buckets.insert().from_select(["workspace_id", "prefix", "live"], per_prefix))
    total = select(func.count()).where(live).scalar_subquery()
    await conn.execute(workspaces.update().where(workspaces.c.id == workspace_id).values(member_count=total))


async def seed_sql(
    database_url: str, template_id: str, start: int, count: int
) -> tuple[list[SeededUser], float]:
    """Insert users ``start`` … ``start + count - 1`` cloned from the member ``template_id``."""
    began = time.perf_counter()
    engine = create_async_engine(_async_url(database_url))
    try:
        async with engine.connect() as conn:
            meta, member, person = await _template(conn, template_id)
        members, people = meta.tables["members"], meta.tables["people"]
        seeded: list[SeededUser] = []
        for offset in range(0, count, BATCH):
            member_rows, person_rows, batch = _rows(
                member, person, start + offset, min(BATCH, count - offset)
            )
            async with engine.begin() as conn:
                if person_rows:
                    await conn.execute(people.insert(), person_rows)
                await conn.execute(members.insert(), member_rows)
                # In the batch's own transaction: an interrupted seeding leaves the counts true.
                await _recount(conn, meta, member["workspace_id"])
            seeded.extend(batch)
    finally:
        await engine.dispose()
    return seeded, time.perf_counter() - began


async def seed_neighbour(database_url: str, template_id: str, count: int) -> tuple[str, list[SeededUser]]:
    """Another workspace with ``count`` members cloned from the member ``template_id``: a multi-tenant
    database, where a statement that loses sight of its workspace reads other tenants' rows (their ids
    interleave with the measured workspace's). Its members have no ``people`` row: nothing the measured
    workspace does looks them up. Returns the neighbour's key and its members."""
    engine = create_async_engine(_async_url(database_url))
    seeded: list[SeededUser] = []
    try:
        async with engine.begin() as conn:
            meta, member, _ = await _template(conn, template_id)
            members, workspaces = meta.tables["members"], meta.tables["workspaces"]
            found = await conn.execute(select(workspaces).where(workspaces.c.id == member["workspace_id"]))
            workspace = dict(found.mappings().one())
            neighbour_id = str(uuid.uuid4())
            suffix = neighbour_id[:8]
            workspace.update(id=neighbour_id, key=f"neighbour-{suffix}", name=f"Neighbour {suffix}")
            await conn.execute(workspaces.insert(), [workspace])
            for offset in range(0, count, BATCH):
                rows, _, batch = _rows(member, None, offset, min(BATCH, count - offset))
                seeded.extend(batch)
                for row in rows:
                    row.update(workspace_id=neighbour_id, person_id=None)
                await conn.execute(members.insert(), rows)
            await _recount(conn, meta, neighbour_id)
    finally:
        await engine.dispose()
    return str(workspace["key"]), seeded


async def settle(database_url: str) -> None:
    """PostgreSQL, after seeding: what autovacuum does within a minute of a bulk load — statistics for the
    planner, and the visibility map that lets an index-only scan (an offset page skipping rows) skip the
    heap. Measuring before it would measure a database no production server runs on for long."""
    if make_url(database_url).get_backend_name() != "postgresql":
        return
    engine = create_async_engine(_async_url(database_url))
    try:
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("VACUUM (ANALYZE) members, people"))
    finally:
        await engine.dispose()
