"""What the Domains page shows, gathered from the domain services, and how a verification reads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from provisio.console.workspace_forms import WORKSPACE
from provisio.db.models import Workspace, WorkspaceDomain
from provisio.domain import domains as domain_service
from provisio.domain.errors import DomainError

PAGE = WORKSPACE + "/settings/domains"

# notice key -> (alert style, message; {domain} is filled in only with one of the workspace's domains)
NOTICES = {
    "added": ("success", "{domain} added. Publish its TXT record at your DNS provider, then click Verify."),
    "removed": ("success", "{domain} removed."),
    "allow-on": ("success", "Members with an e-mail address in any domain are now accepted."),
    "allow-off": ("success", "Only members with an e-mail address in a verified domain are now accepted."),
    "verify-verified": (
        "success",
        "{domain} is verified. Members with an e-mail address at {domain} can be provisioned.",
    ),
    "verify-not-found": (
        "warning",
        "{domain} is not verified yet: no provisio-verification TXT record was found on it. Add the record "
        "shown below at your DNS provider, wait for it to be visible (minutes, sometimes hours), then click "
        "Verify again.",
    ),
    "verify-wrong-record": (
        "error",
        "{domain} is not verified: a provisio-verification TXT record was found on it, but its code is not "
        "this workspace's. Replace its value with the record shown below, then click Verify again.",
    ),
    "verify-lookup-failed": (
        "warning",
        "{domain} could not be checked because the DNS lookup failed. Try again in a few minutes.",
    ),
}


def verification_outcome(entry: WorkspaceDomain, check: domain_service.TxtCheck) -> str:
    """How to read ``record_check``'s result: verified, not-found, wrong-record or lookup-failed."""
    if entry.verified_at is not None:
        return "verified"
    if check.error:
        return "lookup-failed"
    if any(v.strip().startswith(domain_service.TXT_PREFIX) for v in check.values):
        return "wrong-record"
    return "not-found"


@dataclass(frozen=True)
class DomainRow:
    domain: str
    verified: bool
    verified_at: datetime | None
    by_operator: bool
    txt_record: str
    last_checked_at: datetime | None
    last_error: str | None


def _row(entry: WorkspaceDomain) -> DomainRow:
    return DomainRow(
        domain=entry.domain,
        verified=entry.verified_at is not None,
        verified_at=entry.verified_at,
        by_operator=entry.verified_by == domain_service.VERIFIED_BY_OPERATOR,
        txt_record=domain_service.txt_record(entry),
        last_checked_at=entry.last_checked_at,
        last_error=entry.last_error,
    )


def _well_formed(domain: str | None) -> bool:
    try:
        return bool(domain) and domain_service.normalise_domain(domain or "") == domain
    except DomainError:
        return False


async def domains_page_context(
    session: AsyncSession,
    workspace: Workspace,
    *,
    notice: str | None = None,
    domain: str | None = None,
    error: str | None = None,
    error_field: str | None = None,
    values: dict[str, Any] | None = None,
) -> dict[str, Any]:
    rows = [_row(e) for e in await domain_service.list_domains(session, workspace.id)]
    names = {r.domain for r in rows}
    flash = NOTICES.get(notice or "")
    message = None
    if flash:
        # Only a domain of this workspace is named; a removed one no longer is, so it is named when it
        # is at least a well-formed domain name.
        shown = domain if domain in names or (notice == "removed" and _well_formed(domain)) else None
        if "{domain}" not in flash[1] or shown:
            message = (flash[0], flash[1].format(domain=shown))
    return {
        "workspace": workspace,
        "nav_current": "domains",
        "domains": rows,
        "has_verified": any(r.verified for r in rows),
        "notice": message,
        "error": error,
        "error_field": error_field,
        "values": values or {},
        "page_path": PAGE.format(workspace_key=workspace.key),
    }
