"""Workspace admins: console accounts (e-mail + argon2 password) and which workspaces they administer."""

from __future__ import annotations

from dataclasses import dataclass

import anyio.to_thread
from pwdlib import PasswordHash
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from provisio.db.models import Admin, Workspace, WorkspaceAdmin
from provisio.domain.errors import DomainError, Kind

MIN_PASSWORD_LENGTH = 10

_hasher = PasswordHash.recommended()  # argon2id
# Verified against when the e-mail is unknown, so a miss costs as much time as a wrong password.
_DUMMY_HASH = _hasher.hash("provisio-timing-equaliser")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def normalise_email(email: str) -> str:
    return email.strip().lower()


def _check_new_credentials(email: str, password: str) -> None:
    local, at, domain = email.strip().partition("@")
    if not (local and at and "." in domain):
        raise DomainError(Kind.INVALID, f"{email!r} is not an e-mail address.")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise DomainError(Kind.INVALID, f"The password must have at least {MIN_PASSWORD_LENGTH} characters.")


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
    admin.password_hash = hash_password(password)
    await session.flush()


async def grant_workspace(session: AsyncSession, admin: Admin, workspace: Workspace) -> None:
    """Make ``admin`` an admin of ``workspace`` (idempotent)."""
    if not await is_workspace_admin(session, admin.id, workspace.id):
        session.add(WorkspaceAdmin(admin_id=admin.id, workspace_id=workspace.id))
        await session.flush()


async def ensure_admin(session: AsyncSession, workspace: Workspace, email: str, password: str) -> Admin:
    """Create the admin (or reset an existing one's password) and give them ``workspace``."""
    admin = await get_admin_by_email(session, email)
    if admin is None:
        admin = await create_admin(session, email, password)
    else:
        await set_password(session, admin, password)
    await grant_workspace(session, admin, workspace)
    return admin


async def is_workspace_admin(session: AsyncSession, admin_id: str, workspace_id: str) -> bool:
    result = await session.execute(
        select(WorkspaceAdmin.admin_id).where(
            WorkspaceAdmin.admin_id == admin_id, WorkspaceAdmin.workspace_id == workspace_id
        )
    )
    return result.first() is not None


async def workspace_admin_emails(session: AsyncSession, workspace_id: str) -> list[str]:
    """The e-mail addresses of a workspace's admins (who is told about the workspace), sorted."""
    result = await session.execute(
        select(Admin.email)
        .join(WorkspaceAdmin, WorkspaceAdmin.admin_id == Admin.id)
        .where(WorkspaceAdmin.workspace_id == workspace_id)
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
    row = (
        await session.execute(
            select(Admin.id, Admin.password_hash).where(Admin.email_lower == normalise_email(email))
        )
    ).first()
    return StoredCredentials(row.id, row.password_hash) if row else None


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
