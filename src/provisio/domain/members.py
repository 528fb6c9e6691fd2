"""Members: the people of a workspace, as SCIM Users. The one place that writes ``Member`` rows.

Documents reaching these services are already validated and normalised by the protocol layer
(canonical attribute names, JSON-typed values). Here live the rules: userName unique per workspace
(case-insensitively), the link to a global ``Person`` by e-mail, versions, and soft deletion.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, cast

import orjson
from sqlalchemy import (
    ColumnElement,
    Insert,
    Select,
    Table,
    and_,
    any_,
    bindparam,
    func,
    literal_column,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from provisio.db.models import Member, Person, Workspace, new_id, utcnow
from provisio.domain import events, host_events, member_buckets, member_events, membership
from provisio.domain.errors import DomainError, Kind, Reason
from provisio.domain.host_events import Actor
from provisio.domain.uniqueness import conflict_on, flush_or_conflict
from provisio.domain.workspace_state import changeable, lock_changeable
from provisio.domain.workspaces import WorkspaceIdentity, WorkspaceRef

# Keys the server owns; never taken from a client's document.
SERVER_KEYS = ("id", "meta")


def primary_email(doc: dict[str, Any]) -> str | None:
    """The address that identifies the person: the primary e-mail, else the first, else an e-mail userName."""
    emails = [e for e in doc.get("emails") or [] if isinstance(e, dict) and isinstance(e.get("value"), str)]
    for e in emails:
        if e.get("primary") is True:
            return str(e["value"])
    if emails:
        return str(emails[0]["value"])
    user_name = doc.get("userName")
    if isinstance(user_name, str) and "@" in user_name:
        return user_name
    return None


def _clean(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in SERVER_KEYS}


def is_active(doc: dict[str, Any]) -> bool:
    """RFC 7643 §4.1.1 leaves an absent ``active`` to the server: a provisioned user is active."""
    return doc.get("active", True) is not False


def _column_limit(column: Any) -> int:
    return int(column.type.length)


# Attributes copied into fixed-width columns, with the column that bounds them.
_BOUNDED = (
    ("userName", Member.__table__.c.user_name),
    ("externalId", Member.__table__.c.external_id),
    ("displayName", Member.__table__.c.display_name),
    ("name.givenName", Member.__table__.c.given_name),
    ("name.familyName", Member.__table__.c.family_name),
    ("the primary e-mail", Member.__table__.c.email_lower),
)


def _check_lengths(doc: dict[str, Any]) -> None:
    """Refuse values longer than their column, before any row is touched."""
    raw_name = doc.get("name")
    name: dict[str, Any] = raw_name if isinstance(raw_name, dict) else {}
    values = {
        "userName": doc["userName"],
        "externalId": doc.get("externalId"),
        "displayName": doc.get("displayName"),
        "name.givenName": name.get("givenName"),
        "name.familyName": name.get("familyName"),
        "the primary e-mail": primary_email(doc),
    }
    for label, column in _BOUNDED:
        value = values.get(label)
        if value is not None and len(value) > _column_limit(column):
            raise DomainError(
                Kind.INVALID,
                f"{label} is {len(value)} characters long; this server accepts at most "
                f"{_column_limit(column)}. Shorten it in your identity provider.",
                Reason.VALUE_TOO_LONG,
            )


def _json_copy(doc: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of a JSON document (several times faster than ``copy.deepcopy``)."""
    copied: dict[str, Any] = orjson.loads(orjson.dumps(doc))
    return copied


def _columns(doc: dict[str, Any]) -> dict[str, Any]:
    """The member's columns that are copies of document attributes (filtered, sorted and enforced)."""
    raw_name = doc.get("name")
    name: dict[str, Any] = raw_name if isinstance(raw_name, dict) else {}
    email = primary_email(doc)
    return {
        "doc": doc,
        "user_name": doc["userName"],
        "user_name_lower": doc["userName"].lower(),
        "external_id": doc.get("externalId"),
        "active": is_active(doc),
        "display_name": doc.get("displayName"),
        "given_name": name.get("givenName"),
        "family_name": name.get("familyName"),
        "email_lower": email.lower() if email else None,
    }


_COLUMN_NAMES = tuple(_columns({"userName": ""}))


