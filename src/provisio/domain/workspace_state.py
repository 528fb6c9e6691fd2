"""Whether a workspace may change. A workspace the host application has disabled
(``Workspace.disabled_at``, see ``domain.workspaces.disable_workspace``) refuses every change until it is
enabled again; every service that changes a workspace asks here first. A module of its own, below
``domain.workspaces``, because that module imports some of those services."""

from __future__ import annotations

from provisio.db.models import Workspace
from provisio.domain.errors import DomainError, Kind, Reason


def disabled_error(workspace: Workspace) -> DomainError:
    return DomainError(
        Kind.CONFLICT,
        f"Workspace {workspace.name} is disabled: nothing about it can be changed, and its identity "
        "provider's requests are refused, until it is enabled again. Its members and settings are kept.",
        Reason.WORKSPACE_DISABLED,
    )


def ensure_changeable(workspace: Workspace) -> None:
    """Refuse (a conflict, ``Reason.WORKSPACE_DISABLED``) any change to a disabled workspace."""
    if workspace.disabled_at is not None:
        raise disabled_error(workspace)
