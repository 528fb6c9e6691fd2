"""``/api/v1/events``: the host application pulls the changes it must learn of, oldest first, with a
cursor that no late commit can pass (``provisio.domain.host_events``)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from provisio.api.auth import database, operator_key
from provisio.api.problems import Problem
from provisio.api.routes import ERRORS
from provisio.domain import host_events
from provisio.domain import workspaces as workspace_service
from provisio.domain.host_events import Position

router = APIRouter(prefix="/api/v1", dependencies=[Depends(operator_key)], responses=ERRORS, tags=["events"])

MAX_LIMIT = 500


class EventType(StrEnum):
    member_created = host_events.MEMBER_CREATED
    member_updated = host_events.MEMBER_UPDATED
    member_deactivated = host_events.MEMBER_DEACTIVATED
    member_reactivated = host_events.MEMBER_REACTIVATED
    member_deleted = host_events.MEMBER_DELETED
    workspace_scim_enabled = host_events.WORKSPACE_SCIM_ENABLED
    workspace_scim_disabled = host_events.WORKSPACE_SCIM_DISABLED
    seats_purchased = host_events.SEATS_PURCHASED


class ActorKind(StrEnum):
    idp = host_events.IDP
    admin = host_events.ADMIN
    operator = host_events.OPERATOR
    system = host_events.SYSTEM


class EventActor(BaseModel):
    type: ActorKind = Field(
        description="`idp`: an identity provider's SCIM client; `admin`: a workspace admin in the console; "
        "`operator`: the CLI or an operator API key; `system`: provisio itself."
    )
    id: str | None = Field(
        description="The OAuth client id or SCIM bearer token id (idp), the admin's id, the API key's id "
        "(null for the CLI)."
    )
    name: str | None = Field(
        description="How people know it: the client, the admin's e-mail, the key's name."
    )


class Event(BaseModel):
    id: str = Field(description="`evt_…`, unique: a consumer that may see an event twice deduplicates on it.")
    type: EventType
    workspace: str = Field(description="The workspace's key.")
    workspace_id: str
    occurred_at: str = Field(description="When the change was made (RFC 3339, UTC).")
    actor: EventActor
    data: dict[str, Any] = Field(
        description="Member events: `member` (`id`, `userName`, `emails`, `name`, `active`, `externalId`, "
        "`enterprise`, and `scim`, the whole SCIM User document), and for a change `changed` (the "
        "attributes it moved). `seats.purchased`: `quantity`, `total`, `how` (`auto_charge` or `manual`), "
        "`reason`. `workspace.scim_*`: `scim_enabled`, `method`."
    )


class EventPage(BaseModel):
    data: list[Event] = Field(description="Oldest first.")
    next_cursor: str = Field(
        description="Always present: pass it as `after` next time. The cursor of the last event returned, "
        "or, when the page is not full, of the newest event readable before the read, which may be past "
        "events a filter left out (never past one it selects); the `after` you sent when nothing new has "
        "happened."
    )
    has_more: bool = Field(description="More events are readable at once: ask again without waiting.")


class EventCursor(BaseModel):
    cursor: str = Field(description="After every event readable now: start polling here to skip history.")


_BAD_CURSOR = (
    "is not a cursor this server made: pass the `next_cursor` of an earlier answer, the `cursor` of "
    "GET /api/v1/events/cursor, or no `after` to read from the oldest event kept."
)


def _position(after: str) -> Position:
    try:
        return Position.decode(after)
    except ValueError:
        detail = f"`after` {after[:64]!r} {_BAD_CURSOR}"
        raise Problem(422, detail, errors=[{"field": "after", "in": "query", "detail": detail}]) from None


def _types(raw: str) -> list[str] | None:
    types = [t.strip() for t in raw.split(",") if t.strip()]
    unknown = host_events.unknown_types(types)
    if unknown:
        known = ", ".join(sorted(host_events.EVENT_TYPES))
        detail = f"Unknown event type(s) {', '.join(unknown)}: the types are {known}."
        raise Problem(422, detail, errors=[{"field": "types", "in": "query", "detail": detail}])
    return types or None


def _json(body: dict[str, Any]) -> Response:
    # Events carry whole SCIM documents, up to 500 of them: serialised once, by orjson, not validated again.
    return Response(orjson.dumps(body), media_type="application/json")


@router.get("/events", response_model=EventPage, summary="Read events")
async def list_events(
    request: Request,
    after: Annotated[
        str,
        Query(
            max_length=64,
            description="The `next_cursor` of the previous answer (or the `cursor` of "
            "GET /api/v1/events/cursor). Without it, from the oldest event kept.",
        ),
    ] = "",
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Events per answer.")] = 100,
    workspace: Annotated[
        str, Query(max_length=63, description="Only this workspace's events (its key).")
    ] = "",
    types: Annotated[
        str, Query(max_length=1000, description="Only these types, comma-separated (e.g. `member.created`).")
    ] = "",
) -> Response:
    """The changes the host application must learn of, oldest first: members created, updated,
    deactivated, reactivated and deleted, SCIM turned on or off, seats bought. Each change's event is
    written in the transaction of the change, so it exists exactly when the change does.

    **Polling.** Keep the `next_cursor` of each answer and pass it as `after` next time; it is always
    present (when nothing new happened it is the `after` you sent; with a filter it also moves past the
    events the filter leaves out). An event becomes readable only once
    no transaction that started before it can still commit, so a cursor never passes an event that
    commits later: polling from a cursor misses nothing and repeats nothing. A filter (`workspace`,
    `types`) keeps that guarantee for what it selects. Events are kept `PROVISIO_EVENT_RETENTION_DAYS`
    (30 by default); a cursor older than that resumes at the oldest kept. To start from now instead of
    the oldest kept event, take the `cursor` of `GET /api/v1/events/cursor`."""
    position = _position(after) if after else host_events.START
    wanted = _types(types)
    async with database(request).reading() as session:
        workspace_id = None
        if workspace:
            workspace_id = (await workspace_service.require_workspace(session, workspace)).id
        page = await host_events.read_page(
            session, position, limit=limit, workspace_id=workspace_id, types=wanted
        )
    return _json(
        {
            "data": [e.as_json() for e in page.events],
            "next_cursor": page.next.encode(),
            "has_more": page.has_more,
        }
    )


@router.get("/events/cursor", response_model=EventCursor, summary="The cursor of now")
async def events_cursor(request: Request) -> EventCursor:
    """A cursor after every event readable now: an integration that starts here reads only what happens
    from now on (and whatever is still being committed), without the history."""
    async with database(request).reading() as session:
        return EventCursor(cursor=(await host_events.tail(session)).encode())


@router.get("/events/{event_id}", response_model=Event, summary="Read an event")
async def get_event(request: Request, event_id: str) -> Response:
    """One event by its `id` (while it is kept)."""
    async with database(request).reading() as session:
        event = await host_events.get_event(session, event_id[:64])
    if event is None:
        raise Problem(404, f"No event {event_id[:64]!r}: it never existed, or it is past the retention.")
    return _json(event.as_json())