def _sync_columns(member: Member, doc: dict[str, Any]) -> None:
    for column, value in _columns(doc).items():
        setattr(member, column, value)


_MEMBERS = cast(Table, Member.__table__)
_UPDATE_MEMBER = update(_MEMBERS).where(_MEMBERS.c.id == bindparam("member_id"))


async def _update_row(session: AsyncSession, member: Member, values: dict[str, Any]) -> None:
    """One UPDATE of the member's row (the row is locked by ``get_member(lock=True)``), mirrored on the
    loaded object as its committed state. An ORM flush of the same change costs several times more, and
    this runs on every SCIM PUT and PATCH."""
    # Only the columns whose value changes: SQLite maintains every index on a column named in SET,
    # changed or not, and a profile update changes none of the indexed ones but modified_at.
    changed = {column: value for column, value in values.items() if getattr(member, column) != value}
    if not changed:
        return
    await session.execute(_UPDATE_MEMBER, {"member_id": member.id, **changed})
    _mirror(member, changed)


def _mirror(member: Member, values: dict[str, Any]) -> None:
    """Show a row's new values on the loaded object as its committed state (nothing left to flush)."""
    for column, value in values.items():
        set_committed_value(member, column, value)


async def _person_for(session: AsyncSession, email: str | None) -> Person | None:
    if not email:
        return None
    lower = email.lower()
    found = (await session.execute(select(Person).where(Person.email_lower == lower))).scalar_one_or_none()
    if found:
        return found
    person = Person(email=email, email_lower=lower)
    try:
        async with session.begin_nested():
            session.add(person)
            await session.flush()
    except IntegrityError:
        # Another transaction created the same person first; use theirs.
        return (await session.execute(select(Person).where(Person.email_lower == lower))).scalar_one()
    return person


async def _ensure_user_name_free(
    session: AsyncSession, workspace: WorkspaceRef, user_name: str, exclude_id: str | None
) -> None:
    query = select(Member.id).where(
        Member.workspace_id == workspace.id,
        Member.user_name_lower == user_name.lower(),
        Member.deleted_at.is_(None),
    )
    if exclude_id:
        query = query.where(Member.id != exclude_id)
    if (await session.execute(query.limit(1))).first():
        raise _user_name_taken(user_name)


def _user_name_taken(user_name: str) -> DomainError:
    return DomainError(
        Kind.CONFLICT,
        f"A user with userName {user_name!r} already exists in this workspace (userName is unique, ignoring "
        "case). Link the existing user in your identity provider instead of creating a new one.",
        Reason.USER_NAME_TAKEN,
    )


_USER_NAME_INDEX = ("user_name", "uq_members_workspace_username")


async def _flush_unique(session: AsyncSession, user_name: str) -> None:
    await flush_or_conflict(session, _USER_NAME_INDEX, _user_name_taken(user_name))


async def create_member(
    session: AsyncSession,
    workspace: WorkspaceRef,
    doc: dict[str, Any],
    *,
    by: Actor,
    actor: str = "SCIM client",
) -> Member:
    """A new member, with its ``member.created`` event (``by`` made it; ``actor`` is how the seat ledger
    names them)."""
    doc = _clean(doc)
    _check_lengths(doc)
    await _ensure_user_name_free(session, workspace, doc["userName"], None)
    # Verified domain, one workspace per person, a seat (provisio.domain.membership).
    person = await membership.admit(
        session,
        workspace,
        email=primary_email(doc),
        user_name=doc["userName"],
        active=is_active(doc),
        needs_seat=True,
        find_person=_person_for,
        actor=actor,
        by=by,
    )
    now = utcnow()
    member = Member(
        id=new_id(),
        workspace_id=workspace.id,
        person_id=person.id if person else None,
        created_at=now,
        modified_at=now,
        version=1,
        provisioned_by_scim=True,
    )
    _sync_columns(member, doc)
    session.add(member)
    await _flush_unique(session, doc["userName"])
    await _count_members(session, workspace, member.id, +1)
    await host_events.emit(session, **_member_event(host_events.MEMBER_CREATED, member, by))
    return member


