"""Several admins per workspace: listing, adding by e-mail (an existing account is granted the workspace,
a new address gets a one-time set-password token kept only as a hash), removing (never the last one, not
even when admins remove each other at the same moment), and a new password ending the admin's sessions."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select, text, update

from provisio.db.engine import Database
from provisio.db.models import Admin, AdminPasswordToken, ConsoleSession, Workspace, WorkspaceAdmin, utcnow
from provisio.domain import admins as account_service
from provisio.domain import workspace_admins as admin_service
from provisio.domain import workspaces as workspace_service
from provisio.domain.errors import DomainError, Kind
from provisio.domain.hashing import hash_secret

PASSWORD = "correct horse battery staple"
ACTOR = "it@acme.example (console)"


def address(local: str = "ada") -> str:
    return f"{local}-{uuid.uuid4().hex[:8]}@admins.example"


async def new_workspace(db: Database, *admins: str) -> Workspace:
    """A workspace whose admins (with a password) have the given e-mail addresses."""
    async with db.writing() as session:
        ws = await workspace_service.create_workspace(session, f"Admins {uuid.uuid4().hex[:6]}")
        for email in admins:
            await account_service.ensure_admin(session, ws, email, PASSWORD)
        return ws


async def admin_emails(db: Database, ws: Workspace) -> list[str]:
    async with db.reading() as session:
        return [a.email for a in await admin_service.list_admins(session, ws.id)]


async def admin_id(db: Database, email: str) -> str:
    async with db.reading() as session:
        admin = await account_service.get_admin_by_email(session, email)
        assert admin is not None
        return admin.id


async def add(db: Database, ws: Workspace, email: str) -> admin_service.AddedAdmin:
    async with db.writing() as session:
        return await admin_service.add_admin(session, ws, email, actor=ACTOR)


async def remove(db: Database, ws: Workspace, email: str) -> str:
    target = await admin_id(db, email)
    async with db.writing() as session:
        return await admin_service.remove_admin(session, ws, target)


async def start_session(db: Database, email: str) -> str:
    token_hash = hash_secret(uuid.uuid4().hex)
    async with db.writing() as session:
        session.add(
            ConsoleSession(
                token_hash=token_hash,
                admin_id=await admin_id(db, email),
                expires_at=utcnow() + timedelta(hours=1),
            )
        )
    return token_hash


async def sessions_of(db: Database, email: str) -> int:
    target = await admin_id(db, email)
    async with db.reading() as session:
        rows = await session.execute(select(ConsoleSession.id).where(ConsoleSession.admin_id == target))
        return len(rows.all())


async def test_a_new_address_gets_an_account_without_password_and_a_hashed_one_time_token(
    db: Database,
) -> None:
    owner = address("owner")
    ws = await new_workspace(db, owner)
    new = address("grace").replace("grace", "Grace")
    added = await add(db, ws, f"  {new} ")
    assert added.created and added.email == new and added.token and len(added.token) >= 40
    async with db.reading() as session:
        rows = {a.email: a for a in await admin_service.list_admins(session, ws.id)}
        admin = (await session.execute(select(Admin).where(Admin.id == added.admin_id))).scalar_one()
        stored = (
            await session.execute(select(AdminPasswordToken).where(AdminPasswordToken.admin_id == admin.id))
        ).scalar_one()
        # Nothing the client got is stored in the clear: only the token's SHA-256.
        dump = " ".join(
            str(v) for v in (await session.execute(text("SELECT * FROM admin_password_tokens"))).all()
        )
    assert list(rows) == [owner, new]
    assert rows[new].added_by == ACTOR and not rows[new].has_password and rows[owner].has_password
    assert rows[new].since >= rows[owner].since
    assert admin.password_hash is None
    assert stored.token_hash == hash_secret(added.token) and added.token not in dump
    lifetime = stored.expires_at - stored.created_at
    assert lifetime == timedelta(hours=72)
    # An account without a password cannot sign in: it looks like an unknown e-mail.
    async with db.reading() as session:
        assert await account_service.stored_credentials(session, new) is None


async def test_an_existing_account_is_granted_the_workspace(db: Database) -> None:
    owner, other = address("owner"), address("other")
    ws = await new_workspace(db, owner)
    await new_workspace(db, other)  # other already administers a workspace of their own
    added = await add(db, ws, other.upper())
    assert not added.created and added.token is None and added.email == other
    assert await admin_emails(db, ws) == [owner, other]
    async with db.reading() as session:
        tokens = await session.execute(
            select(AdminPasswordToken.id).where(AdminPasswordToken.admin_id == added.admin_id)
        )
        assert tokens.all() == []
    with pytest.raises(DomainError) as again:
        await add(db, ws, other)
    assert again.value.kind is Kind.CONFLICT and "already an admin" in again.value.detail


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "not-an-address",
        "ada@localhost",
        "ada lovelace@x.example",
        "ada\x00@x.example",  # PostgreSQL cannot store NUL: a 500 rather than this refusal before
        "ada@x.example\x00",
        "ada\x07@x.example",
        "ada\u200b@x.example",  # a zero-width space
        "ada\u2028@x.example",
        "ada,bob@x.example",
        "ada@x.example,bob@y.example",
        "ada@bob@x.example",
        "Ada <ada@x.example>",
        "ada\t@x.example",
    ],
)
async def test_an_invalid_address_is_refused(db: Database, bad: str) -> None:
    ws = await new_workspace(db, address("owner"))
    with pytest.raises(DomainError) as refused:
        await add(db, ws, bad)
    assert refused.value.kind is Kind.INVALID and "is not an e-mail address" in refused.value.detail
    assert len(await admin_emails(db, ws)) == 1


async def set_password(db: Database, email: str, password: str = PASSWORD) -> None:
    async with db.writing() as session:
        admin = await account_service.get_admin_by_email(session, email)
        assert admin is not None
        await account_service.set_password(session, admin, password)


async def test_an_account_invited_by_another_workspace_gets_no_link_that_its_inviter_sees(
    db: Database,
) -> None:
    """Workspace A invites v; an admin of B adds v too. The link shown to B's admin would let them choose
    v's password and so enter A: B's admin sees none, and A's older link (which A's admin saw, and which
    would now open B too) stops working; the new link is only for v's own mailbox."""
    a = await new_workspace(db, address("owner-a"))
    b = await new_workspace(db, address("owner-b"))
    victim = address("victim")
    first = await add(db, a, victim)
    assert first.token and first.shown and first.created
    by_b = await add(db, b, victim)
    assert not by_b.created and not by_b.has_password and not by_b.shown
    assert by_b.token and by_b.token != first.token  # to be e-mailed to the address, never shown
    assert victim in await admin_emails(db, b)
    async with db.reading() as session:
        with pytest.raises(DomainError):
            await admin_service.admin_for_token(session, first.token)
        assert (await admin_service.admin_for_token(session, by_b.token)).email == victim
    # Adding them again from either workspace never shows a link while both have the account.
    assert not (await add(db, a, victim)).shown and not (await add(db, b, victim)).shown
    # Once one workspace removed them, the other is their only one: its inviter may see a link again.
    await remove(db, b, victim)
    again = await add(db, a, victim)
    assert again.token and again.shown


