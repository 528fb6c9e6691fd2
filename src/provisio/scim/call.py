"""One SCIM request: what every handler needs, and who the caller is once authenticated."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from provisio.config import Settings
from provisio.db.engine import Database
from provisio.domain import members
from provisio.domain.host_events import Actor
from provisio.domain.workspaces import WorkspaceIdentity
from provisio.ratelimit import Limiter
from provisio.scim.auth import Caller, WorkspaceDisabled, authenticate, authenticate_with_member
from provisio.scim.errors import RateLimited


@dataclass
class ScimCall:
    request: Request
    db: Database
    settings: Settings
    workspace_key: str
    limiter: Limiter | None = None  # the per-workspace rate limit; None: off
    caller: Caller | None = None
    # Set at authentication.
    workspace_id: str = ""
    base: str = ""  # the Tenant URL
    # The request body once read: the stream can be read only once, and a request may run twice
    # (``provisio.db.availability.retry_once``).
    body: Any = None
    admitted: bool = False  # counted by the rate limit, once however many times the request runs
    # What the provisioning log names: the operation (the route's; a handler may refine it), the member
    # of the URL, when the request started, and the caller a 429 refused before it was recorded.
    action: str = "request"
    member_id: str | None = None
    started: float = field(default_factory=time.perf_counter)
    refused_caller: Caller | None = None

    def start_over(self) -> ScimCall:
        """The call as it was before authentication, body kept: for a run of the request."""
        self.caller, self.workspace_id, self.base, self.refused_caller = None, "", "", None
        return self

    async def authenticate(self, session: AsyncSession) -> Caller:
        """Check the bearer credential in ``session``, the one the request then reads or writes in: a
        separate session would cost a connection checkout and, on PostgreSQL, round trips."""
        self._refuse_early()
        authorization = self.request.headers.get("authorization")
        try:
            caller = await authenticate(session, self.workspace_key, authorization)
        except WorkspaceDisabled as refused:
            self.refused_caller = refused.caller  # for the provisioning log
            raise
        await self._admit(caller)
        self._authenticated(caller)
        return caller

    async def authenticate_with_member(
        self, session: AsyncSession, member_id: str, *, lock: bool = False, as_row: bool = False
    ) -> Any:
        """``authenticate``, and the workspace's member ``member_id`` read by the same statement (see
        ``provisio.scim.auth.authenticate_with_member``); 404 when there is none."""
        self._refuse_early()
        try:
            caller, member = await authenticate_with_member(
                session,
                self.workspace_key,
                self.request.headers.get("authorization"),
                member_id,
                lock=lock,
                as_row=as_row,
            )
        except WorkspaceDisabled as refused:
            self.refused_caller = refused.caller
            raise
        await self._admit(caller)
        self._authenticated(caller)
        if member is None:
            raise members.not_found(member_id)
        return member

    async def _admit(self, caller: Caller) -> None:
        """The workspace's rate limit, keyed on the authenticated workspace: requests without its
        credentials cannot spend its budget. Checked before the caller is recorded; a refusal is counted
        on the provisioning log's one row for the minute (``provisio.domain.events``): a flood of refused
        requests adds no rows, but each still costs one upsert of that row (a write transaction). A
        request that authenticates twice (a PUT retried in the locking transaction, a request run again on a
        fresh database connection) is counted once."""
        if self.limiter is None or self.admitted:
            return
        self.admitted = True
        key = f"scim:{caller.workspace.id}"
        refused = await self.limiter.admit(key)
        if refused is not None:
            self.limiter.remember_refusal(self._credential(), key, caller)
            self.refused_caller = caller
            raise self._rate_limited(refused.retry_after)

    def _refuse_early(self) -> None:
        """429 before any statement for a credential this process just refused (``Limiter.refused_early``)."""
        if self.limiter is None or self.admitted:
            return
        refused = self.limiter.refused_early(self._credential())
        if refused is not None:
            self.admitted = True
            self.refused_caller = refused.who if isinstance(refused.who, Caller) else None
            raise self._rate_limited(refused.retry_after)

    def _credential(self) -> str:
        return f"{self.workspace_key}\x00{self.request.headers.get('authorization', '')}"

    def _rate_limited(self, wait_seconds: float) -> RateLimited:
        assert self.limiter is not None
        rate = self.limiter.rate
        return RateLimited(wait_seconds, rate.per_second, rate.burst)

    def _authenticated(self, caller: Caller) -> None:
        self.caller = caller
        self.workspace_id = caller.workspace.id
        self.base = self.settings.tenant_url(caller.workspace.key)

    @property
    def workspace(self) -> WorkspaceIdentity:
        assert self.caller is not None, "authenticate() first"
        return self.caller.workspace

    @property
    def actor(self) -> str:
        assert self.caller is not None, "authenticate() first"
        return self.caller.actor

    @property
    def event_actor(self) -> Actor:
        assert self.caller is not None, "authenticate() first"
        return self.caller.event_actor

    def location(self, member_id: str) -> str:
        return f"{self.base}/Users/{member_id}"
