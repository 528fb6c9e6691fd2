"""Jinja2 templates (autoescaped) and the one way console pages are rendered."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.templating import Jinja2Templates
from starlette.requests import Request
from starlette.responses import HTMLResponse

from provisio.console import csrf
from provisio.console.security import apply_security_headers

TEMPLATES_DIR = Path(__file__).parent / "templates"
templates = Jinja2Templates(directory=str(TEMPLATES_DIR))


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, status: int = 200
) -> HTMLResponse:
    values = {"csrf_field": csrf.FIELD, "csrf_token": csrf.form_token(request)}
    values.update(context or {})
    response = templates.TemplateResponse(request, name, values, status_code=status)
    csrf.attach_cookie(request, response)
    apply_security_headers(response)
    return response