def _member_event(
    type: str,
    member: Member,
    by: Actor,
    *,
    row: dict[str, Any] | None = None,
    changed: list[str] | None = None,
) -> dict[str, Any]:
    """The ``host_events.row_values`` arguments of ``member``'s event, built from what is in memory (no
    read): its columns, or ``row``, the new ones, when they are not on ``member`` yet."""
    new = row or {}
    modified_at = new.get("modified_at", member.modified_at)
    snapshot = member_events.snapshot(
        member.id,
        new.get("doc", member.doc),
        active=new.get("active", member.active),
        created_at=member.created_at,
        modified_at=modified_at,
        version=new.get("version", member.version),
    )
    data: dict[str, Any] = {"member": snapshot}
    if changed is not None:
        data["changed"] = changed
    return {"type": type, "workspace_id": member.workspace_id, "actor": by, "data": data, "at": modified_at}


async def _count_members(session: AsyncSession, workspace: WorkspaceRef, member_id: str, delta: int) -> None:
    """Member ``member_id`` became visible to SCIM (+1) or stopped being so (-1): the kept counts."""
    # An atomic increment: concurrent writers on PostgreSQL queue on the row instead of losing updates.
    await session.execute(
        update(Workspace)
        .where(Workspace.id == workspace.id)
        .values(member_count=Workspace.member_count + delta)
    )
    await member_buckets.record(session, workspace.id, member_id, delta)


# Id order, the default of every list: offset pages in it skip whole buckets (``member_buckets``).
BY_ID = Member.id.asc()
# Stepping through fewer rows than this costs less than adding up the 256 bucket counts (measured with
# make bench at 10,000 members: the two cost about the same for a page in the middle, on both databases).
BUCKET_SKIP_FROM = 5_000

# The members SCIM can see in the workspace bound as ``scope_workspace``: built once, because building
# a statement costs more than running an indexed page of it.
_LIVE = and_(Member.workspace_id == bindparam("scope_workspace"), Member.deleted_at.is_(None))
_LIVE_MEMBERS = select(Member).where(_LIVE)


def visible_member(workspace_id: Any, member_id: Any) -> ColumnElement[bool]:
    """The member SCIM can see: in this workspace (tenant scoping), with this id, not deleted."""
    return and_(Member.workspace_id == workspace_id, Member.id == member_id, Member.deleted_at.is_(None))


def not_found(member_id: str) -> DomainError:
    return DomainError(Kind.NOT_FOUND, f"No user with id {member_id!r} in this workspace.")


_GET_MEMBER = select(Member).where(visible_member(bindparam("workspace_id"), bindparam("member_id")))
_GET_MEMBER_FOR_UPDATE = _GET_MEMBER.with_for_update()


async def get_member(
    session: AsyncSession, workspace: WorkspaceRef, member_id: str, *, lock: bool = False
) -> Member:
    # Prebuilt statements: this is the hottest query, and building it costs more than running it.
    query = _GET_MEMBER_FOR_UPDATE if lock else _GET_MEMBER
    params = {"workspace_id": workspace.id, "member_id": member_id}
    member = (await session.execute(query, params)).scalar_one_or_none()
    if member is None:
        raise not_found(member_id)
    return member


def check_version(member: Member, if_match: Sequence[int] | None) -> None:
    """Optimistic concurrency: ``if_match`` lists the versions the client accepts (None: any)."""
    if if_match is not None and member.version not in if_match:
        raise DomainError(
            Kind.PRECONDITION,
            f"The user was changed since you read it (it is at version {member.version}); read it again "
            "and retry.",
        )


@dataclass(frozen=True)
class Replacement:
    """What replacing a member's document changes, worked out before anything is written."""

    changed: bool
    renamed: bool  # a new userName: checked against the others, and raced on the unique index
    readmits: bool  # a new e-mail or a reactivation: the admission rules run again
    values: dict[str, Any]  # the row's new columns (with version and modified_at)

    @property
    def plain(self) -> bool:
        """A change no rule but the member's own version depends on."""
        return not (self.renamed or self.readmits)


def plan_replacement(member: Member, doc: dict[str, Any]) -> Replacement:
    doc = _clean(doc)
    if doc == member.doc:
        return Replacement(changed=False, renamed=False, readmits=False, values={})
    _check_lengths(doc)
    values = _columns(_json_copy(doc))
    email_changed = (values["email_lower"] or "") != (member.email_lower or "")
    reactivating = values["active"] and not member.active
    values.update(version=member.version + 1, modified_at=utcnow())
    renamed = values["user_name_lower"] != member.user_name_lower
    return Replacement(changed=True, renamed=renamed, readmits=email_changed or reactivating, values=values)