async def test_an_account_with_a_password_elsewhere_is_only_granted(db: Database) -> None:
    elsewhere = address("elsewhere")
    await new_workspace(db, elsewhere)
    ws = await new_workspace(db, address("owner"))
    added = await add(db, ws, elsewhere)
    assert added.has_password and added.token is None and not added.shown and not added.created


async def test_an_account_left_without_workspaces_and_password_is_invited_afresh(db: Database) -> None:
    ws = await new_workspace(db, address("owner"))
    pending = await add(db, ws, address("pending"))
    await remove(db, ws, pending.email)
    other = await new_workspace(db, address("other"))
    again = await add(db, other, pending.email)
    assert not again.created and again.token and again.shown


async def test_the_only_admin_who_can_sign_in_cannot_be_removed(db: Database) -> None:
    owner = address("owner")
    ws = await new_workspace(db, owner)
    invited = [await add(db, ws, address(f"invited{i}")) for i in range(2)]
    with pytest.raises(DomainError) as refused:
        await remove(db, ws, owner)
    assert refused.value.kind is Kind.CONFLICT
    assert f"{owner} is the only admin of {ws.name} who can sign in" in refused.value.detail
    assert owner in await admin_emails(db, ws)
    # An invited admin can go: the owner still signs in.
    assert await remove(db, ws, invited[0].email) == invited[0].email
    await set_password(db, invited[1].email)
    assert await remove(db, ws, owner) == owner
    assert await admin_emails(db, ws) == [invited[1].email]


