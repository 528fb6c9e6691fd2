"""The admins of a workspace: who they are, adding one by e-mail, removing one, and the one-time link with
which an admin added by e-mail sets their password.

A workspace always keeps at least one admin. Adding and removing lock the workspace row first
(``seats.lock_workspace``: ``FOR NO KEY UPDATE`` on PostgreSQL; on SQLite every write transaction is
``BEGIN IMMEDIATE``), so the count read afterwards is exact under READ COMMITTED: two admins removing
each other at once are queued, and the second sees that only one is left and is refused.

A set-password link carries a 256-bit random token; only its SHA-256 is stored (``hashing``), it expires
after ``INVITE_TTL``, works once, and a newer invite of the same admin replaces it. Whoever holds the
link chooses the password and so gets every workspace of the account: the link is e-mailed to the
account's address, and the inviter is shown it too only when the account is new or administers this
workspace alone (``add_admin``).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import anyio.to_thread
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from provisio.db.models import Admin, AdminPasswordToken, Workspace, WorkspaceAdmin, utcnow
from provisio.domain import admins as admin_service
from provisio.domain.errors import DomainError, Kind
from provisio.domain.hashing import hash_secret
from provisio.domain.seats import lock_workspace
from provisio.domain.workspace_state import ensure_changeable

INVITE_TTL = timedelta(hours=72)
SET_PASSWORD_PATH = "/console/set-password/"
INVALID_LINK = (
    "This set-password link does not work: it has expired (links last 72 hours), it has been used "
    "already, or a newer invite replaced it. Ask an admin of your workspace to add you again."
)


def set_password_url(public_base: str, token: str) -> str:
    return public_base.rstrip("/") + SET_PASSWORD_PATH + token


@dataclass(frozen=True)
class WorkspaceAdminRow:
    admin_id: str
    email: str
    since: datetime
    added_by: str | None  # None: granted before it was recorded
    has_password: bool


async def list_admins(session: AsyncSession, workspace_id: str) -> list[WorkspaceAdminRow]:
    rows = await session.execute(
        select(
            Admin.id,
            Admin.email,
            Admin.password_hash.is_not(None).label("has_password"),
            WorkspaceAdmin.created_at,
            WorkspaceAdmin.added_by,
        )
        .join(WorkspaceAdmin, WorkspaceAdmin.admin_id == Admin.id)
        .where(WorkspaceAdmin.workspace_id == workspace_id)
        .order_by(WorkspaceAdmin.created_at, Admin.email_lower)
    )
    return [WorkspaceAdminRow(r.id, r.email, r.created_at, r.added_by, bool(r.has_password)) for r in rows]


async def workspace_admin(
    session: AsyncSession, workspace_id: str, *, admin_id: str = "", email: str = ""
) -> Admin:
    """An admin of this workspace, by id or e-mail; any other (or unknown) is not found."""
    query = select(Admin).join(WorkspaceAdmin, WorkspaceAdmin.admin_id == Admin.id)
    query = query.where(WorkspaceAdmin.workspace_id == workspace_id)
    if not (admin_id.isprintable() and email.isprintable()):  # NUL and the like name nobody
        raise DomainError(Kind.NOT_FOUND, "That account is not an admin of this workspace.")
    if admin_id:
        query = query.where(Admin.id == admin_id)
    elif email:
        query = query.where(Admin.email_lower == admin_service.normalise_email(email))
    else:
        raise DomainError(Kind.NOT_FOUND, "No admin was named.")
    admin = (await session.execute(query)).scalar_one_or_none()
    if admin is None:
        raise DomainError(
            Kind.NOT_FOUND, f"{email.strip() or 'That account'} is not an admin of this workspace."
        )
    return admin


@dataclass(frozen=True)
class AddedAdmin:
    admin_id: str
    email: str
    created: bool  # a new account
    has_password: bool
    # The set-password token of an account without a password (a newer one replaces the older), to be
    # e-mailed to the account's address; only its hash is kept.
    token: str | None
    # Whether the inviter may see the link too: only for a new account, or one without a password
    # whose only workspace is this one.
    shown: bool


async def add_admin(session: AsyncSession, workspace: Workspace, email: str, *, actor: str) -> AddedAdmin:
    """Make the account with ``email`` an admin of ``workspace``. An account with a password is only
    granted the workspace. One without a password gets a new set-password token, which replaces the
    older; the inviter sees it only when the account is new or this is its only workspace, since an
    admin of this workspace must not hold the password of an account that another workspace invited
    (nor the inviter of that one a link into this workspace: the older link stops working)."""
    ensure_changeable(workspace)
    admin_service.check_email(email)
    locked = await lock_workspace(session, workspace.id)
    ensure_changeable(locked)
    admin = await _locked_account(session, email)
    created = admin is None
    if admin is None:
        admin = Admin(
            email=email.strip(), email_lower=admin_service.normalise_email(email), password_hash=None
        )
        session.add(admin)
        await session.flush()
    elif admin.password_hash is not None and await admin_service.is_workspace_admin(
        session, admin.id, locked.id
    ):
        raise DomainError(Kind.CONFLICT, f"{admin.email} is already an admin of {locked.name}.")
    await admin_service.grant_workspace(session, admin, locked, added_by=actor)
    token, shown = None, False
    if admin.password_hash is None:
        token = await _issue_token(session, admin, actor)
        workspaces = await admin_service.workspaces_of(session, admin.id)
        shown = created or [w.id for w in workspaces] == [locked.id]
    return AddedAdmin(
        admin_id=admin.id,
        email=admin.email,
        created=created,
        has_password=admin.password_hash is not None,
        token=token,
        shown=shown,
    )


async def ensure_admin(session: AsyncSession, workspace: Workspace, email: str, *, actor: str) -> AddedAdmin:
    """The account with ``email``, made an admin of ``workspace`` unless it is one already: created
    without a password when there is none (``created``). Unlike ``add_admin`` no set-password link is
    made, and an existing one is left alone: this is how a sign-in link (``portal_links``) vouches for
    a person whom the host application has authenticated, so an invite e-mailed earlier keeps working.
    The same locks as ``add_admin`` queue concurrent grants; an account made meanwhile by another
    workspace's transaction is found rather than duplicated."""
    admin_service.check_email(email)
    locked = await lock_workspace(session, workspace.id)
    ensure_changeable(locked)
    admin = await _locked_account(session, email)
    created = admin is None
    if admin is None:
        try:
            async with session.begin_nested():
                admin = Admin(
                    email=email.strip(), email_lower=admin_service.normalise_email(email), password_hash=None
                )
                session.add(admin)
                await session.flush()
        except IntegrityError:  # the unique e-mail: another transaction made the account first
            admin = await _locked_account(session, email)
            created = False
            if admin is None:
                raise
    await admin_service.grant_workspace(session, admin, locked, added_by=actor)
    return AddedAdmin(
        admin_id=admin.id,
        email=admin.email,
        created=created,
        has_password=admin.password_hash is not None,
        token=None,
        shown=False,
    )


