"""Workspace settings > Advanced > SCIM: the toggle, the authentication method, licence auto-charge,
and the URLs an identity provider needs."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from provisio.config import Settings
from provisio.db.models import Workspace
from provisio.domain import host_events
from provisio.domain.domains import require_verified_domain_for_scim
from provisio.domain.errors import DomainError, Kind
from provisio.domain.host_events import Actor
from provisio.domain.scim_credentials import revoke_bearer_tokens, revoke_oauth
from provisio.domain.scim_methods import ScimMethod
from provisio.domain.workspace_state import ensure_changeable

MAX_SEATS_LIMIT = 1_000_000


@dataclass(frozen=True)
class ScimUrls:
    authorization_url: str
    tenant_url: str
    token_url: str


def scim_urls(settings: Settings, workspace_key: str) -> ScimUrls:
    return ScimUrls(
        authorization_url=settings.authorization_url(workspace_key),
        tenant_url=settings.tenant_url(workspace_key),
        token_url=settings.token_url,
    )


def parse_method(value: str) -> ScimMethod:
    try:
        return ScimMethod(value)
    except ValueError:
        choices = ", ".join(m.value for m in ScimMethod)
        raise DomainError(Kind.INVALID, f"Unknown authentication method {value!r}: use {choices}.") from None


async def set_enabled(session: AsyncSession, workspace: Workspace, enabled: bool, *, by: Actor) -> bool:
    """Turning SCIM off refuses every credential at once (members are kept); turning it on restores them.
    A change is told to the host (``workspace.scim_enabled`` / ``…scim_disabled``, ``by`` whom); returns
    whether it was one.

    SCIM can be turned on only once the workspace has a verified domain: its members
    could not be provisioned otherwise."""
    ensure_changeable(workspace)
    if enabled:
        await require_verified_domain_for_scim(session, workspace)
    # Conditional, so that of two concurrent identical changes one finds nothing to change (PostgreSQL
    # re-checks the condition once the first commits) and the host hears of it once.
    result = await session.execute(
        update(Workspace)
        .where(Workspace.id == workspace.id, Workspace.scim_enabled != enabled)
        .values(scim_enabled=enabled)
        .execution_options(synchronize_session=False)
    )
    set_committed_value(workspace, "scim_enabled", enabled)
    changed = int(getattr(result, "rowcount", 0) or 0) > 0
    if changed:
        await host_events.emit(
            session,
            type=host_events.WORKSPACE_SCIM_ENABLED if enabled else host_events.WORKSPACE_SCIM_DISABLED,
            workspace_id=workspace.id,
            actor=by,
            data={"scim_enabled": enabled, "method": workspace.scim_auth_method},
        )
    return changed


async def set_method(session: AsyncSession, workspace: Workspace, method: ScimMethod) -> bool:
    """Switch the method; the previous method's credentials and tokens stop working at once."""
    ensure_changeable(workspace)
    if workspace.scim_auth_method == method.value:
        return False
    await revoke_oauth(session, workspace.id)
    await revoke_bearer_tokens(session, workspace.id)
    workspace.scim_auth_method = method.value
    await session.flush()
    return True


async def set_license(
    session: AsyncSession, workspace: Workspace, *, auto_charge: bool, max_seats: int | None
) -> None:
    """Stored here; enforced when seats are taken (the seats feature)."""
    ensure_changeable(workspace)
    if max_seats is not None and not 0 <= max_seats <= MAX_SEATS_LIMIT:
        raise DomainError(Kind.INVALID, f"The maximum seat count must be between 0 and {MAX_SEATS_LIMIT}.")
    workspace.license_auto_charge = auto_charge
    workspace.license_max_seats = max_seats
    await session.flush()
