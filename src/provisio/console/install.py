"""Mount the console and the OAuth endpoints on the application."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from provisio.console import csrf
from provisio.console.auth_routes import router as auth_router
from provisio.console.billing_routes import router as billing_router
from provisio.console.deps import LoginRequired, PageError
from provisio.console.domains_routes import router as domains_router
from provisio.console.members_routes import router as members_router
from provisio.console.scim_routes import router as scim_router
from provisio.console.sessions import signed_in
from provisio.console.static import router as static_router
from provisio.console.templating import render
from provisio.oauth.routes import router as oauth_router


async def _login_required(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequired)
    return RedirectResponse(exc.location, status_code=303)


async def _page_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PageError)
    who = await signed_in(request)
    return render(request, "error.html", {"title": exc.title, "message": exc.message, "who": who}, exc.status)


async def _csrf_failed(request: Request, exc: Exception) -> Response:
    return render(
        request,
        "error.html",
        {
            "title": "This form has expired",
            "message": "The page was open too long, belongs to an earlier sign-in or came from another "
            "site. Nothing was changed. Go back, reload the page and try again.",
            "who": await signed_in(request),
        },
        403,
    )


def install_console(app: FastAPI) -> None:
    app.include_router(static_router)
    app.include_router(auth_router)
    app.include_router(scim_router)
    app.include_router(members_router)
    app.include_router(billing_router)
    app.include_router(domains_router)
    app.include_router(oauth_router)
    app.add_exception_handler(LoginRequired, _login_required)
    app.add_exception_handler(PageError, _page_error)
    app.add_exception_handler(csrf.CsrfFailed, _csrf_failed)