async def _locked_account(session: AsyncSession, email: str) -> Admin | None:
    """The account with ``email``, locked for the transaction: two workspaces adding the same account
    at once are queued, so the second sees the first's grant and makes no link."""
    query = (
        select(Admin)
        .where(Admin.email_lower == admin_service.normalise_email(email))
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def _issue_token(session: AsyncSession, admin: Admin, actor: str) -> str:
    now = utcnow()
    await session.execute(delete(AdminPasswordToken).where(AdminPasswordToken.expires_at <= now))
    await session.execute(delete(AdminPasswordToken).where(AdminPasswordToken.admin_id == admin.id))
    token = secrets.token_urlsafe(32)
    session.add(
        AdminPasswordToken(
            admin_id=admin.id,
            token_hash=hash_secret(token),
            created_by=actor,
            created_at=now,
            expires_at=now + INVITE_TTL,
        )
    )
    await session.flush()
    return token


async def remove_admin(session: AsyncSession, workspace: Workspace, admin_id: str) -> str:
    """Take the workspace from one of its admins (themself included); refused for the last one, and for
    the last one with a password while others are only invited (removing an invited one never lessens
    who can sign in, so it is allowed). Returns the removed admin's e-mail. An account left without any
    workspace loses its pending set-password link, so an invite withdrawn this way stops working."""
    ensure_changeable(workspace)
    locked = await lock_workspace(session, workspace.id)
    admin = await workspace_admin(session, locked.id, admin_id=admin_id)
    others = (
        select(func.count())
        .select_from(WorkspaceAdmin)
        .join(Admin, Admin.id == WorkspaceAdmin.admin_id)
        .where(WorkspaceAdmin.workspace_id == locked.id, WorkspaceAdmin.admin_id != admin.id)
    )
    if not (await session.execute(others)).scalar_one():
        raise DomainError(
            Kind.CONFLICT,
            f"{admin.email} is the last admin of {locked.name} and cannot be removed: add another admin "
            "first.",
        )
    # Invited admins who have not set a password cannot sign in: they do not keep the workspace run.
    signing_in = others.where(Admin.password_hash.is_not(None))
    if admin.password_hash is not None and not (await session.execute(signing_in)).scalar_one():
        raise DomainError(
            Kind.CONFLICT,
            f"{admin.email} is the only admin of {locked.name} who can sign in and cannot be removed: the "
            "other admins have not set their password yet.",
        )
    await session.execute(
        delete(WorkspaceAdmin).where(
            WorkspaceAdmin.workspace_id == locked.id, WorkspaceAdmin.admin_id == admin.id
        )
    )
    if not await admin_service.workspaces_of(session, admin.id):
        await session.execute(delete(AdminPasswordToken).where(AdminPasswordToken.admin_id == admin.id))
    return admin.email


async def admin_for_token(session: AsyncSession, token: str) -> Admin:
    """The admin a live set-password token belongs to, else ``DomainError`` (not found)."""
    admin = (
        await session.execute(
            select(Admin)
            .join(AdminPasswordToken, AdminPasswordToken.admin_id == Admin.id)
            .where(
                AdminPasswordToken.token_hash == hash_secret(token), AdminPasswordToken.expires_at > utcnow()
            )
        )
    ).scalar_one_or_none()
    if admin is None:
        raise DomainError(Kind.NOT_FOUND, INVALID_LINK)
    return admin


async def prepare_password(password: str) -> str:
    """Check a new password and hash it, in a worker thread (argon2 is slow by design) and before any
    transaction is opened."""
    admin_service.check_password_length(password)
    return await anyio.to_thread.run_sync(admin_service.hash_password, password)


async def set_password_with_token(session: AsyncSession, token: str, password_hash: str) -> Admin:
    """Spend the token (deleted in the statement that reads it, so two submissions cannot both use it)
    and store the password, which ends the admin's sessions."""
    admin_id = (
        await session.execute(
            delete(AdminPasswordToken)
            .where(
                AdminPasswordToken.token_hash == hash_secret(token), AdminPasswordToken.expires_at > utcnow()
            )
            .returning(AdminPasswordToken.admin_id)
        )
    ).scalar_one_or_none()
    admin = await session.get(Admin, admin_id) if admin_id else None
    if admin is None:
        raise DomainError(Kind.NOT_FOUND, INVALID_LINK)
    await admin_service.store_password_hash(session, admin, password_hash)
    return admin