async def test_admins_removing_each_other_never_leave_only_invited_ones(db: Database) -> None:
    first, second = address("first"), address("second")
    ws = await new_workspace(db, first, second)
    await add(db, ws, address("invited"))
    outcomes = await _remove_together(db, ws, [second, first])
    refused = [o for o in outcomes if isinstance(o, DomainError)]
    assert len(refused) == 1 and "who can sign in" in refused[0].detail, outcomes
    assert sum(r.has_password for r in await _rows(db, ws)) == 1


async def test_a_newer_invite_replaces_the_older_and_a_token_works_once(db: Database) -> None:
    ws = await new_workspace(db, address("owner"))
    new = address("grace")
    first = await add(db, ws, new)
    second = await add(db, ws, new)  # not signed up yet: adding again makes a new link
    assert first.token and second.token and first.token != second.token and not second.created
    async with db.reading() as session:
        with pytest.raises(DomainError) as replaced:
            await admin_service.admin_for_token(session, first.token)
        assert replaced.value.kind is Kind.NOT_FOUND and "newer invite" in replaced.value.detail
        assert (await admin_service.admin_for_token(session, second.token)).email == new
    password_hash = await admin_service.prepare_password(PASSWORD)
    async with db.writing() as session:
        with pytest.raises(DomainError):
            await admin_service.set_password_with_token(session, first.token, password_hash)
    async with db.writing() as session:
        admin = await admin_service.set_password_with_token(session, second.token, password_hash)
        assert admin.email == new
    async with db.writing() as session:
        with pytest.raises(DomainError) as used:
            await admin_service.set_password_with_token(session, second.token, password_hash)
    assert used.value.kind is Kind.NOT_FOUND
    async with db.reading() as session:
        stored = await account_service.stored_credentials(session, new)
    assert (await account_service.check_password(stored, PASSWORD))[0]
    rows = {a.email: a for a in await _rows(db, ws)}
    assert rows[new].has_password
    # With a password, the account is granted, not invited, from now on.
    with pytest.raises(DomainError) as again:
        await add(db, ws, new)
    assert again.value.kind is Kind.CONFLICT


async def _rows(db: Database, ws: Workspace) -> list[admin_service.WorkspaceAdminRow]:
    async with db.reading() as session:
        return await admin_service.list_admins(session, ws.id)


