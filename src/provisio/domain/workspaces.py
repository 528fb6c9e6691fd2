"""Workspaces: creation (with a URL-safe key), lookup, and disabling.

A workspace the host application disables (its customer suspended or gone) keeps everything: members,
settings, credentials, the log. While it is disabled SCIM refuses every request of its identity provider
(``provisio.scim.auth``), the OAuth endpoints issue its clients no code or token (``provisio.oauth``),
and every service that changes it refuses (``domain.workspace_state.ensure_changeable``); console admins
still sign in and read. Enabling it restores exactly what was there, ``scim_enabled`` included."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from provisio.db.models import Workspace, utcnow
from provisio.domain.errors import DomainError, Kind
from provisio.domain.host_events import CLI_ACTOR, Actor
from provisio.domain.seats import OPERATOR_CLI, initial_purchase
from provisio.domain.workspace_state import ensure_changeable


class WorkspaceRef(Protocol):
    """What member services need of a workspace: its id. A ``Workspace`` row, or the ``WorkspaceIdentity``
    an authenticated SCIM request carries."""

    @property
    def id(self) -> str: ...


@dataclass(frozen=True)
class WorkspaceIdentity:
    """A workspace as SCIM authentication reads it: plain columns, no ORM object to load per request."""

    id: str
    key: str
    scim_enabled: bool
    # The kept count of live members, read in the same statement as the credential: an unfiltered
    # list's total with no query of its own. Never a basis for seat accounting (that locks and re-reads).
    member_count: int
    disabled_at: datetime | None  # read by the same statement: refusing a disabled workspace costs nothing

    @property
    def disabled(self) -> bool:
        return self.disabled_at is not None


KEY_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def slugify(name: str) -> str:
    """A key from a display name: lower-case letters, digits and single hyphens (never ``_``)."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug[:40].strip("-") or "workspace"


async def create_workspace(
    session: AsyncSession,
    name: str,
    *,
    key: str | None = None,
    seats: int = 0,
    actor: str = OPERATOR_CLI,
    by: Actor = CLI_ACTOR,
) -> Workspace:
    """A new workspace with SCIM off (it needs a verified domain first); its ``seats`` are its first
    ledger entry (and ``seats.purchased`` event), bought by ``actor`` (``by``). Without ``key``, one is
    made from the name (with a random suffix when taken: compare ``workspace.key`` with
    ``slugify(name)``)."""
    name = name.strip()
    if not name:
        raise DomainError(Kind.INVALID, "A workspace needs a name.")
    if seats < 0:
        raise DomainError(Kind.INVALID, "The seat count cannot be negative.")
    if key is not None:
        if not KEY_RE.match(key):
            raise DomainError(
                Kind.INVALID,
                f"Workspace key {key!r} is not URL-safe: use 1-63 lower-case letters, digits and hyphens.",
            )
        if await get_workspace(session, key):
            raise DomainError(Kind.CONFLICT, f"A workspace with key {key!r} already exists.")
    else:
        key = slugify(name)
        while await get_workspace(session, key):
            key = f"{slugify(name)}-{secrets.token_hex(3)}"
    workspace = Workspace(name=name, key=key, seats_purchased=0, scim_enabled=False)
    session.add(workspace)
    await session.flush()
    await initial_purchase(session, workspace, seats, actor=actor, by=by)
    return workspace


async def get_workspace(session: AsyncSession, key: str) -> Workspace | None:
    result = await session.execute(select(Workspace).where(Workspace.key == key))
    return result.scalar_one_or_none()


async def require_workspace(session: AsyncSession, key: str) -> Workspace:
    workspace = await get_workspace(session, key)
    if workspace is None:
        raise DomainError(Kind.NOT_FOUND, f"No workspace with key {key!r}.")
    return workspace


async def list_workspaces(
    session: AsyncSession, *, after: str = "", limit: int, disabled: bool | None = None
) -> list[Workspace]:
    """Up to ``limit`` workspaces by key (unique, so a keyset on it neither skips nor repeats one); only
    the disabled (``disabled=True``) or the enabled ones (``False``) when asked."""
    query = select(Workspace).order_by(Workspace.key).limit(limit)
    if after:
        query = query.where(Workspace.key > after)
    if disabled is not None:
        since = Workspace.disabled_at
        query = query.where(since.is_not(None) if disabled else since.is_(None))
    return list((await session.execute(query)).scalars())


async def disable_workspace(session: AsyncSession, workspace: Workspace) -> bool:
    """Disable the workspace (see the module's docstring); returns whether it was enabled. Disabling a
    disabled workspace changes nothing, not even since when it is disabled, however many callers race."""
    # FOR UPDATE, stronger than the UPDATE's own lock: it waits for the writers that checked the
    # workspace is changeable (``workspace_state.lock_changeable``) and are still running.
    await session.execute(select(Workspace.id).where(Workspace.id == workspace.id).with_for_update())
    result = await session.execute(
        update(Workspace)
        .where(Workspace.id == workspace.id, Workspace.disabled_at.is_(None))
        .values(disabled_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    await session.refresh(workspace, ["disabled_at"])
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def enable_workspace(session: AsyncSession, workspace: Workspace) -> bool:
    """Enable the workspace again, as it was when it was disabled; returns whether it was disabled."""
    result = await session.execute(
        update(Workspace)
        .where(Workspace.id == workspace.id, Workspace.disabled_at.is_not(None))
        .values(disabled_at=None)
        .execution_options(synchronize_session=False)
    )
    await session.refresh(workspace, ["disabled_at"])
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def rename(session: AsyncSession, workspace: Workspace, name: str) -> None:
    ensure_changeable(workspace)
    name = name.strip()
    if not name:
        raise DomainError(Kind.INVALID, "A workspace needs a name.")
    if len(name) > 200:
        raise DomainError(Kind.INVALID, "Keep the workspace name under 200 characters.")
    workspace.name = name
    await session.flush()
