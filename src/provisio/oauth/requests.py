"""Authlib's request objects over Starlette requests (Authlib ships no FastAPI/Starlette server integration).

Every OAuth parameter is parsed here, strictly, before Authlib or the database sees it: names and values
must be UTF-8 once percent-decoded, each parameter the server reads must match its syntax (RFC 6749
Appendix A, RFC 7636 §4, RFC 7009 §2.1) and come at most once (RFC 6749 §3.1, §3.2), and nothing else is
passed on. So no value can carry a NUL to PostgreSQL, a quote into an error description Authlib refuses
to build, or a megabyte into a query; what does not fit is the client's ``invalid_request``.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_to_bytes

from authlib.oauth2.rfc6749 import InvalidRequestError, OAuth2Payload, OAuth2Request
from starlette.datastructures import Headers
from starlette.requests import Request

from provisio.domain.redirect_uris import MAX_LENGTH as REDIRECT_URI_MAX_LENGTH

Pairs = list[tuple[str, str]]

# A token or revocation request is a handful of short parameters; the largest legitimate one is a few
# hundred bytes.
MAX_BODY_BYTES = 16 * 1024
FORM_TYPE = "application/x-www-form-urlencoded"

_VSCHAR = r"[\x20-\x7e]"  # RFC 6749 Appendix A
_NQCHAR = r"[\x21\x23-\x5b\x5d-\x7e]"
_NAME_CHAR = r"[A-Za-z0-9._-]"
_UNRESERVED = r"[A-Za-z0-9._~-]"  # RFC 3986 §2.3
_URI_CHAR = r"[A-Za-z0-9._~:/?#\[\]@!$&'()*+,;=%-]"  # RFC 3986: unreserved, reserved and percent


@dataclass(frozen=True)
class Syntax:
    pattern: re.Pattern[str]
    max_length: int

    def accepts(self, value: str) -> bool:
        return len(value) <= self.max_length and self.pattern.fullmatch(value) is not None


def _syntax(pattern: str, max_length: int = 1024) -> Syntax:
    return Syntax(re.compile(pattern), max_length)


# The parameters the server reads, and their syntax (empty values are Authlib's "missing").
SYNTAX: dict[str, Syntax] = {
    "response_type": _syntax(r"[A-Za-z0-9_ ]*", 64),
    "client_id": _syntax(f"{_VSCHAR}*", 256),
    "client_secret": _syntax(f"{_VSCHAR}*", 256),
    "redirect_uri": _syntax(f"{_URI_CHAR}*", REDIRECT_URI_MAX_LENGTH),
    "scope": _syntax(f"(?:{_NQCHAR}| )*"),
    "state": _syntax(f"{_VSCHAR}*", 4096),
    "grant_type": _syntax(f"{_NQCHAR}*", 256),
    "code": _syntax(f"{_VSCHAR}*"),
    "refresh_token": _syntax(f"{_VSCHAR}*"),
    "code_challenge": _syntax(f"{_UNRESERVED}*", 128),
    "code_challenge_method": _syntax(f"{_NAME_CHAR}*", 16),
    "code_verifier": _syntax(f"{_UNRESERVED}*", 128),
    "token": _syntax(f"{_VSCHAR}*"),
    "token_type_hint": _syntax(f"{_NAME_CHAR}*", 64),
}


def well_formed(name: str, value: str) -> bool:
    return SYNTAX[name].accepts(value)


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
    """An ``OAuth2Request`` built from parameters already read and checked.

    ``refused`` names the parameters left out because they were malformed or repeated (the authorization
    endpoint decides where to report them; the other endpoints refuse such a request outright).

    Transport security is a deployment concern here (TLS usually ends at a proxy, so the URL the app
    sees is ``http``); ``PROVISIO_BASE_URL`` must be https in production, so Authlib's
    ``InsecureTransportError`` check is not repeated on the internal URL.
    """

    def __init__(
        self,
        method: str,
        uri: str,
        headers: Headers,
        query: Pairs,
        form: Pairs,
        refused: tuple[str, ...] = (),
    ) -> None:
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
        self.payload = PairsPayload(query + form)
        self.refused = refused

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


def _decoded(raw: bytes) -> str:
    try:
        return unquote_to_bytes(raw.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequestError("Parameters must be UTF-8 once percent-decoded.") from None


def parse_urlencoded(raw: bytes) -> Pairs:
    """``application/x-www-form-urlencoded`` pairs; InvalidRequestError unless every name and value is
    UTF-8 once percent-decoded (a lenient decoder would turn such bytes into U+FFFD and carry on)."""
    pairs: Pairs = []
    for part in raw.split(b"&"):
        if part:
            name, _, value = part.partition(b"=")
            pairs.append((_decoded(name), _decoded(value)))
    return pairs


def checked(pairs: Pairs) -> tuple[Pairs, tuple[str, ...]]:
    """The OAuth parameters that are well formed and given once, and the names of those that are not;
    parameters the server does not read are dropped."""
    counts = Counter(name for name, _ in pairs)
    refused = sorted(
        {
            name
            for name, value in pairs
            if name in SYNTAX and (counts[name] > 1 or not SYNTAX[name].accepts(value))
        }
    )
    kept = [(name, value) for name, value in pairs if name in SYNTAX and name not in refused]
    return kept, tuple(refused)


def read_authorization_request(request: Request) -> StarletteOAuth2Request:
    """The authorization endpoint's parameters, from the query string (the consent form posts back to the
    same URL, so its answer carries the request there too). InvalidRequestError if the query cannot be
    decoded at all; malformed or repeated parameters are only left out, named in ``refused``."""
    query, refused = checked(parse_urlencoded(request.scope.get("query_string", b"")))
    return StarletteOAuth2Request(request.method, str(request.url), request.headers, query, [], refused)


async def _body(request: Request) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise InvalidRequestError("The request body is too large.")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_client_request(request: Request) -> StarletteOAuth2Request:
    """A token or revocation request: parameters in an ``application/x-www-form-urlencoded`` body only
    (RFC 6749 §3.2, RFC 7009 §2.1), each well formed and given once; otherwise InvalidRequestError."""
    content_types = request.headers.getlist("content-type")
    media_type = content_types[0].partition(";")[0].strip().lower() if len(content_types) == 1 else ""
    if media_type != FORM_TYPE:
        raise InvalidRequestError(f"Send the parameters as {FORM_TYPE} in the request body.")
    form, refused = checked(parse_urlencoded(await _body(request)))
    if refused:
        raise InvalidRequestError(f"Malformed or repeated parameter: {', '.join(refused)}.")
    return StarletteOAuth2Request(request.method, str(request.url), request.headers, [], form)
