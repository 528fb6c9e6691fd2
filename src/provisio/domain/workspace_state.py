"""Whether a workspace may change. A workspace the host application has disabled
(``Workspace.disabled_at``, see ``domain.workspaces.disable_workspace``) refuses every change until it is
enabled again; every service that changes a workspace asks here first. A module of its own, below
``domain.workspaces``, because that module imports some of those services."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from provisio.db.models import Workspace
from provisio.domain.errors import DomainError, Kind, Reason


def disabled_error(workspace: Workspace) -> DomainError:
    return _disabled(workspace.name)


def _disabled(name: str) -> DomainError:
    return DomainError(
        Kind.CONFLICT,
        f"Workspace {name} is disabled: nothing about it can be changed, and its identity "
        "provider's requests are refused, until it is enabled again. Its members and settings are kept.",
        Reason.WORKSPACE_DISABLED,
    )


def ensure_changeable(workspace: Workspace) -> None:
    """Refuse (a conflict, ``Reason.WORKSPACE_DISABLED``) any change to a disabled workspace."""
    if workspace.disabled_at is not None:
        raise disabled_error(workspace)


# Disabling takes the workspace row FOR UPDATE (``domain.workspaces.disable_workspace``), which waits for
# every KEY SHARE lock and is waited for by each: a writer that holds one committed before the disable,
# one that asks after sees the disable. KEY SHARE, not SHARE, because it does not conflict with the
# NO KEY UPDATE lock admission takes on the same row (``seats.lock_workspace``), so no lock order changes.


async def lock_changeable(session: AsyncSession, workspace_id: str) -> None:
    """Refuse like ``ensure_changeable``, from the workspace row as it is now, and keep it from being
    disabled until the caller's transaction ends.

    Nothing to do on SQLite: a write transaction holds the database's one write lock from its start,
    so a workspace read in it (as authentication and the console read it) is still current."""
    if session.get_bind().dialect.name != "postgresql":
        return
    row = (
        await session.execute(
            select(Workspace.name, Workspace.disabled_at)
            .where(Workspace.id == workspace_id)
            .with_for_update(read=True, key_share=True)
        )
    ).first()
    if row is None:
        raise DomainError(Kind.NOT_FOUND, "The workspace no longer exists.")
    if row.disabled_at is not None:
        raise _disabled(row.name)


def changeable(workspace_id: Any) -> ColumnElement[bool]:
    """A condition for a one-statement write: the workspace is not disabled, with the lock of
    ``lock_changeable`` (``workspace_id`` is a bound parameter or a column)."""
    enabled = (
        select(Workspace.id)
        .where(Workspace.id == workspace_id, Workspace.disabled_at.is_(None))
        .with_for_update(read=True, key_share=True)
    )
    return exists(enabled)
