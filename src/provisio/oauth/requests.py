"""Authlib's request objects over Starlette requests (Authlib ships no FastAPI/Starlette server integration).

The body is read asynchronously up front; Authlib then sees plain, already-parsed data.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from authlib.oauth2.rfc6749 import OAuth2Payload, OAuth2Request
from starlette.datastructures import Headers
from starlette.requests import Request

Pairs = list[tuple[str, str]]


class PairsPayload(OAuth2Payload):
    """Parameters as ordered (name, value) pairs; ``data`` keeps the first value, ``datalist`` all of them."""

    def __init__(self, pairs: Pairs) -> None:
        self._datalist: defaultdict[str, list[str]] = defaultdict(list)
        for key, value in pairs:
            self._datalist[key].append(value)
        self._data = {key: values[0] for key, values in self._datalist.items()}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


class StarletteOAuth2Request(OAuth2Request):
    """An ``OAuth2Request`` built from data already read off a Starlette request.

    Transport security is a deployment concern here (TLS usually ends at a proxy, so the URL the app
    sees is ``http``); ``PROVISIO_BASE_URL`` must be https in production, so Authlib's
    ``InsecureTransportError`` check is not repeated on the internal URL.
    """

    def __init__(self, method: str, uri: str, headers: Headers, query: Pairs, form: Pairs, payload: Pairs):
        # Mirror OAuth2Request.__init__ without its transport check or deprecated ``body``.
        self.method = method
        self.uri = uri
        self.headers = headers
        self._body = None
        self.client: Any = None
        self.auth_method: str | None = None
        self.user: Any = None
        self.authorization_code: Any = None
        self.refresh_token: Any = None
        self.credential: Any = None
        self._scope: str | None = None
        self._args = dict(query)
        self._form = dict(form)
        self.payload = PairsPayload(payload)

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


async def read_oauth_request(request: Request, *, query_params: bool) -> StarletteOAuth2Request:
    """Snapshot ``request`` for Authlib. ``query_params`` decides whether the query string carries OAuth
    parameters (authorization endpoint) or not (token and revocation endpoints: body only, RFC 6749 §3.2)."""
    query: Pairs = list(request.query_params.multi_items())
    form: Pairs = []
    if request.method == "POST":
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            data = await request.form()
            form = [(k, v) for k, v in data.multi_items() if isinstance(v, str)]
    payload = query + form if query_params else form
    return StarletteOAuth2Request(request.method, str(request.url), request.headers, query, form, payload)
