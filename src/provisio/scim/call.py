"""One SCIM request: what every handler needs, and who the caller is once authenticated."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from provisio.config import Settings
from provisio.db.engine import Database
from provisio.db.models import Workspace
from provisio.scim.auth import Caller, authenticate


@dataclass
class ScimCall:
    request: Request
    db: Database
    settings: Settings
    workspace_key: str
    caller: Caller | None = None
    # Copied at authentication: a failed write's rollback expires the ORM workspace, yet its failure is
    # still logged against the workspace.
    workspace_id: str = ""
    base: str = ""  # the Tenant URL

    async def authenticate(self, session: AsyncSession) -> Caller:
        """Check the bearer credential in ``session``, the one the request then reads or writes in: a
        separate session would cost a connection checkout and, on PostgreSQL, round trips."""
        caller = await authenticate(session, self.workspace_key, self.request.headers.get("authorization"))
        self.caller = caller
        self.workspace_id = caller.workspace.id
        self.base = self.settings.tenant_url(caller.workspace.key)
        return caller

    @property
    def workspace(self) -> Workspace:
        assert self.caller is not None, "authenticate() first"
        return self.caller.workspace

    @property
    def actor(self) -> str:
        assert self.caller is not None, "authenticate() first"
        return self.caller.actor

    def location(self, member_id: str) -> str:
        return f"{self.base}/Users/{member_id}"
