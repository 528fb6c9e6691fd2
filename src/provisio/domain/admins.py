"""Workspace admins: console accounts (e-mail + argon2 password) and which workspaces they administer."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import anyio.to_thread
from pwdlib import PasswordHash
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from provisio.db.models import Admin, AdminPasswordToken, ConsoleSession, Workspace, WorkspaceAdmin
from provisio.domain import domains
from provisio.domain.errors import DomainError, Kind

MIN_PASSWORD_LENGTH = 10

_hasher = PasswordHash.recommended()  # argon2id
# Verified against when the e-mail is unknown, so a miss costs as much time as a wrong password.
_DUMMY_HASH = _hasher.hash("provisio-timing-equaliser")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def normalise_email(email: str) -> str:
    return email.strip().lower()


# Characters that would make one address read as several, or as a display name, in a mail header.
_NOT_IN_ADDRESS = frozenset(',;<>"()[]\\')


def _odd(character: str) -> bool:
    # Control and format characters (NUL among them, which PostgreSQL cannot store) and any whitespace.
    return character.isspace() or unicodedata.category(character) in ("Cc", "Cf", "Cs", "Co", "Cn")


def normalise_address(raw: str) -> str:
    """One e-mail address, stripped; refused unless it has a local part and a valid domain, and no
    whitespace, control character or separator inside."""
    address = raw.strip()
    local, at, domain = address.rpartition("@")
    invalid = DomainError(Kind.INVALID, f"{address[:320]!r} is not an e-mail address: use name@example.com.")
    if (
        not (local and at)
        or "@" in local
        or len(address) > 320
        or any(_odd(c) or c in _NOT_IN_ADDRESS for c in address)
    ):
        raise invalid
    try:
        domains.normalise_domain(domain)
    except DomainError:
        raise invalid from None
    return address


def check_email(email: str) -> None:
    normalise_address(email)


def check_password_length(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise DomainError(Kind.INVALID, f"The password must have at least {MIN_PASSWORD_LENGTH} characters.")


def _check_new_credentials(email: str, password: str) -> None:
    check_email(email)
    check_password_length(password)


async def get_admin_by_email(session: AsyncSession, email: str) -> Admin | None:
    result = await session.execute(select(Admin).where(Admin.email_lower == normalise_email(email)))
    return result.scalar_one_or_none()


async def create_admin(session: AsyncSession, email: str, password: str) -> Admin:
    _check_new_credentials(email, password)
    if await get_admin_by_email(session, email):
        raise DomainError(Kind.CONFLICT, f"An admin with e-mail {email.strip()!r} already exists.")
    admin = Admin(
        email=email.strip(), email_lower=normalise_email(email), password_hash=hash_password(password)
    )
    session.add(admin)
    await session.flush()
    return admin


async def set_password(session: AsyncSession, admin: Admin, password: str) -> None:
    _check_new_credentials(admin.email, password)
    await store_password_hash(session, admin, hash_password(password))


async def store_password_hash(session: AsyncSession, admin: Admin, password_hash: str) -> None:
    """A new password: every console session of the admin ends in the same transaction, so a browser
    signed in with the old password (perhaps someone else's) is signed out, and a pending set-password
    link is spent."""
    admin.password_hash = password_hash
    await session.execute(delete(ConsoleSession).where(ConsoleSession.admin_id == admin.id))
    await session.execute(delete(AdminPasswordToken).where(AdminPasswordToken.admin_id == admin.id))
    await session.flush()


async def grant_workspace(
    session: AsyncSession, admin: Admin, workspace: Workspace, *, added_by: str | None = None
) -> None:
    """Make ``admin`` an admin of ``workspace`` (idempotent)."""
    if not await is_workspace_admin(session, admin.id, workspace.id):
        session.add(WorkspaceAdmin(admin_id=admin.id, workspace_id=workspace.id, added_by=added_by))
        await session.flush()


async def ensure_admin(
    session: AsyncSession, workspace: Workspace, email: str, password: str, *, added_by: str | None = None
) -> Admin:
    """Create the admin (or reset an existing one's password, which ends their sessions) and give them
    ``workspace``."""
    admin = await get_admin_by_email(session, email)
    if admin is None:
        admin = await create_admin(session, email, password)
    else:
        await set_password(session, admin, password)
    await grant_workspace(session, admin, workspace, added_by=added_by)
    return admin


async def is_workspace_admin(session: AsyncSession, admin_id: str, workspace_id: str) -> bool:
    result = await session.execute(
        select(WorkspaceAdmin.admin_id).where(
            WorkspaceAdmin.admin_id == admin_id, WorkspaceAdmin.workspace_id == workspace_id
        )
    )
    return result.first() is not None


async def workspace_admin_emails(session: AsyncSession, workspace_id: str) -> list[str]:
    """The e-mail addresses of the admins who are told about the workspace, sorted: those who can sign
    in. An admin who has not set a password yet could not act on a notice, so gets none."""
    result = await session.execute(
        select(Admin.email)
        .join(WorkspaceAdmin, WorkspaceAdmin.admin_id == Admin.id)
        .where(WorkspaceAdmin.workspace_id == workspace_id, Admin.password_hash.is_not(None))
        .order_by(Admin.email_lower)
    )
    return list(result.scalars())


async def workspaces_of(session: AsyncSession, admin_id: str) -> list[Workspace]:
    result = await session.execute(
        select(Workspace)
        .join(WorkspaceAdmin, WorkspaceAdmin.workspace_id == Workspace.id)
        .where(WorkspaceAdmin.admin_id == admin_id)
        .order_by(Workspace.name)
    )
    return list(result.scalars())


@dataclass(frozen=True)
class StoredCredentials:
    admin_id: str
    password_hash: str


async def stored_credentials(session: AsyncSession, email: str) -> StoredCredentials | None:
    """None for an unknown e-mail, and for an admin who has not set a password yet."""
    row = (
        await session.execute(
            select(Admin.id, Admin.password_hash).where(Admin.email_lower == normalise_email(email))
        )
    ).first()
    return StoredCredentials(row.id, row.password_hash) if row and row.password_hash else None


async def check_password(stored: StoredCredentials | None, password: str) -> tuple[bool, str | None]:
    """Whether ``password`` is right, and a new hash when the stored one uses outdated parameters.

    Argon2 takes a good fraction of a second of CPU by design: it runs in a worker thread so the event
    loop keeps serving, and callers hold no database transaction meanwhile. An unknown e-mail (None)
    costs as much as a wrong password.
    """
    if stored is None:
        await anyio.to_thread.run_sync(_hasher.verify, password, _DUMMY_HASH)
        return False, None
    valid, new_hash = await anyio.to_thread.run_sync(
        _hasher.verify_and_update, password, stored.password_hash
    )
    return valid, new_hash if valid else None


async def replace_password_hash(session: AsyncSession, stored: StoredCredentials, new_hash: str) -> None:
    """Store a rehashed password, unless the password was changed meanwhile."""
    await session.execute(
        update(Admin)
        .where(Admin.id == stored.admin_id, Admin.password_hash == stored.password_hash)
        .values(password_hash=new_hash)
    )