def _replacement_event(member: Member, plan: Replacement, by: Actor) -> dict[str, Any]:
    """The host event of ``plan`` applied to ``member`` (as read, before the change): ``member.updated``,
    or ``…deactivated``/``…reactivated`` when ``active`` moves, with every attribute that changed."""
    return _member_event(
        member_events.change_type(member.active, plan.values["active"]),
        member,
        by,
        row=plan.values,
        changed=member_events.changed_attributes(member.doc, plan.values["doc"]),
    )


async def replace_member(
    session: AsyncSession,
    workspace: WorkspaceRef,
    member: Member,
    doc: dict[str, Any],
    *,
    by: Actor,
    actor: str = "SCIM client",
) -> bool:
    """Replace the member's document (its row locked by ``get_member(lock=True)``) and write its host
    event; returns whether anything changed (the version moves, and an event is written, only then)."""
    plan = plan_replacement(member, doc)
    if not plan.changed:
        return False
    if not plan.readmits:
        await lock_changeable(session, workspace.id)  # admission checks it otherwise
    event = _replacement_event(member, plan, by)
    values = dict(plan.values)
    if plan.renamed:
        await _ensure_user_name_free(session, workspace, values["user_name"], member.id)
    if plan.readmits:
        # Verified domain, one workspace per person, a seat (provisio.domain.membership).
        person = await membership.admit(
            session,
            workspace,
            email=primary_email(values["doc"]),
            user_name=values["user_name"],
            active=values["active"],
            needs_seat=values["active"] and not member.active,
            find_person=_person_for,
            actor=actor,
            by=by,
        )
        values["person_id"] = person.id if person else None
    if plan.renamed:
        # Only a new userName can meet a concurrent writer on the unique index.
        async with conflict_on(session, _USER_NAME_INDEX, _user_name_taken(values["user_name"])):
            await _update_row(session, member, values)
    else:
        await _update_row(session, member, values)
    await host_events.emit(session, **event)
    return True


# PostgreSQL: a plain replacement and its provisioning event in one statement, applied only while the
# row is still at the version that was read (optimistic concurrency instead of a row lock).
_REPLACED = (
    update(_MEMBERS)
    .where(
        # Not named after columns: an UPDATE would take a bound "workspace_id" for its SET clause too.
        visible_member(bindparam("scope_workspace"), bindparam("scope_member")),
        _MEMBERS.c.version == bindparam("read_version"),
        # Authentication read the workspace enabled, but a disable may have committed since.
        changeable(bindparam("scope_workspace")),
    )
    .values(
        {
            name: bindparam(f"new_{name}", type_=_MEMBERS.c[name].type)
            for name in (*_COLUMN_NAMES, "version", "modified_at")
        }
    )
    .returning(_MEMBERS.c.id, _MEMBERS.c.user_name)
    .cte("replaced")
)
# The host event is inserted by a CTE of the same statement: PostgreSQL runs every data-modifying CTE,
# referenced or not, and it inserts a row only when "replaced" has one.
_HOST_EVENT = host_events.insert_from(_REPLACED, "postgresql").cte("host_event")
_REPLACE_AND_LOG: Insert = (
    events.insert_from(_REPLACED, member_id=_REPLACED.c.id, user_name=_REPLACED.c.user_name)
    .add_cte(_REPLACED, _HOST_EVENT)
    .returning(literal_column("1"))
)


async def replace_member_if_current(
    session: AsyncSession,
    workspace: WorkspaceRef,
    member: Member,
    plan: Replacement,
    event: events.Event,
    *,
    by: Actor,
) -> bool:
    """Apply a ``plain`` replacement and write ``event`` and its host event for it in one statement, in
    an autocommit session: nothing to lock and no transaction to begin or commit, so a PostgreSQL PUT or
    PATCH costs two round trips instead of five. False when the row moved on since ``member`` was read
    (or is gone): then nothing was written, and the caller takes the locking path."""
    assert plan.changed and plan.plain
    params = {f"new_{name}": value for name, value in plan.values.items()}
    params.update(scope_workspace=workspace.id, scope_member=member.id, read_version=member.version)
    params.update(event.params())
    params.update(host_events.from_params(host_events.row_values(**_replacement_event(member, plan, by))))
    if (await session.execute(_REPLACE_AND_LOG, params)).first() is None:
        return False
    _mirror(member, plan.values)
    host_events.committed()  # the statement committed by itself: no transaction's commit tells readers
    return True


