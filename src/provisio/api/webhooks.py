"""``/api/v1/webhook-endpoints``: where host events are delivered as Standard Webhooks, the attempt log,
replays and secret rotation. Thin routes over ``provisio.domain.webhooks`` (the rules) and
``provisio.notify.webhooks`` (what goes into the outbox)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field, field_validator
from sqlalchemy.ext.asyncio import AsyncSession

from provisio.api.auth import database, operator_key
from provisio.api.problems import PROBLEM, Problem
from provisio.api.schemas import Body
from provisio.config import Settings
from provisio.db.models import WebhookAttempt, WebhookEndpoint, Workspace
from provisio.domain import webhooks as rules
from provisio.domain import workspaces as workspace_service
from provisio.notify import webhooks as delivery

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {**PROBLEM, "description": "No API key, or one unknown or revoked."},
    404: {**PROBLEM, "description": "No webhook endpoint (or event) with that id."},
    422: {**PROBLEM, "description": "A field is invalid (an unknown event type, a URL refused); `errors`."},
}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {**PROBLEM, "description": "The endpoint is disabled: enable it first."}
}

router = APIRouter(
    prefix="/api/v1", dependencies=[Depends(operator_key)], responses=ERRORS, tags=["webhooks"]
)
Limit = Annotated[int, Query(ge=1, le=200, description="Items per page.")]
PATH = "/webhook-endpoints"


# --- bodies ------------------------------------------------------------------------------------------


def _known_types(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    try:
        return rules.check_event_types(value)
    except rules.InvalidField as exc:
        raise ValueError(exc.detail) from exc


class EndpointCreate(Body):
    url: str = Field(min_length=1, max_length=rules.MAX_URL, description="An https URL on a public address.")
    event_types: list[str] | None = Field(
        None,
        max_length=rules.MAX_EVENT_TYPES,
        description="The event types it receives; omitted or empty: every type, those added later too.",
    )
    workspace: str | None = Field(
        None, max_length=63, description="A workspace's key: only its events (omitted: every workspace's)."
    )
    description: str = Field("", max_length=rules.MAX_DESCRIPTION)

    @field_validator("event_types", mode="after")
    @classmethod
    def _types(cls, value: list[str] | None) -> list[str] | None:
        return _known_types(value)


class EndpointUpdate(Body):
    url: str | None = Field(None, min_length=1, max_length=rules.MAX_URL)
    event_types: list[str] | None = Field(
        None, max_length=rules.MAX_EVENT_TYPES, description="[]: every type."
    )
    description: str | None = Field(None, max_length=rules.MAX_DESCRIPTION)

    @field_validator("event_types", mode="after")
    @classmethod
    def _types(cls, value: list[str] | None) -> list[str] | None:
        return _known_types(value)


class Rotation(Body):
    grace_seconds: int = Field(
        rules.DEFAULT_GRACE_SECONDS,
        ge=0,
        le=rules.MAX_GRACE_SECONDS,
        description="How long the current secret keeps signing beside the new one (0: it stops now).",
    )


class ReplayRequest(Body):
    event_id: str | None = Field(None, max_length=40, description="Send this one event again.")
    since: datetime | None = Field(None, description="Or every event that occurred from then on…")
    until: datetime | None = Field(None, description="…and before this (omitted: until now).")

    @field_validator("since", "until", mode="after")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("give a time zone (e.g. 2026-12-01T00:00:00Z)")
        return value


class Endpoint(BaseModel):
    id: str
    url: str
    event_types: list[str] = Field(description="Empty: every type.")
    workspace: str | None = Field(description="The workspace's key; null: every workspace's events.")
    description: str
    created_at: datetime
    updated_at: datetime
    disabled: bool
    disabled_at: datetime | None
    disabled_reason: str | None
    previous_secret_expires_at: datetime | None = Field(
        description="Until then the previous secret signs too (a rotation's grace); null: one secret."
    )


class CreatedEndpoint(Endpoint):
    secret: str = Field(description="The signing secret (whsec_…); shown only in this answer.")


class EndpointPage(BaseModel):
    items: list[Endpoint]
    next_cursor: str | None = Field(description="Pass as `after` for the next page; null on the last.")


class RotatedSecret(BaseModel):
    id: str
    secret: str = Field(description="The new signing secret; shown only in this answer.")
    previous_secret_expires_at: datetime | None


class Attempt(BaseModel):
    id: int
    event_id: str
    event_type: str
    attempt: int = Field(description="1 for the first attempt of a delivery, 2 for its first retry, …")
    started_at: datetime
    duration_ms: int
    status: str = Field(description="delivered or failed.")
    http_status: int | None
    error: str | None = Field(description="Why it failed when no HTTP status says it (timeout, …).")
    response_body: str | None = Field(description="The first KiB of the answer's body.")
    next_retry_at: datetime | None


class AttemptPage(BaseModel):
    items: list[Attempt]
    next_cursor: str | None = Field(description="Pass as `after` for older attempts; null on the last.")


class ReplayAnswer(BaseModel):
    enqueued: int = Field(description="Events enqueued for the endpoint, after what was queued already.")
    next_since: datetime | None = Field(
        description=f"More than {rules.REPLAY_LIMIT} events matched: replay again from here (null: all)."
    )


class TestAnswer(BaseModel):
    event_id: str = Field(description="The webhook-id of the ping.")


# --- helpers -----------------------------------------------------------------------------------------


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


@contextmanager
def _fields() -> Iterator[None]:
    """A field the rules refuse is a 422 naming it, like a field that does not validate."""
    try:
        yield
    except rules.InvalidField as exc:
        errors = [{"field": exc.field, "in": "body", "detail": exc.detail}]
        raise Problem(422, exc.detail, errors=errors) from exc


async def _check_url(request: Request, url: str) -> rules.CheckedUrl:
    with _fields():
        return await rules.check_url(url, allow_private=_settings(request).webhook_allow_private_urls)


def _endpoint(row: WebhookEndpoint, keys: dict[str, str]) -> dict[str, Any]:
    until = row.previous_secret_until
    return {
        "id": row.id,
        "url": row.url,
        "event_types": list(row.event_types),
        "workspace": keys.get(row.workspace_id) if row.workspace_id else None,
        "description": row.description,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "disabled": row.disabled_at is not None,
        "disabled_at": row.disabled_at,
        "disabled_reason": row.disabled_reason,
        "previous_secret_expires_at": until if row.previous_secret_sealed and until else None,
    }


async def _shown(session: AsyncSession, row: WebhookEndpoint) -> Endpoint:
    keys = await rules.workspace_keys(session, [row.workspace_id] if row.workspace_id else [])
    return Endpoint(**_endpoint(row, keys))


def _attempt(row: WebhookAttempt) -> Attempt:
    return Attempt(
        id=row.id,
        event_id=row.event_id,
        event_type=row.event_type,
        attempt=row.attempt,
        started_at=row.started_at,
        duration_ms=row.duration_ms,
        status=row.outcome,
        http_status=row.http_status,
        error=row.error,
        response_body=row.response_body,
        next_retry_at=row.next_retry_at,
    )


EndpointId = str  # we_…


# --- routes ------------------------------------------------------------------------------------------


@router.post(PATH, status_code=201, response_model=CreatedEndpoint, summary="Register a webhook endpoint")
async def create_endpoint(request: Request, response: Response, body: EndpointCreate) -> CreatedEndpoint:
    """Deliver host events to `url` from now on: every workspace's, or only `workspace`'s; of
    `event_types` (omitted or empty: all). The answer holds the signing secret, shown only now."""
    db = database(request)
    workspace: Workspace | None = None
    if body.workspace is not None:
        async with db.reading() as session:
            workspace = await workspace_service.get_workspace(session, body.workspace)
        if workspace is None:
            detail = f"There is no workspace with the key {body.workspace!r}."
            raise Problem(422, detail, errors=[{"field": "workspace", "in": "body", "detail": detail}])
    checked = await _check_url(request, body.url)  # resolves: outside any transaction
    async with db.writing() as session:
        with _fields():
            created = await rules.create_endpoint(
                session,
                _settings(request).secret_key,
                checked,
                event_types=body.event_types,
                workspace=workspace,
                description=body.description,
            )
        keys = {workspace.id: workspace.key} if workspace is not None else {}
        data = CreatedEndpoint(**_endpoint(created.endpoint, keys), secret=created.secret)
    response.headers["Location"] = f"{router.prefix}{PATH}/{data.id}"
    return data


@router.get(PATH, response_model=EndpointPage, summary="List webhook endpoints")
async def list_endpoints(
    request: Request,
    after: Annotated[str, Query(max_length=40, description="The `next_cursor` of the previous page.")] = "",
    limit: Limit = 50,
) -> EndpointPage:
    """Every endpoint, oldest first (the secrets are never shown again)."""
    async with database(request).reading() as session:
        rows = await rules.list_endpoints(session, after=after, limit=limit + 1)
        keys = await rules.workspace_keys(session, [r.workspace_id for r in rows if r.workspace_id])
    items = [Endpoint(**_endpoint(row, keys)) for row in rows[:limit]]
    return EndpointPage(items=items, next_cursor=items[-1].id if len(rows) > limit else None)


@router.get(PATH + "/{endpoint_id}", response_model=Endpoint, summary="Read a webhook endpoint")
async def get_endpoint(request: Request, endpoint_id: EndpointId) -> Endpoint:
    async with database(request).reading() as session:
        return await _shown(session, await rules.get_endpoint(session, endpoint_id))


@router.patch(PATH + "/{endpoint_id}", response_model=Endpoint, summary="Change a webhook endpoint")
async def update_endpoint(request: Request, endpoint_id: EndpointId, body: EndpointUpdate) -> Endpoint:
    """`url` (checked again, like a new one), `event_types`, `description`; a field left out keeps its
    value. Deliveries already queued go to the new URL."""
    db = database(request)
    async with db.reading() as session:
        await rules.get_endpoint(session, endpoint_id)  # an unknown id is a 404 before any lookup
    checked = await _check_url(request, body.url) if body.url is not None else None
    async with db.writing() as session:
        row = await rules.get_endpoint(session, endpoint_id)
        with _fields():
            await rules.update_endpoint(
                session, row, checked=checked, event_types=body.event_types, description=body.description
            )
        return await _shown(session, row)


@router.delete(PATH + "/{endpoint_id}", status_code=204, summary="Delete a webhook endpoint")
async def delete_endpoint(request: Request, endpoint_id: EndpointId) -> Response:
    """It, its attempt log and the deliveries queued for it go."""
    async with database(request).writing() as session:
        await delivery.delete_endpoint(session, await rules.get_endpoint(session, endpoint_id))
    return Response(status_code=204)


@router.post(PATH + "/{endpoint_id}/enable", response_model=Endpoint, summary="Enable a disabled endpoint")
async def enable_endpoint(request: Request, endpoint_id: EndpointId) -> Endpoint:
    """Deliver to it again, from the events that occur now on; replay those it missed."""
    async with database(request).writing() as session:
        row = await rules.enable(session, await rules.get_endpoint(session, endpoint_id))
        return await _shown(session, row)


@router.post(
    PATH + "/{endpoint_id}/rotate-secret", response_model=RotatedSecret, summary="Rotate the signing secret"
)
async def rotate_secret(
    request: Request, endpoint_id: EndpointId, body: Rotation | None = None
) -> RotatedSecret:
    """A new secret, shown only in this answer. During `grace_seconds` (default a day) every delivery
    carries both signatures, so the receiver can switch without losing one."""
    grace = body.grace_seconds if body is not None else rules.DEFAULT_GRACE_SECONDS
    async with database(request).writing() as session:
        row = await rules.get_endpoint(session, endpoint_id)
        with _fields():
            try:
                secret = await rules.rotate_secret(
                    session, _settings(request).secret_key, row, grace_seconds=grace
                )
            except rules.SecretUnreadable as exc:
                raise Problem(
                    409,
                    "The current secret cannot be read with this PROVISIO_SECRET_KEY: rotate with "
                    '{"grace_seconds": 0}.',
                ) from exc
        until = row.previous_secret_until if row.previous_secret_sealed else None
    return RotatedSecret(id=row.id, secret=secret, previous_secret_expires_at=until)


@router.get(PATH + "/{endpoint_id}/deliveries", response_model=AttemptPage, summary="The delivery attempts")
async def list_deliveries(
    request: Request,
    endpoint_id: EndpointId,
    event_id: Annotated[str, Query(max_length=40, description="Only the attempts of this event.")] = "",
    status: Annotated[str, Query(pattern="^(delivered|failed)?$", description="delivered or failed.")] = "",
    after: Annotated[
        str, Query(pattern=r"^\d{0,18}$", description="The `next_cursor` of the previous page.")
    ] = "",
    limit: Limit = 50,
) -> AttemptPage:
    """Every attempt to deliver to the endpoint, newest first."""
    async with database(request).reading() as session:
        row = await rules.get_endpoint(session, endpoint_id)
        found = await rules.attempts(
            session,
            row.id,
            before=int(after) if after else None,
            event_id=event_id or None,
            outcome=status or None,
            limit=limit + 1,
        )
    items = [_attempt(a) for a in found[:limit]]
    return AttemptPage(items=items, next_cursor=str(items[-1].id) if len(found) > limit else None)


@router.post(
    PATH + "/{endpoint_id}/replay",
    status_code=202,
    response_model=ReplayAnswer,
    responses=CONFLICT,
    summary="Send events again",
)
async def replay(request: Request, endpoint_id: EndpointId, body: ReplayRequest) -> ReplayAnswer:
    """Enqueue one event (`event_id`) or the endpoint's events of a time range (`since`, `until`) for it
    again, after the deliveries already queued; at most 1000 at a time. They carry their own ids."""
    async with database(request).writing() as session:
        row = await rules.get_endpoint(session, endpoint_id)
        with _fields():
            done = await delivery.replay(
                session, row, event_id=body.event_id, since=body.since, until=body.until
            )
    return ReplayAnswer(enqueued=done.enqueued, next_since=done.next_since)


@router.post(
    PATH + "/{endpoint_id}/test",
    status_code=202,
    response_model=TestAnswer,
    responses=CONFLICT,
    summary="Send a test ping",
)
async def send_test(request: Request, endpoint_id: EndpointId) -> TestAnswer:
    """A `webhook.test` event (not a host event: never listed, never replayed), signed like any other;
    one attempt, seen in the deliveries."""
    async with database(request).writing() as session:
        row = await rules.get_endpoint(session, endpoint_id)
        if row.disabled_at is not None:
            raise Problem(409, "The endpoint is disabled: enable it before testing it.")
        keys = await rules.workspace_keys(session, [row.workspace_id] if row.workspace_id else [])
        event_id = await delivery.send_test(session, row, keys.get(row.workspace_id or ""))
    return TestAnswer(event_id=event_id)
