"""Headers for every console and consent page: no framing (clickjacking), no caching, a strict CSP."""

from __future__ import annotations

from starlette.responses import Response

CSP = (
    "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; frame-ancestors 'none'"
)
# No form-action: the consent form's response redirects to the IdP, which Chrome checks against it.


def apply_security_headers(response: Response) -> None:
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = CSP
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Content-Type-Options"] = "nosniff"
