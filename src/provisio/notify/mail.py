"""E-mail delivery: SMTP (aiosmtplib), or, without an SMTP server, the log and a folder of .eml files.

Every message's ``Message-ID`` is made from its outbox row id and its ``Date`` from when it was
enqueued, so a message delivered twice (at least once: see ``provisio.notify.worker``) is the same
message both times, and receivers that deduplicate by Message-ID show it once.
"""

from __future__ import annotations

import asyncio
import os
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Protocol

import aiosmtplib
import structlog

from provisio.config import Settings
from provisio.notify.outbox import Claimed

log = structlog.get_logger("provisio.notify.mail")


class DeliveryError(Exception):
    """A failed attempt; ``permanent`` when trying again cannot help (the server refused the message)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class Sender(Protocol):
    """Delivers one claimed outbox row, or raises (``DeliveryError`` or anything else: temporary)."""

    async def __call__(self, item: Claimed) -> None: ...


def message_id(row_id: str, mail_from: str) -> str:
    domain = parseaddr(mail_from)[1].rpartition("@")[2] or "provisio.invalid"
    return f"<outbox.{row_id}@{domain}>"


def build_message(settings: Settings, item: Claimed) -> EmailMessage:
    """The message of a row; a payload that makes none fails for good (no attempt can do better)."""
    try:
        return _build(settings, item)
    except (KeyError, TypeError, ValueError) as exc:
        raise DeliveryError(f"not a mail payload: {exc!r}", permanent=True) from exc


def _build(settings: Settings, item: Claimed) -> EmailMessage:
    payload = item.payload
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = ", ".join(payload["to"])
    message["Subject"] = payload["subject"]
    message["Date"] = format_datetime(item.created_at)
    message["Message-ID"] = message_id(item.id, settings.mail_from)
    # RFC 3834: sent by a program, so vacation responders do not answer it.
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(payload["text"])
    if payload.get("html"):
        message.add_alternative(payload["html"], subtype="html")
    return message


def _refusal(exc: aiosmtplib.SMTPException) -> DeliveryError:
    """A 5xx refusal of the recipients or of the message is final; anything else (a 4xx, a login the
    server refused, a lost connection) may pass later, so it is retried."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [refused.code for refused in exc.recipients]
        detail = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
        return DeliveryError(f"recipients refused: {detail}", permanent=all(500 <= c < 600 for c in codes))
    if isinstance(exc, aiosmtplib.SMTPDataError):
        return DeliveryError(f"message refused: {exc.code} {exc.message}", permanent=500 <= exc.code < 600)
    if isinstance(exc, aiosmtplib.SMTPConnectError | aiosmtplib.SMTPServerDisconnected):
        return DeliveryError(f"SMTP connection failed: {exc}")
    if isinstance(exc, aiosmtplib.SMTPTimeoutError):
        return DeliveryError(f"SMTP server did not answer in time: {exc}")
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return DeliveryError(f"SMTP {exc.code} {exc.message}")
    return DeliveryError(f"SMTP: {exc}")


class SmtpSender:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def __call__(self, item: Claimed) -> None:
        settings = self.settings
        message = build_message(settings, item)
        timeout = settings.smtp_timeout_seconds
        try:
            # aiosmtplib's timeout bounds each step; this bounds the whole conversation.
            async with asyncio.timeout(timeout):
                errors, _ = await aiosmtplib.send(
                    message,
                    hostname=settings.smtp_host,
                    port=settings.smtp_port,
                    username=settings.smtp_username or None,
                    password=settings.smtp_password or None,
                    use_tls=settings.smtp_tls == "tls",
                    start_tls=settings.smtp_tls == "starttls",
                    timeout=timeout,
                )
        except aiosmtplib.SMTPException as exc:
            raise _refusal(exc) from exc
        except TimeoutError as exc:
            raise DeliveryError(f"SMTP server did not answer within {timeout:g} s") from exc
        except OSError as exc:
            raise DeliveryError(f"SMTP connection failed: {exc}") from exc
        if errors:
            # Accepted for the others: sending again would repeat it to them, so it is not retried.
            log.warning(
                "mail.some_recipients_refused",
                outbox_id=item.id,
                refused={address: f"{r.code} {r.message}" for address, r in errors.items()},
            )
        log.info("mail.sent", outbox_id=item.id, message_id=message["Message-ID"], to=item.payload["to"])


def mail_path(folder: Path, item: Claimed) -> Path:
    # Named by the row: a second delivery of the same row rewrites the same file.
    return folder / f"{item.created_at:%Y%m%dT%H%M%S}-{item.id}.eml"


class FolderSender:
    """Development and demo: no SMTP server, so each mail goes to the log and into ``mail_dir``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.folder = Path(settings.mail_dir)

    async def __call__(self, item: Claimed) -> None:
        message = build_message(self.settings, item)
        path = mail_path(self.folder, item)
        await asyncio.to_thread(_write_atomically, path, message.as_bytes())
        log.info(
            "mail.written",
            outbox_id=item.id,
            path=str(path),
            to=item.payload["to"],
            subject=item.payload["subject"],
            text=item.payload["text"],
        )


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(data)
    os.replace(partial, path)  # a reader of the folder never sees half a message


def mail_sender(settings: Settings) -> Sender:
    return SmtpSender(settings) if settings.smtp_host else FolderSender(settings)
