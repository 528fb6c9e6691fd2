"""The confirmation step of a console form that is hard to undo: a GET of the form's URL renders a page
that says what will happen, with the real (POST) form; so it works without JavaScript, and a reload or
a link followed by mistake changes nothing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from provisio.console.sessions import SignedIn
from provisio.console.templating import render
from provisio.db.models import Workspace


@dataclass(frozen=True)
class Confirmation:
    title: str
    message: str
    button: str
    action: str  # where the form posts
    fields: Sequence[tuple[str, str]]  # hidden fields of the form (csrf added by the template)
    page_name: str  # the page it belongs to, linked from the breadcrumb
    page_path: str

    @property
    def cancel_url(self) -> str:
        query = [(k, v) for k, v in self.fields if k in ("q", "status", "page") and v]
        return self.page_path + ("?" + urlencode(query) if query else "")


def render_confirmation(
    request: Request, workspace: Workspace, who: SignedIn, confirm: Confirmation, *, nav: str
) -> Response:
    context = {"workspace": workspace, "who": who, "confirm": confirm, "nav_current": nav}
    return render(request, "confirm.html", context)
