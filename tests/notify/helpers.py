"""Enqueueing test mails and reading their outbox rows."""

from __future__ import annotations

from sqlalchemy import select

from provisio.config import Settings
from provisio.db.engine import Database
from provisio.db.models import OutboxMessage
from provisio.notify.mail import message_id
from provisio.notify.outbox import enqueue_mail


async def enqueue_many(db: Database, count: int, tag: str = "m", *, html: bool = True) -> list[str]:
    ids: list[str] = []
    async with db.writing() as session:
        for i in range(count):
            row_id = await enqueue_mail(
                session,
                to=[f"{tag}{i}@example.test"],
                subject=f"{tag} {i}",
                text=f"hello {i}",
                html=f"<p>hello {i}</p>" if html else None,
            )
            assert row_id is not None
            ids.append(row_id)
    return ids


async def rows(db: Database, ids: list[str]) -> dict[str, OutboxMessage]:
    async with db.reading() as session:
        found = await session.scalars(select(OutboxMessage).where(OutboxMessage.id.in_(ids)))
        return {row.id: row for row in found}


async def all_sent(db: Database, ids: list[str]) -> bool:
    return all(row.sent_at is not None for row in (await rows(db, ids)).values())


def message_ids(settings: Settings, ids: list[str]) -> list[str]:
    return [message_id(row_id, settings.mail_from) for row_id in ids]
