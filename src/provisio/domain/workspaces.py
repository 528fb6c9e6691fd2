"""Workspaces: creation (with a URL-safe key) and lookup."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from provisio.db.models import Workspace
from provisio.domain.errors import DomainError, Kind
from provisio.domain.host_events import CLI_ACTOR, Actor
from provisio.domain.seats import OPERATOR_CLI, initial_purchase


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


async def list_workspaces(session: AsyncSession, *, after: str = "", limit: int) -> list[Workspace]:
    """Up to ``limit`` workspaces by key (unique, so a keyset on it neither skips nor repeats one)."""
    query = select(Workspace).order_by(Workspace.key).limit(limit)
    if after:
        query = query.where(Workspace.key > after)
    return list((await session.execute(query)).scalars())


async def rename(session: AsyncSession, workspace: Workspace, name: str) -> None:
    name = name.strip()
    if not name:
        raise DomainError(Kind.INVALID, "A workspace needs a name.")
    if len(name) > 200:
        raise DomainError(Kind.INVALID, "Keep the workspace name under 200 characters.")
    workspace.name = name
    await session.flush()
