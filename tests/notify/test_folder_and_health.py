"""Without an SMTP server mail goes to a folder of .eml files; the health figures that
/readyz reads ("a worker is alive and not stuck")."""

from __future__ import annotations

import email
import email.policy
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from provisio.config import Settings
from provisio.db.engine import Database
from provisio.db.models import OutboxMessage, WorkerHeartbeat, utcnow
from provisio.notify.worker import OutboxWorker, outbox_health, outbox_problem
from tests.notify.conftest import fast
from tests.notify.helpers import enqueue_many, message_ids, rows

pytestmark = pytest.mark.usefixtures("empty_outbox")


async def test_without_smtp_mail_goes_to_the_folder_and_the_log(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    folder = tmp_path / "mail"
    demo = fast(settings, smtp_host="", mail_dir=str(folder))
    ids = await enqueue_many(db, 2, "demo")
    worker = OutboxWorker(db, demo)
    assert await worker.run_once() == 2  # the log lines are checked with the CLI (tests/notify/test_cli.py)
    files = sorted(folder.glob("*.eml"))
    assert len(files) == 2 and not list(folder.glob(".*"))  # no partial file left behind
    parsed = [email.message_from_bytes(f.read_bytes(), policy=email.policy.default) for f in files]
    assert sorted(str(m["Message-ID"]) for m in parsed) == sorted(message_ids(demo, ids))
    assert sorted(str(m["Subject"]) for m in parsed) == ["demo 0", "demo 1"]
    assert all(ids[0] in f.name or ids[1] in f.name for f in files)
    assert all(row.sent_at is not None for row in (await rows(db, ids)).values())

    # A second delivery of the same row (at least once) rewrites its file: still one per mail.
    async with db.writing() as session:
        await session.execute(update(OutboxMessage).values(sent_at=None))
    await worker.run_once()
    assert sorted(folder.glob("*.eml")) == files


async def test_health_of_the_outbox(db: Database, settings: Settings, tmp_path: Path) -> None:
    demo = fast(settings, smtp_host="", mail_dir=str(tmp_path), outbox_max_attempts=1)
    empty = await outbox_health(db)
    assert empty == {
        "depth": 0,
        "due": 0,
        "oldest_due_age_seconds": None,
        "dead": 0,
        "last_heartbeat_age_seconds": None,
        "workers": 0,
        "sent": 0,
        "failed": 0,
    }
    problem = outbox_problem(empty, demo)
    assert problem is not None and "no outbox worker" in problem

    ids = await enqueue_many(db, 3, "health")
    async with db.writing() as session:
        # One waits for a later attempt, one has waited for 20 minutes.
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == ids[0])
            .values(available_at=utcnow() + timedelta(hours=1))
        )
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == ids[1])
            .values(available_at=utcnow() - timedelta(minutes=20))
        )
    health = await outbox_health(db)
    assert (health["depth"], health["due"], health["dead"]) == (3, 2, 0)
    assert health["oldest_due_age_seconds"] == pytest.approx(1200, abs=30)

    worker = OutboxWorker(db, demo)
    await worker.beat()
    health = await outbox_health(db)
    assert health["last_heartbeat_age_seconds"] is not None and health["last_heartbeat_age_seconds"] < 5
    assert health["workers"] == 1
    problem = outbox_problem(health, demo)  # alive, but the oldest due mail waited too long: stuck
    assert problem is not None and "stuck" in problem

    async with db.writing() as session:
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == ids[2])
            .values(payload='{"subject": "broken"}')  # given up at its first attempt
        )
    await worker.run_once()
    await worker.beat()
    health = await outbox_health(db)
    assert (health["depth"], health["due"], health["dead"]) == (1, 0, 1)
    assert (health["sent"], health["failed"]) == (1, 1)
    assert health["oldest_due_age_seconds"] is None
    assert outbox_problem(health, demo) is None

    async with db.writing() as session:
        await session.execute(update(WorkerHeartbeat).values(beat_at=utcnow() - timedelta(minutes=5)))
    problem = outbox_problem(await outbox_health(db), demo)
    assert problem is not None and "alive" in problem
