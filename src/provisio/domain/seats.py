"""Seats: every active member of a workspace uses one of its purchased seats.

Usage is not stored: it is ``COUNT(*)`` of the workspace's active, non-deleted members, read while the
workspace row is locked, so it cannot drift and deactivation or DELETE frees a seat by itself. The
purchased count only grows by itself (auto-charge); every change to it is a ledger entry.

Concurrency. Whoever may take a seat first locks the workspace row (``lock_workspace``):
PostgreSQL ``SELECT … FOR NO KEY UPDATE`` (it does not block the ``KEY SHARE`` locks that foreign keys to
the workspace take), and on SQLite every write transaction is ``BEGIN IMMEDIATE``, so writers are already
serialised. With the lock held, the count is exact under READ COMMITTED: every other seat-taker is queued
on the same row and its members are visible once it commits.

Lock order, to stay free of deadlocks (see also ``provisio.domain.membership``):
``members`` row (PUT/PATCH/DELETE lock the member first) → ``workspaces`` row → ``people`` row →
``member_buckets`` row (``provisio.domain.member_buckets``).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from provisio.db.models import Member, SeatLedgerEntry, Workspace, utcnow
from provisio.domain import host_events
from provisio.domain.errors import DomainError, Kind, Reason
from provisio.domain.host_events import Actor
from provisio.domain.workspace_state import ensure_changeable

MAX_PURCHASED = 1_000_000
KIND_AUTO_CHARGE = "auto_charge"
KIND_PURCHASE = "purchase"
KIND_OPERATOR = "operator"
SETTINGS_HINT = "Workspace settings"
# How the ledger names who changed the count: the operator on the command line; an admin in the console
# is "<e-mail> (console)" and an identity provider its client (``scim.auth.Caller.actor``).
OPERATOR_CLI = "operator (CLI)"
# How a ``seats.purchased`` event says the seats were bought.
HOW_AUTO_CHARGE = "auto_charge"
HOW_MANUAL = "manual"


async def lock_workspace(session: AsyncSession, workspace_id: str) -> Workspace:
    """The workspace, freshly read and locked for the rest of the transaction."""
    query = (
        select(Workspace)
        .where(Workspace.id == workspace_id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    )
    workspace = (await session.execute(query)).scalar_one_or_none()
    if workspace is None:
        raise DomainError(Kind.NOT_FOUND, "The workspace no longer exists.")
    return workspace


async def used_seats(session: AsyncSession, workspace_id: str) -> int:
    query = select(func.count()).where(
        Member.workspace_id == workspace_id, Member.active.is_(True), Member.deleted_at.is_(None)
    )
    return int((await session.execute(query)).scalar_one())


@dataclass(frozen=True)
class SeatUsage:
    used: int
    purchased: int
    auto_charge: bool
    max_seats: int | None  # what auto-charge may reach; None: no limit

    @property
    def free(self) -> int:
        return max(self.purchased - self.used, 0)


async def usage(session: AsyncSession, workspace: Workspace) -> SeatUsage:
    return SeatUsage(
        used=await used_seats(session, workspace.id),
        purchased=workspace.seats_purchased,
        auto_charge=workspace.license_auto_charge,
        max_seats=workspace.license_max_seats,
    )


async def _record(
    session: AsyncSession, workspace: Workspace, delta: int, kind: str, reason: str, actor: str, by: Actor
) -> SeatLedgerEntry:
    """Every change of the purchased count: a ledger entry, and its ``seats.purchased`` event (``delta``
    is negative only when the operator lowers the count, ``set_purchased``)."""
    workspace.seats_purchased += delta
    entry = SeatLedgerEntry(
        workspace_id=workspace.id,
        at=utcnow(),
        delta=delta,
        seats_after=workspace.seats_purchased,
        kind=kind,
        reason=reason[:600],
        actor=actor[:200],
    )
    session.add(entry)
    await host_events.emit(
        session,
        type=host_events.SEATS_PURCHASED,
        workspace_id=workspace.id,
        actor=by,
        data={
            "quantity": delta,
            "total": entry.seats_after,
            "how": HOW_AUTO_CHARGE if kind == KIND_AUTO_CHARGE else HOW_MANUAL,
            "reason": entry.reason,
        },
        at=entry.at,
    )
    return entry


def no_free_seat(workspace: Workspace, used: int) -> DomainError:
    """The 403 an identity provider shows its admin when a create finds no free seat."""
    head = f"No free seat in workspace {workspace.name} ({used} of {workspace.seats_purchased} used)"
    if not workspace.license_auto_charge:
        detail = f"{head} and license auto-charge is off: enable it or buy seats in {SETTINGS_HINT}"
        return DomainError(Kind.FORBIDDEN, detail, Reason.NO_FREE_SEAT)
    detail = (
        f"{head} and license auto-charge has reached its maximum of {workspace.license_max_seats} seats: "
        f"raise the maximum or buy seats in {SETTINGS_HINT}"
    )
    return DomainError(Kind.FORBIDDEN, detail, Reason.AUTO_CHARGE_MAXIMUM)


async def take_seat(
    session: AsyncSession, workspace: Workspace, *, user_name: str, actor: str, by: Actor
) -> SeatLedgerEntry | None:
    """Make room for one more active member of ``workspace`` (locked by ``lock_workspace``).

    A free seat: nothing to do. None free: auto-charge buys one when on and below its maximum (the
    ledger entry is returned); otherwise 403 and the caller's transaction is rolled back.
    """
    used = await used_seats(session, workspace.id)
    if used < workspace.seats_purchased:
        return None
    cap = workspace.license_max_seats
    if workspace.license_auto_charge and (cap is None or workspace.seats_purchased < cap):
        delta = (
            used + 1 - workspace.seats_purchased
        )  # 1 unless seats were below usage before that was refused
        if cap is None or workspace.seats_purchased + delta <= cap:
            reason = f"auto-charge for {user_name}"
            return await _record(session, workspace, delta, KIND_AUTO_CHARGE, reason, actor, by)
    raise no_free_seat(workspace, used)


async def buy_seats(
    session: AsyncSession, workspace: Workspace, count: int, *, actor: str, by: Actor, reason: str = ""
) -> SeatLedgerEntry:
    """Buy ``count`` seats by hand (never limited by the auto-charge maximum)."""
    if count < 1:
        raise DomainError(Kind.INVALID, "Buy at least one seat.")
    locked = await lock_workspace(session, workspace.id)
    ensure_changeable(locked)
    if locked.seats_purchased + count > MAX_PURCHASED:
        raise DomainError(Kind.INVALID, f"A workspace can have at most {MAX_PURCHASED} seats.")
    reason = reason or f"bought {count} seat(s)"
    entry = await _record(session, locked, count, KIND_PURCHASE, reason, actor, by)
    await session.flush()
    return entry


async def set_purchased(
    session: AsyncSession, workspace: Workspace, purchased: int, *, actor: str, by: Actor, reason: str = ""
) -> SeatLedgerEntry | None:
    """The operator's override of the purchased count. Never below the seats in use: the members using
    them would hold seats nobody bought, and the next create would charge for them all at once."""
    if not 0 <= purchased <= MAX_PURCHASED:
        raise DomainError(Kind.INVALID, f"The purchased seat count must be between 0 and {MAX_PURCHASED}.")
    locked = await lock_workspace(session, workspace.id)
    ensure_changeable(locked)
    delta = purchased - locked.seats_purchased
    if delta == 0:
        return None
    used = await used_seats(session, locked.id)
    if purchased < used:
        raise DomainError(
            Kind.INVALID,
            f"Workspace {locked.name} has {used} active members, each using a seat: the purchased count "
            f"cannot go below {used}. Deactivate members first (or set {used} or more).",
        )
    reason = reason or f"set to {purchased} seat(s)"
    entry = await _record(session, locked, delta, KIND_OPERATOR, reason, actor, by)
    await session.flush()
    return entry


async def initial_purchase(
    session: AsyncSession, workspace: Workspace, count: int, *, actor: str, by: Actor
) -> SeatLedgerEntry | None:
    """The seats a new workspace starts with, as its first ledger entry (none for zero). Not capped by
    ``MAX_PURCHASED``, which bounds later changes: an operator may start a workspace larger."""
    if count < 0:
        raise DomainError(Kind.INVALID, "The seat count cannot be negative.")
    if count == 0:
        return None
    reason = f"initial purchase of {count} seat(s)"
    entry = await _record(session, workspace, count, KIND_PURCHASE, reason, actor, by)
    await session.flush()
    return entry


async def ledger(session: AsyncSession, workspace_id: str, *, limit: int = 100) -> list[SeatLedgerEntry]:
    """The newest entries first."""
    result = await session.execute(
        select(SeatLedgerEntry)
        .where(SeatLedgerEntry.workspace_id == workspace_id)
        .order_by(SeatLedgerEntry.id.desc())
        .limit(limit)
    )
    return list(result.scalars())


@dataclass(frozen=True)
class LedgerPage:
    total: int
    entries: list[SeatLedgerEntry]


async def ledger_page(session: AsyncSession, workspace_id: str, *, offset: int, limit: int) -> LedgerPage:
    """One page of the ledger, newest first, and how many entries there are in all (the console)."""
    total = await session.scalar(select(func.count()).where(SeatLedgerEntry.workspace_id == workspace_id))
    result = await session.execute(
        select(SeatLedgerEntry)
        .where(SeatLedgerEntry.workspace_id == workspace_id)
        .order_by(SeatLedgerEntry.id.desc())
        .offset(max(offset, 0))
        .limit(limit)
    )
    return LedgerPage(total=int(total or 0), entries=list(result.scalars()))