async def delete_member(session: AsyncSession, workspace: WorkspaceRef, member: Member, *, by: Actor) -> None:
    """Deactivate and unlink: SCIM no longer sees the member; the data stays for the workspace. Its
    ``member.deleted`` event shows the member's last document, and ``active`` false."""
    await lock_changeable(session, workspace.id)
    now = utcnow()
    values = {"active": False, "deleted_at": now, "modified_at": now, "version": member.version + 1}
    await _update_row(session, member, values)
    await _count_members(session, workspace, member.id, -1)
    await host_events.emit(session, **_member_event(host_events.MEMBER_DELETED, member, by))


# Built once per columns tuple. The cache keeps each tuple alive, so no other column can take over the
# ids its key is made of (SQL expressions cannot be compared with ==, hence the ids).
_LIVE_SELECTS: dict[tuple[int, ...], tuple[tuple[Any, ...], Select[Any]]] = {}


def _live_select(columns: tuple[Any, ...]) -> Select[Any]:
    """``columns`` of the live members."""
    key = tuple(id(c) for c in columns)
    cached = _LIVE_SELECTS.get(key)
    if cached is not None:
        return cached[1]
    statement = select(*columns).where(_LIVE)
    if len(_LIVE_SELECTS) < 32:  # the module-level column sets; columns built per call are not kept
        _LIVE_SELECTS[key] = (columns, statement)
    return statement


class MemberResource(NamedTuple):
    """A member read as plain columns (several times cheaper than an ORM object): id, document,
    timestamps (datetimes, or text the database already formatted) and version."""

    id: str
    doc: dict[str, Any]
    created_at: datetime | str
    modified_at: datetime | str
    version: int


@dataclass(frozen=True)
class Page:
    total: int
    members: list[Any]  # Member objects, or rows of ``columns`` when a list asks for them
    keys: list[Any]  # the value of ``key`` for each member, when asked for (keyset pagination)


def known_total(workspace: WorkspaceRef, where: ColumnElement[bool] | None) -> int | None:
    """How many members SCIM can see match ``where``, when that needs no query: unfiltered, the kept
    member count a SCIM caller's identity was read with."""
    if where is None and isinstance(workspace, WorkspaceIdentity):
        return workspace.member_count
    return None


async def count_members(
    session: AsyncSession, workspace: WorkspaceRef, where: ColumnElement[bool] | None
) -> int:
    """How many members SCIM can see match ``where``. Unfiltered, the workspace's kept member count, so
    it costs the same in a workspace of a thousand members as in one of a hundred thousand."""
    known = known_total(workspace, where)
    if known is not None:
        return known
    if where is None:
        query = select(Workspace.member_count).where(Workspace.id == workspace.id)
    else:
        query = select(func.count()).select_from(select(Member.id).where(_LIVE, where).subquery())
    return int((await session.execute(query, {"scope_workspace": workspace.id})).scalar_one())


