"""``provisio notify test`` (a test e-mail to a workspace's admins), ``provisio worker`` delivering to a
real SMTP server until SIGTERM, ``--once`` into the demo folder (and the log), and the demo's note."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from provisio.db.engine import Database
from provisio.notify.outbox import enqueue_mail
from tests.domain.test_cli import SRC
from tests.notify.conftest import SmtpRecorder, eventually
from tests.notify.helpers import all_sent


def _env(db_url: str, **extra: str) -> dict[str, str]:
    return {
        "PROVISIO_DATABASE_URL": db_url,
        "PROVISIO_BASE_URL": "https://scim.example.net",
        "PROVISIO_MAIL_FROM": "provisio <noreply@provisio.test>",
        "PROVISIO_OUTBOX_POLL_SECONDS": "0.1",
        "PROVISIO_LOG_JSON": "true",
        "PATH": "",
        "PYTHONPATH": SRC,
        **extra,
    }


async def run(db_url: str, *args: str, **extra: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "provisio.cli",
        *args,
        env=_env(db_url, **extra),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def ok(db_url: str, *args: str, **extra: str) -> Any:
    status, out, err = await run(db_url, *args, **extra)
    assert status == 0, err
    return json.loads(out) if "--json" in args else out


async def test_notify_test_and_worker_once_into_the_folder(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    folder = tmp_path / "mail"
    await ok(url, "db", "upgrade")
    await ok(
        url,
        "workspace",
        "create",
        "Acme",
        "--key",
        "acme",
        "--admin-email",
        "Ada@acme.example",
        "--admin-password",
        "correct horse battery",
    )
    await ok(
        url,
        "workspace",
        "create",
        "Other",
        "--key",
        "other",
        "--admin-email",
        "bob@other.example",
        "--admin-password",
        "correct horse battery",
    )
    await ok(url, "workspace", "create", "Nobody", "--key", "nobody")

    sent = await ok(url, "notify", "test", "acme", "--json", PROVISIO_MAIL_DIR=str(folder))
    assert sent["recipients"] == ["Ada@acme.example"] and sent["recipient_count"] == 1
    text = await ok(url, "notify", "test", "acme", PROVISIO_MAIL_DIR=str(folder))
    assert "Enqueued a test e-mail to 1 recipient of acme's failure e-mails: Ada@acme.example" in text
    assert str(folder) in text  # where the worker will put it

    status, out, _ = await run(url, "notify", "test", "nobody", "--json")
    assert status == 1 and json.loads(out)["error"]["code"] == "not_found"
    status, out, _ = await run(url, "notify", "test", "missing", "--json")
    assert status == 1 and json.loads(out)["error"]["code"] == "not_found"

    status, out, err = await run(url, "worker", "--once", PROVISIO_MAIL_DIR=str(folder))
    assert status == 0, err
    assert "Delivered 2, failed 0." in out
    files = sorted(folder.glob("*.eml"))
    assert len(files) == 2
    message = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert message["To"] == "Ada@acme.example"
    assert message["Subject"] == "provisio test e-mail for Acme"
    assert message.get_body(("html",)) is not None
    logged = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    written = [entry for entry in logged if entry.get("event") == "mail.written"]
    assert sorted(entry["path"] for entry in written) == sorted(str(f) for f in files)
    assert all("It went through the outbox" in entry["text"] for entry in written)


async def test_worker_delivers_until_sigterm(tmp_path: Path, smtp: SmtpRecorder) -> None:
    url = f"sqlite:///{tmp_path / 'worker.db'}"
    await ok(url, "db", "upgrade")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "provisio.cli",
        "worker",
        env=_env(
            url, PROVISIO_SMTP_HOST="127.0.0.1", PROVISIO_SMTP_PORT=str(smtp.port), PROVISIO_SMTP_TLS="none"
        ),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    db = Database.from_url(url)
    try:
        assert process.stdout is not None
        first = await asyncio.wait_for(process.stdout.readline(), 60)
        assert b"mail goes to SMTP 127.0.0.1:" in first
        async with db.writing() as session:
            row_id = await enqueue_mail(
                session, to=["ops@example.test"], subject="from afar", text="t", html=None
            )
        assert row_id is not None
        await eventually(lambda: all_sent(db, [row_id]))
        assert [m["Subject"] for m in smtp.messages] == ["from afar"]
    finally:
        await db.dispose()
        if process.returncode is None:
            os.kill(process.pid, signal.SIGTERM)
        _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    assert b"outbox.worker_stopped" in err


async def test_demo_says_where_mail_goes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    folder = tmp_path / "demo-mail"
    out = await ok(url, "demo", PROVISIO_MAIL_DIR=str(folder))
    assert f"E-mail:                 the log and .eml files in {folder}" in out
    data = await ok(url, "demo", "--json", PROVISIO_SMTP_HOST="smtp.example.net")
    assert data["mail"] == {"smtp_host": "smtp.example.net", "smtp_port": 587}
