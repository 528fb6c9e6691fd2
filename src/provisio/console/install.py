"""Mount the console (its pages, the consent page among them) on the application."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from provisio.console import csrf
from provisio.console.admins_routes import router as admins_router
from provisio.console.auth_routes import router as auth_router
from provisio.console.billing_routes import router as billing_router
from provisio.console.consent_routes import router as consent_router
from provisio.console.deps import LoginRequired, PageError
from provisio.console.domains_routes import router as domains_router
from provisio.console.log_routes import router as log_router
from provisio.console.members_routes import router as members_router
from provisio.console.notifications_routes import router as notifications_router
from provisio.console.portal_routes import router as portal_router
from provisio.console.scim_routes import router as scim_router
from provisio.console.sessions import signed_in
from provisio.console.static import router as static_router
from provisio.console.templating import render
from provisio.console.webhooks_routes import router as webhooks_router
from provisio.surfaces import Surface, surface


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


# What a person is told for the HTTP errors that the framework raises before a console handler runs:
# an unknown page, a method the page does not take, a body that is not a form.
_HTTP_ERRORS = {
    404: ("Page not found", "There is no console page at this address."),
    405: ("Not allowed here", "This page cannot be used that way. Go back and use its buttons and forms."),
    400: ("Unreadable form", "The form could not be read. Go back, reload the page and try again."),
}


def _is_console_page(request: Request) -> bool:
    return surface(request.url.path) is Surface.PAGE


async def _http_error(request: Request, exc: Exception) -> Response:
    """Console pages answer a console page, never the framework's JSON; other paths keep it."""
    assert isinstance(exc, HTTPException)
    if not _is_console_page(request):
        return await http_exception_handler(request, exc)
    title, message = _HTTP_ERRORS.get(
        exc.status_code, ("Request refused", "The request could not be handled.")
    )
    context = {"title": title, "message": message, "who": await signed_in(request)}
    response = render(request, "error.html", context, exc.status_code)
    response.headers.update(exc.headers or {})  # Allow, for a 405
    return response


async def _invalid_request(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    if not _is_console_page(request):
        return await request_validation_exception_handler(request, exc)
    title, message = _HTTP_ERRORS[400]
    return render(
        request, "error.html", {"title": title, "message": message, "who": await signed_in(request)}, 400
    )


def install_console(app: FastAPI) -> None:
    app.include_router(static_router)
    app.include_router(auth_router)
    app.include_router(scim_router)
    app.include_router(members_router)
    app.include_router(log_router)
    app.include_router(billing_router)
    app.include_router(domains_router)
    app.include_router(admins_router)
    app.include_router(notifications_router)
    app.include_router(webhooks_router)
    app.include_router(consent_router)
    app.include_router(portal_router)
    app.add_exception_handler(LoginRequired, _login_required)
    app.add_exception_handler(PageError, _page_error)
    app.add_exception_handler(csrf.CsrfFailed, _csrf_failed)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
