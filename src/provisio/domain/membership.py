"""Admission: the rules a member must pass to be created, reactivated or re-linked to another e-mail.

In this order, in the caller's write transaction (nothing is written when one fails):

1. the workspace row is locked (``seats.lock_workspace``) and read fresh: it must not be disabled (409);
2. the identifying e-mail is in a verified domain of the workspace, unless it allows other domains (400);
3. the person (by e-mail) is found or created, then locked, and must not be active in another
   workspace: a person belongs to one workspace (409 uniqueness, without naming the other one);
4. an active member needs a seat: a free one, or one bought by auto-charge (403 otherwise).

Lock order: ``members`` row (taken by the SCIM routes before any change) → ``workspaces`` row →
``people`` row. Two workspaces admitting the same person lock different workspace rows and then the
same person row, so the second waits for the first to commit and then sees its active member. A
person row that does not exist yet is inserted after the workspace lock, so two transactions racing to
create it meet on the unique index in the same order.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from provisio.db.models import Member, Person
from provisio.domain import domains, seats
from provisio.domain.errors import DomainError, Kind, Reason
from provisio.domain.host_events import Actor
from provisio.domain.workspace_state import ensure_changeable
from provisio.domain.workspaces import WorkspaceRef

PersonFinder = Callable[[AsyncSession, str | None], Awaitable[Person | None]]


async def lock_person(session: AsyncSession, person_id: str) -> None:
    await session.execute(select(Person.id).where(Person.id == person_id).with_for_update(key_share=True))


def _elsewhere(email: str) -> DomainError:
    return DomainError(
        Kind.CONFLICT,
        f"{email} already belongs to another workspace, and a person can belong to only one workspace. "
        "Ask that workspace's admins to deactivate or remove them there, then retry.",
        Reason.OTHER_WORKSPACE,
    )


async def ensure_not_active_elsewhere(
    session: AsyncSession, workspace_id: str, person: Person, email: str
) -> None:
    """409 when ``person`` is an active member of another workspace (call with the person row locked)."""
    query = select(Member.id).where(
        Member.person_id == person.id,
        Member.workspace_id != workspace_id,
        Member.active.is_(True),
        Member.deleted_at.is_(None),
    )
    if (await session.execute(query.limit(1))).first() is not None:
        raise _elsewhere(email)


async def admit(
    session: AsyncSession,
    workspace: WorkspaceRef,
    *,
    email: str | None,
    user_name: str,
    active: bool,
    needs_seat: bool,
    find_person: PersonFinder,
    actor: str,
    by: Actor,
) -> Person | None:
    """Check every rule for a member about to be written; returns the person to link it to.

    ``active``: the member is active after the write; ``needs_seat``: it was not active before (a
    create or a reactivation). A seat bought by auto-charge is ``by``'s. Raises ``DomainError`` (400,
    409 or 403) when a rule refuses.
    """
    locked = await seats.lock_workspace(session, workspace.id)
    # Authentication read the workspace before this lock: a disable may have committed since.
    ensure_changeable(locked)
    await domains.check_member_email(session, locked, email)
    person = await find_person(session, email)
    if active and person is not None:
        await lock_person(session, person.id)
        await ensure_not_active_elsewhere(session, locked.id, person, email or person.email)
    if active and needs_seat:
        await seats.take_seat(session, locked, user_name=user_name, actor=actor, by=by)
    return person