async def test_an_expired_token_is_refused(db: Database) -> None:
    ws = await new_workspace(db, address("owner"))
    added = await add(db, ws, address("late"))
    assert added.token
    async with db.writing() as session:
        await session.execute(
            update(AdminPasswordToken)
            .where(AdminPasswordToken.admin_id == added.admin_id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    password_hash = await admin_service.prepare_password(PASSWORD)
    async with db.writing() as session:
        with pytest.raises(DomainError) as expired:
            await admin_service.set_password_with_token(session, added.token, password_hash)
    assert "expired" in expired.value.detail
    with pytest.raises(DomainError) as short:
        await admin_service.prepare_password("x" * (account_service.MIN_PASSWORD_LENGTH - 1))
    assert short.value.kind is Kind.INVALID and str(account_service.MIN_PASSWORD_LENGTH) in short.value.detail


async def test_the_last_admin_cannot_be_removed_and_an_admin_may_remove_themself(db: Database) -> None:
    first, second = address("first"), address("second")
    ws = await new_workspace(db, first)
    with pytest.raises(DomainError) as last:
        await remove(db, ws, first)
    assert last.value.kind is Kind.CONFLICT
    assert (
        f"{first} is the last admin of {ws.name}" in last.value.detail and "add another" in last.value.detail
    )
    await add(db, ws, second)
    await set_password(db, second)
    assert await remove(db, ws, first) == first  # themself: allowed, someone who can sign in is left
    assert await admin_emails(db, ws) == [second]
    with pytest.raises(DomainError):
        await remove(db, ws, second)
    async with db.reading() as session:
        # The account itself is kept.
        assert await account_service.get_admin_by_email(session, first) is not None


async def test_an_admin_of_another_workspace_is_not_found(db: Database) -> None:
    mine, theirs = address("mine"), address("theirs")
    ws = await new_workspace(db, mine, address("second"))
    other = await new_workspace(db, theirs, address("third"))
    with pytest.raises(DomainError) as missing:
        await remove(db, ws, theirs)
    assert missing.value.kind is Kind.NOT_FOUND
    assert await admin_emails(db, other) == [theirs, (await admin_emails(db, other))[1]]
    async with db.reading() as session:
        with pytest.raises(DomainError):
            await admin_service.workspace_admin(session, ws.id, email=theirs)


async def test_removing_a_pending_admin_from_their_only_workspace_voids_the_link(db: Database) -> None:
    ws = await new_workspace(db, address("owner"))
    pending = await add(db, ws, address("pending"))
    assert pending.token
    await remove(db, ws, pending.email)
    async with db.reading() as session:
        with pytest.raises(DomainError):
            await admin_service.admin_for_token(session, pending.token)


async def test_a_new_password_ends_every_session_of_that_admin(db: Database) -> None:
    email, bystander = address("reset"), address("bystander")
    ws = await new_workspace(db, email, bystander)
    for _ in range(2):
        await start_session(db, email)
    await start_session(db, bystander)
    assert await sessions_of(db, email) == 2
    async with db.writing() as session:
        admin = await account_service.get_admin_by_email(session, email)
        assert admin is not None
        await account_service.set_password(session, admin, "another good password")
    assert await sessions_of(db, email) == 0 and await sessions_of(db, bystander) == 1
    await start_session(db, email)
    async with db.writing() as session:  # what `provisio demo` and `workspace create --admin-…` do
        await account_service.ensure_admin(session, ws, email, "yet another password")
    assert await sessions_of(db, email) == 0 and await sessions_of(db, bystander) == 1
    # A refused password changes nothing, sessions included.
    await start_session(db, email)
    async with db.writing() as session:
        admin = await account_service.get_admin_by_email(session, email)
        assert admin is not None
        with pytest.raises(DomainError):
            await account_service.set_password(session, admin, "short")
    assert await sessions_of(db, email) == 1


async def test_setting_the_password_with_a_link_ends_sessions_too(db: Database) -> None:
    ws = await new_workspace(db, address("owner"))
    added = await add(db, ws, address("fresh"))
    assert added.token
    await start_session(db, added.email)  # cannot happen without a password; the rule holds anyway
    async with db.writing() as session:
        await admin_service.set_password_with_token(
            session, added.token, await admin_service.prepare_password(PASSWORD)
        )
    assert await sessions_of(db, added.email) == 0


async def _remove_together(db: Database, ws: Workspace, targets: list[str]) -> list[str | DomainError]:
    """Each target removed in its own transaction, all at once. On PostgreSQL every transaction has begun
    before any removes (so without the workspace lock each would count every admin still there); on
    SQLite writers are serialised by ``BEGIN IMMEDIATE``, which is the point, so they simply race."""
    ids = [await admin_id(db, email) for email in targets]
    started = 0
    everyone_in = asyncio.Event()

    async def one(target: str) -> str | DomainError:
        nonlocal started
        try:
            async with db.writing() as session:
                if db.dialect == "postgresql":
                    await session.execute(select(WorkspaceAdmin.admin_id).limit(1))
                    started += 1
                    if started == len(ids):
                        everyone_in.set()
                    await asyncio.wait_for(everyone_in.wait(), 10)
                return await admin_service.remove_admin(session, ws, target)
        except DomainError as exc:
            return exc

    return list(await asyncio.gather(*(one(t) for t in ids)))


@pytest.mark.parametrize("round_no", range(3))
async def test_two_admins_removing_each_other_at_once_leave_one(db: Database, round_no: int) -> None:
    first, second = address("first"), address("second")
    ws = await new_workspace(db, first, second)
    outcomes = await _remove_together(db, ws, [second, first])  # first removes second, second removes first
    removed = [o for o in outcomes if isinstance(o, str)]
    refused = [o for o in outcomes if isinstance(o, DomainError)]
    assert len(removed) == 1 and len(refused) == 1, outcomes
    assert refused[0].kind is Kind.CONFLICT and "last admin" in refused[0].detail
    assert len(await admin_emails(db, ws)) == 1


async def test_every_admin_leaving_at_once_leaves_exactly_one(db: Database) -> None:
    emails = [address(f"a{i}") for i in range(5)]
    ws = await new_workspace(db, *emails)
    outcomes = await _remove_together(db, ws, emails)
    assert sum(isinstance(o, str) for o in outcomes) == 4, outcomes
    assert len(await admin_emails(db, ws)) == 1
