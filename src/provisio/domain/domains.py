"""Verified domains: a workspace proves it owns an e-mail domain with a DNS TXT record.

The record is ``provisio-verification=<code>`` on the domain itself. A domain may be claimed by several
workspaces while unverified (so nobody can squat on it), but only one workspace can verify it. The DNS
lookup (``check_txt``) runs outside any database transaction; ``record_check`` then stores the outcome.

Members must have their identifying e-mail in a verified domain of their workspace unless the workspace
allows other domains (``check_member_email``); a workspace with no verified domain admits nobody.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.resolver
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from provisio.config import Settings
from provisio.db.models import Workspace, WorkspaceDomain, utcnow
from provisio.domain.errors import DomainError, Kind, Reason
from provisio.domain.uniqueness import flush_or_conflict
from provisio.domain.workspace_state import ensure_changeable

TXT_PREFIX = "provisio-verification="
VERIFIED_BY_DNS = "dns"
VERIFIED_BY_OPERATOR = "operator"
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
SETTINGS_HINT = "Workspace settings > Domains"


def normalise_domain(raw: str) -> str:
    """Lower-case ASCII (IDNA) form of a domain name; refuses e-mail addresses, URLs and single labels."""
    text = raw.strip().rstrip(".").lower()
    if "@" in text:
        text = text.rsplit("@", 1)[1]
    try:
        ascii_name = text.encode("idna").decode("ascii")
    except UnicodeError:
        ascii_name = ""
    labels = ascii_name.split(".")
    if len(ascii_name) > 253 or len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        raise DomainError(
            Kind.INVALID,
            f"{raw.strip()!r} is not a domain name: give the part after the @ of your e-mail addresses, "
            "such as example.com.",
        )
    if labels[-1].isdigit():
        raise DomainError(Kind.INVALID, f"{raw.strip()!r} is an IP address, not a domain name.")
    return ascii_name


def txt_record(entry: WorkspaceDomain) -> str:
    """The TXT value the admin publishes on the domain."""
    return f"{TXT_PREFIX}{entry.verification_code}"


def email_domain(email: str) -> str:
    """The domain of an address, in the ASCII form domains are stored in."""
    domain = email.rsplit("@", 1)[-1].strip().rstrip(".").lower()
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:
        return domain


async def list_domains(session: AsyncSession, workspace_id: str) -> list[WorkspaceDomain]:
    result = await session.execute(
        select(WorkspaceDomain)
        .where(WorkspaceDomain.workspace_id == workspace_id)
        .order_by(WorkspaceDomain.domain)
    )
    return list(result.scalars())


async def verified_domains(session: AsyncSession, workspace_id: str) -> list[str]:
    result = await session.execute(
        select(WorkspaceDomain.domain)
        .where(WorkspaceDomain.workspace_id == workspace_id, WorkspaceDomain.verified_at.is_not(None))
        .order_by(WorkspaceDomain.domain)
    )
    return list(result.scalars())


async def has_verified_domain(session: AsyncSession, workspace_id: str) -> bool:
    return bool(await verified_domains(session, workspace_id))


async def get_domain(session: AsyncSession, workspace: Workspace, domain: str) -> WorkspaceDomain:
    name = normalise_domain(domain)
    found = (
        await session.execute(
            select(WorkspaceDomain).where(
                WorkspaceDomain.workspace_id == workspace.id, WorkspaceDomain.domain == name
            )
        )
    ).scalar_one_or_none()
    if found is None:
        raise DomainError(Kind.NOT_FOUND, f"{name} is not a domain of workspace {workspace.name}.")
    return found


async def domain_to_verify(session: AsyncSession, workspace: Workspace, domain: str) -> WorkspaceDomain:
    """The domain a DNS check is about to be run for (``check_txt``, then ``record_check``): refused
    before the lookup when its outcome could not be recorded anyway."""
    ensure_changeable(workspace)
    return await get_domain(session, workspace, domain)


async def _verified_elsewhere(session: AsyncSession, workspace_id: str, name: str) -> bool:
    query = select(func.count()).where(
        WorkspaceDomain.domain == name,
        WorkspaceDomain.workspace_id != workspace_id,
        WorkspaceDomain.verified_at.is_not(None),
    )
    return int((await session.execute(query)).scalar_one()) > 0


def _taken(name: str) -> DomainError:
    return DomainError(
        Kind.CONFLICT,
        f"{name} is already verified by another workspace; a domain can belong to one workspace only. "
        "Remove it there first.",
    )


async def add_domain(
    session: AsyncSession, workspace: Workspace, domain: str, *, operator_verified: bool = False
) -> WorkspaceDomain:
    """Claim ``domain`` for the workspace (unverified, with a fresh code; or verified by the operator)."""
    ensure_changeable(workspace)
    name = normalise_domain(domain)
    existing = (
        await session.execute(
            select(WorkspaceDomain).where(
                WorkspaceDomain.workspace_id == workspace.id, WorkspaceDomain.domain == name
            )
        )
    ).scalar_one_or_none()
    if existing is not None:
        raise DomainError(Kind.CONFLICT, f"{name} is already a domain of workspace {workspace.name}.")
    if await _verified_elsewhere(session, workspace.id, name):
        raise _taken(name)
    entry = WorkspaceDomain(
        workspace_id=workspace.id, domain=name, verification_code=secrets.token_hex(16), created_at=utcnow()
    )
    if operator_verified:
        entry.verified_at = utcnow()
        entry.verified_by = VERIFIED_BY_OPERATOR
    session.add(entry)
    await _flush_verified(session, name)
    return entry


async def _flush_verified(session: AsyncSession, name: str) -> None:
    await flush_or_conflict(session, ("verified", "workspace_domains"), _taken(name))


@dataclass(frozen=True)
class TxtCheck:
    """What DNS answered: the TXT strings found, or why none could be read."""

    values: list[str]
    error: str | None = None


def _resolver(settings: Settings) -> dns.asyncresolver.Resolver:
    servers = [s.strip() for s in settings.dns_nameservers.split(",") if s.strip()]
    resolver = dns.asyncresolver.Resolver(configure=not servers)
    if servers:
        resolver.nameservers = servers
        resolver.port = settings.dns_port
    resolver.timeout = settings.dns_timeout_seconds
    resolver.lifetime = settings.dns_timeout_seconds
    return resolver


async def check_txt(settings: Settings, domain: str) -> TxtCheck:
    """Read the TXT records of ``domain`` (no database work: call it outside transactions)."""
    name = normalise_domain(domain)
    try:
        answer = await _resolver(settings).resolve(name, "TXT", search=False)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return TxtCheck([])
    except dns.resolver.NoResolverConfiguration:
        return TxtCheck([], "no DNS resolver is configured on the server")
    except dns.exception.Timeout:
        return TxtCheck([], "the DNS lookup timed out")
    except dns.exception.DNSException as exc:
        return TxtCheck([], f"the DNS lookup failed ({exc.__class__.__name__})")
    values = []
    for rdata in answer:
        values.append(b"".join(rdata.strings).decode("utf-8", "replace"))
    return TxtCheck(values)


async def record_check(
    session: AsyncSession, workspace: Workspace, domain: str, check: TxtCheck
) -> WorkspaceDomain:
    """Store the outcome of ``check_txt``; the domain is verified when the expected record is there.

    An unverified result keeps ``last_error`` (what the admin should fix) and is not an exception, so the
    caller's transaction still records it.
    """
    ensure_changeable(workspace)
    entry = await get_domain(session, workspace, domain)
    entry.last_checked_at = utcnow()
    if entry.verified_at is not None:
        entry.last_error = None
        return entry
    expected = txt_record(entry)
    if expected in (v.strip() for v in check.values):
        if await _verified_elsewhere(session, workspace.id, entry.domain):
            raise _taken(entry.domain)
        entry.verified_at = utcnow()
        entry.verified_by = VERIFIED_BY_DNS
        entry.last_error = None
        await _flush_verified(session, entry.domain)
        return entry
    if check.error:
        entry.last_error = f"{entry.domain} could not be checked: {check.error}. Try again in a few minutes."
    else:
        entry.last_error = (
            f"No TXT record {expected!r} was found on {entry.domain}. Add it at your DNS provider and try "
            "again; DNS changes can take a while to be visible."
        )
    await session.flush()
    return entry


async def remove_domain(session: AsyncSession, workspace: Workspace, domain: str) -> None:
    """Remove a domain; the last verified one cannot go while SCIM provisioning is on."""
    ensure_changeable(workspace)
    entry = await get_domain(session, workspace, domain)
    if entry.verified_at is not None and workspace.scim_enabled:
        others = [d for d in await verified_domains(session, workspace.id) if d != entry.domain]
        if not others:
            raise DomainError(
                Kind.INVALID,
                f"{entry.domain} is the workspace's only verified domain and SCIM provisioning needs one: "
                "verify another domain or turn SCIM off first.",
            )
    await session.delete(entry)
    await session.flush()


async def require_verified_domain_for_scim(session: AsyncSession, workspace: Workspace) -> None:
    """The one rule for "SCIM is on": SCIM can be turned on, and credentials issued, only once the
    workspace has verified a domain. Without one every create would be refused (``check_member_email``)
    while reads answered, so an identity provider's connection test would pass and then every user fail.
    """
    if not await has_verified_domain(session, workspace.id):
        raise DomainError(
            Kind.INVALID,
            f"SCIM provisioning for workspace {workspace.name} needs a verified domain: add your e-mail "
            f"domain in {SETTINGS_HINT} (or `provisio domain add {workspace.key} DOMAIN`), publish its TXT "
            "record and verify it, then turn SCIM on.",
        )


async def check_member_email(session: AsyncSession, workspace: Workspace, email: str | None) -> None:
    """Refuse a member whose identifying e-mail is outside the workspace's verified domains (400)."""
    verified = await verified_domains(session, workspace.id)
    if not verified:
        raise DomainError(
            Kind.INVALID,
            f"Workspace {workspace.name} has no verified domain yet, so it cannot accept users: verify your "
            f"e-mail domain in {SETTINGS_HINT} and retry.",
            Reason.NO_VERIFIED_DOMAIN,
        )
    if workspace.allow_other_domains:
        return
    listed = ", ".join(verified)
    if not email or "@" not in email:
        raise DomainError(
            Kind.INVALID,
            "The user has no e-mail address, and this workspace accepts only users with an e-mail in its "
            f'verified domains ({listed}). Send the user\'s work e-mail, or turn on "Allow other domains" '
            f"in {SETTINGS_HINT}.",
            Reason.NO_EMAIL,
        )
    domain = email_domain(email)
    if domain not in verified:
        raise DomainError(
            Kind.INVALID,
            f"The e-mail domain {domain} (of {email}) is not a verified domain of this workspace (verified: "
            f"{listed}). Verify {domain} in {SETTINGS_HINT}, use the user's address in a verified domain, or "
            f'turn on "Allow other domains" there.',
            Reason.DOMAIN_NOT_VERIFIED,
        )


async def set_allow_other_domains(session: AsyncSession, workspace: Workspace, allow: bool) -> None:
    """Accept members whose e-mail is outside the verified domains (a verified domain is still needed)."""
    ensure_changeable(workspace)
    workspace.allow_other_domains = allow
    await session.flush()