async def list_members(
    session: AsyncSession,
    workspace: WorkspaceRef,
    *,
    where: ColumnElement[bool] | None,
    order_by: Sequence[ColumnElement[Any]],
    offset: int,
    limit: int,
    reverse_order_by: Sequence[ColumnElement[Any]] | None = None,
    keyset: ColumnElement[bool] | None = None,
    key: ColumnElement[Any] | None = None,
    columns: Sequence[Any] | None = None,
) -> Page:
    """A page of the members matching ``where``, after ``keyset`` when given; ``total`` counts ``where``
    (``count_members``). ``reverse_order_by``, the exact reverse of ``order_by``, lets a page past the
    middle of a known total skip its rows from the far end."""
    scope: dict[str, Any] = {"scope_workspace": workspace.id}
    base = _LIVE_MEMBERS if columns is None else _live_select(tuple(columns))
    if where is not None:
        base = base.where(where)
    known = known_total(workspace, where)
    members: list[Member] = []
    keys: list[Any] = []
    if limit > 0:
        page = base.where(keyset) if keyset is not None else base
        ids: Select[Any] | None = None
        skip = _nearer_end(offset, limit, known, order_by, reverse_order_by) if keyset is None else None
        if skip is not None and skip[1] >= BUCKET_SKIP_FROM and where is None and _by_id(order_by):
            ids = member_buckets.ids_after(page.with_only_columns(Member.id), limit)
            scope["skip_rows"] = offset
        elif skip is not None:
            ordering, skipped, taken = skip
            ids = page.with_only_columns(Member.id).order_by(*ordering).offset(skipped).limit(taken)
        if ids is not None:
            # Skip rows through the ids alone (an index scan), then read just the page's rows.
            page = (select(*columns) if columns is not None else select(Member)).where(
                *_rows_of(ids, session.get_bind().dialect.name)
            )
        if key is not None:
            page = page.add_columns(key)
        query = page.order_by(*order_by)
        result = await session.execute(query if ids is not None else query.limit(limit), scope)
        rows: Sequence[Any] = result.all()
        for row in rows:
            members.append(row if columns is not None else row[0])
            keys.append(row[-1] if key is not None else None)
    if known is not None:
        total = known
    elif offset == 0 and keyset is None:
        total = await first_page_total(session, workspace, where, len(members), limit)
    else:
        total = await count_members(session, workspace, where)
    return Page(total=total, members=members, keys=keys)


def _rows_of(ids: Select[Any], dialect: str) -> tuple[ColumnElement[bool], ...]:
    """The conditions that pick the rows of the page whose ids ``ids`` selects (among the live members of
    the workspace already), with ``ids`` run once per statement on both databases.

    PostgreSQL turns ``id IN (subquery)`` into a semi join, and when its estimates put a workspace at a
    row or two (a table not analyzed since it grew, a workspace missing from the statistics) it picks a
    nested loop that runs the subquery again for every member of the workspace: every run steps through
    the rows before the page once more, so a deep page cost the workspace's size times its offset
    (9 s for a filtered page at 800 of 870 members). ``ARRAY(subquery)`` is never made a join: it does
    not refer to the outer row, so PostgreSQL runs it once (an InitPlan). Beside it no workspace
    condition, which would offer a scan of the whole workspace that tests every row against the page's
    ids: the primary key is the one way to the rows, a probe per id. SQLite runs an uncorrelated ``IN``
    subquery once into a temporary table (``EXPLAIN QUERY PLAN``: "LIST SUBQUERY")."""
    if dialect == "postgresql":
        return (Member.id == any_(func.array(ids.scalar_subquery())),)
    return (_LIVE, Member.id.in_(ids.scalar_subquery()))


def _by_id(order_by: Sequence[ColumnElement[Any]]) -> bool:
    # Identity, not ==: SQL expressions compare into SQL.
    return len(order_by) == 1 and order_by[0] is BY_ID


def _nearer_end(
    offset: int,
    limit: int,
    total: int | None,
    order_by: Sequence[ColumnElement[Any]],
    reverse_order_by: Sequence[ColumnElement[Any]] | None,
) -> tuple[Sequence[ColumnElement[Any]], int, int] | None:
    """How to reach the page of ``limit`` rows after ``offset``: the ordering to skip rows in, how many
    rows to skip and how many to take; None for a first page, which skips nothing.

    Skipping costs a row each, so a page past the middle of a known total is counted from the far end in
    the reverse order: the last page of any workspace costs what the first does, and the worst skip is
    half the members. A total read a moment earlier than the page (another request adding a member in
    between) shifts that page by the difference, as it would shift any offset page between two requests."""
    if total is not None and reverse_order_by is not None and total - offset < offset < total:
        end = min(offset + limit, total)
        return reverse_order_by, total - end, end - offset
    if offset == 0:
        return None
    return order_by, offset, limit


async def first_page_total(
    session: AsyncSession, workspace: WorkspaceRef, where: ColumnElement[bool] | None, found: int, limit: int
) -> int:
    """The total of a first page that found ``found`` members of at most ``limit``: a page that is not
    full holds the whole match (an IdP's userName lookup, typically) and is its own total."""
    if limit > 0 and found < limit:
        return found
    return await count_members(session, workspace, where)
