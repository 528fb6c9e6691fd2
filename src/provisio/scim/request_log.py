"""What the provisioning log keeps of a SCIM request: who sent it with which credential, what it did or
why it failed, the redacted body, its request id and how long it took (``provisio.domain.events``)."""

from __future__ import annotations

import time
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from provisio import request_id
from provisio.db.models import Member
from provisio.domain.events import (
    AGGREGATED_STATUSES,
    FAILURE,
    SUCCESS,
    Event,
    record_failure,
    redact_body,
)
from provisio.metrics import provisioning_event
from provisio.notify.failures import Failure, classify, failure_from_error, note_failure
from provisio.scim.auth import Unauthorized, WorkspaceDisabled, refusal
from provisio.scim.call import ScimCall
from provisio.scim.errors import ScimError

log = structlog.get_logger("provisio.scim")


def _duration_ms(call: ScimCall) -> int:
    return int((time.perf_counter() - call.started) * 1000)


def _body(call: ScimCall) -> Any:
    return getattr(call.body, "value", None)  # the parsed JSON (provisio.scim.routes.JsonBody)


def success(call: ScimCall, action: str, status: int, member: Member) -> Event:
    """The event of a change, written with it (its values are bound parameters of the change's
    statement or transaction)."""
    assert call.caller is not None
    return Event(
        call.workspace_id,
        call.actor,
        action,
        SUCCESS,
        status,
        member.id,
        member.user_name,
        request_id=request_id.current(),
        credential=call.caller.credential,
        user_agent=call.request.headers.get("user-agent"),
        duration_ms=_duration_ms(call),
        request_body=redact_body(_body(call)),
    )


async def log_failure(call: ScimCall, error: ScimError) -> None:
    """Log a failed request in the workspace named by its URL. A 401 is logged only when that workspace
    exists (strangers probing keys write nothing) and, like a 429 and a disabled workspace's 403, counted
    on a row per minute rather than added as one; none keeps the body of a caller that was not let in."""
    caller = call.caller or call.refused_caller
    workspace_id, actor, credential = "", "", None
    body: Any = None
    # A disabled workspace's refusals are counted like 401s: its IdP may keep sending for days.
    repeatable = isinstance(error, WorkspaceDisabled)
    if caller is not None:
        workspace_id, actor, credential = caller.workspace.id, caller.actor, caller.credential
        body = None if error.status == 429 or repeatable else _body(call)
    elif isinstance(error, Unauthorized):
        try:
            async with call.db.reading() as session:
                authorization = call.request.headers.get("authorization")
                refused = await refusal(session, call.workspace_key, authorization)
        except Exception:
            log.warning("events.refusal_lookup_failed", workspace=call.workspace_key, exc_info=True)
            return
        if refused is None:
            return
        workspace_id, actor, credential = refused.workspace_id, refused.actor, refused.credential
    if not workspace_id:
        return  # refused before anyone was known (a request that never reached authentication)
    user_name = getattr(call.body, "user_name", None) if body is not None else None
    # A repeated refusal's row stands for many requests: no single member or body describes them.
    member_id = None if repeatable or error.status in AGGREGATED_STATUSES else call.member_id
    event = Event(
        workspace_id,
        actor,
        call.action,
        FAILURE,
        error.status,
        member_id,
        user_name,
        error.detail,
        request_id=request_id.current(),
        credential=credential,
        user_agent=call.request.headers.get("user-agent"),
        scim_type=error.scim_type,
        duration_ms=_duration_ms(call),
        request_body=redact_body(body),
        repeatable=repeatable,
    )
    failure = failure_from_error(workspace_id, call.action, error, user_name=user_name, member_id=member_id)
    also = None
    if _to_note(failure, credential):  # the admins may have to hear of it

        async def also(session: AsyncSession) -> None:
            await note_failure(session, failure, call.settings)

    if await record_failure(call.db, event, also):
        provisioning_event(call.action, FAILURE)


# When this process last noted a repeated refusal for mail, per (workspace, status, credential); the
# oldest entries go first past the bound, so a flood of distinct keys cannot grow it.
_NOTED: dict[tuple[str, int, str | None], float] = {}
NOTE_EVERY_SECONDS = 60.0
MAX_NOTED = 10_000


def _to_note(failure: Failure, credential: str | None) -> bool:
    """Whether a failure goes to ``note_failure`` (the failure e-mails). A 401 does only for one of the
    workspace's own credentials (revoked, expired, of the other method): a stranger who guessed the
    workspace key must not mail its admins, nor cost a write transaction per request. A refusal that
    repeats (401, 429) is noted once a minute per process; its aggregated log row counts the others."""
    if classify(failure) is None:
        return False
    if failure.status == 401 and credential is None:
        return False
    if failure.status not in AGGREGATED_STATUSES:
        return True
    key = (failure.workspace_id, failure.status, credential)
    now = time.monotonic()
    last = _NOTED.get(key)
    if last is not None and now - last < NOTE_EVERY_SECONDS:
        return False
    _NOTED.pop(key, None)
    _NOTED[key] = now
    while len(_NOTED) > MAX_NOTED:
        del _NOTED[next(iter(_NOTED))]
    return True
