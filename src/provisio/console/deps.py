"""Who may see a console page: a signed-in admin, and for workspace pages an admin of that workspace."""

from __future__ import annotations

from urllib.parse import quote

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from provisio.console.sessions import SignedIn, signed_in
from provisio.db.engine import Database
from provisio.db.models import Workspace
from provisio.domain import admins as admin_service
from provisio.domain import workspaces as workspace_service


class LoginRequired(Exception):
    def __init__(self, next_path: str) -> None:
        self.location = "/console/login?next=" + quote(next_path, safe="")


class PageError(Exception):
    def __init__(self, status: int, title: str, message: str) -> None:
        self.status, self.title, self.message = status, title, message


def safe_next(value: str | None) -> str:
    """Only a path on this site: never ``//host`` or an absolute URL (open redirect)."""
    if value and value.startswith("/") and not value.startswith(("//", "/\\")):
        return value
    return "/console/"


def request_path(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


async def require_admin(request: Request) -> SignedIn:
    who = await signed_in(request)
    if who is None:
        raise LoginRequired(request_path(request) if request.method == "GET" else "/console/")
    return who


async def may_administer(session: AsyncSession, who: SignedIn, workspace_id: str) -> bool:
    """Whether this session may act as an admin of the workspace: the account administers it, and the
    session is not limited to another workspace (one begun with a sign-in link)."""
    return who.may_reach(workspace_id) and await admin_service.is_workspace_admin(
        session, who.admin_id, workspace_id
    )


async def admin_workspace(request: Request, workspace_key: str, who: SignedIn) -> Workspace:
    db: Database = request.app.state.db
    async with db.reading() as session:
        workspace = await workspace_service.get_workspace(session, workspace_key)
        if workspace is None or not await may_administer(session, who, workspace.id):
            # The same answer whether or not the workspace exists, for a limited session too.
            if who.workspace_id is not None:
                message = (
                    "You came in through your application's sign-in link, which opens one workspace only. "
                    "To reach another, sign out and sign in with your password."
                )
            else:
                message = f"None of the workspaces you administer has the key {workspace_key!r}."
            raise PageError(404, "Workspace not found", f"{message} You are signed in as {who.email}.")
        return workspace
