"""Where a sign-in link may send a person back to: the allow-list ``PROVISIO_PORTAL_RETURN_URLS``.

Each entry of the comma-separated list is an absolute URL ``scheme://host[:port][/path]``: https, or
http only when the host is loopback (``localhost``, ``*.localhost``, ``127.0.0.0/8``, ``::1``); no
user name, query or fragment. A return URL is accepted when

* its scheme, host and port equal an entry's (host compared case-insensitively, a missing port being
  the scheme's default: ``https://app.example.com`` and ``https://APP.example.com:443`` are the same
  origin, ``https://app.example.com.evil.com`` and ``https://app.example.com:8443`` are not), and
* the entry has no path (or ``/``): any path of that origin; else the return URL's path is the entry's
  path or continues it after a ``/`` (``/settings`` accepts ``/settings`` and ``/settings/scim``, not
  ``/settings-old``). Paths are compared case-sensitively; a trailing ``/`` of an entry is ignored.

The return URL may carry a query and a fragment; it must be printable ASCII (percent-encode the rest),
without a user name, backslash or ``.``/``..`` path segment (which a browser would resolve to another
path than the one checked), and at most ``MAX_LENGTH`` characters. The URLs are parsed and compared part
by part, never as string prefixes. An empty list accepts no return URL at all.

Pure functions: the configuration (``provisio.config``) parses the list with them at start-up, so a bad
entry stops the server with a clear message rather than refusing links later.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from provisio.domain.errors import DomainError, Kind

MAX_LENGTH = 2000
_DEFAULT_PORTS = {"https": 443, "http": 80}


@dataclass(frozen=True)
class AllowedReturnUrl:
    scheme: str
    host: str  # lower case; an IPv6 address without brackets
    port: int
    path: str  # "" for a whole origin, else "/…" without a trailing "/"

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = "" if self.port == _DEFAULT_PORTS[self.scheme] else f":{self.port}"
        return f"{self.scheme}://{host}{port}{self.path}"

    def accepts(self, scheme: str, host: str, port: int, path: str) -> bool:
        if (scheme, host, port) != (self.scheme, self.host, self.port):
            return False
        return not self.path or path == self.path or path.startswith(self.path + "/")


def is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_NOT_A_HOST = "its host is not a name or an IP address (brackets hold an IPv6 address)"


def _after_bracket_is_a_port(netloc: str) -> bool:
    rest = netloc.rpartition("]")[2]
    return rest == "" or rest.startswith(":")


def _is_ipv6(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).version == 6
    except ValueError:
        return False


def _printable_ascii(value: str) -> bool:
    return all("!" <= c <= "~" for c in value) and "\\" not in value


def _split(value: str) -> tuple[SplitResult, str, int] | str:
    """The URL's parts, its host and its port; or why it is not an absolute http(s) URL."""
    if not value or not _printable_ascii(value):
        return "it must be printable ASCII without spaces or backslashes (percent-encode the rest)"
    try:
        # urlsplit refuses an unclosed or non-IPv6 bracketed host ("https://[::1/x").
        parts = urlsplit(value)
    except ValueError:
        return _NOT_A_HOST
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.netloc:
        return "it must be an absolute https:// URL"
    if "@" in parts.netloc:
        return "it must not contain a user name or password"
    host = parts.hostname or ""
    if not host:
        return "it has no host"
    if "[" in parts.netloc and not (_is_ipv6(host) and _after_bracket_is_a_port(parts.netloc)):
        return _NOT_A_HOST
    try:
        port = parts.port
    except ValueError:
        return "its port is not a number from 0 to 65535"
    port = _DEFAULT_PORTS[scheme] if port is None else port
    if scheme == "http" and not is_loopback(host):
        return "plain http is accepted only for a loopback host (localhost, 127.0.0.1, ::1): use https"
    return parts, host, port


def parse_allowed(raw: str) -> tuple[AllowedReturnUrl, ...]:
    """The entries of the comma-separated allow-list; ``ValueError`` names the first bad one."""
    allowed = []
    for entry in (e.strip() for e in raw.split(",")):
        if not entry:
            continue
        split = _split(entry)
        if isinstance(split, str):
            raise ValueError(f"PROVISIO_PORTAL_RETURN_URLS entry {entry!r} is not usable: {split}.")
        parts, host, port = split
        if parts.query or parts.fragment or entry.endswith(("?", "#")):
            raise ValueError(
                f"PROVISIO_PORTAL_RETURN_URLS entry {entry!r} has a query or fragment: list an origin "
                "(https://app.example.com) or an origin with a path prefix (https://app.example.com/settings)."
            )
        if _has_dot_segment(parts.path):
            raise ValueError(f"PROVISIO_PORTAL_RETURN_URLS entry {entry!r} has a '.' or '..' path segment.")
        allowed.append(AllowedReturnUrl(parts.scheme.lower(), host, port, parts.path.rstrip("/")))
    return tuple(allowed)


def _has_dot_segment(path: str) -> bool:
    # Browsers resolve "." and ".." (also written %2e) before requesting, so "/settings/../admin" is
    # "/admin": such a path is refused rather than checked as written.
    return any(s.lower().replace("%2e", ".") in (".", "..") for s in path.split("/"))


def check_return_url(value: str, allowed: tuple[AllowedReturnUrl, ...]) -> str:
    """``value`` when the allow-list accepts it, else ``DomainError`` (invalid) saying why."""
    if not allowed:
        raise DomainError(
            Kind.INVALID,
            "This deployment accepts no return_url: the operator has not set PROVISIO_PORTAL_RETURN_URLS. "
            "Leave return_url out, or ask for your application's URL to be allowed.",
        )
    if len(value) > MAX_LENGTH:
        raise DomainError(Kind.INVALID, f"return_url must be at most {MAX_LENGTH} characters.")
    split = _split(value)
    if isinstance(split, str):
        raise DomainError(Kind.INVALID, f"return_url is not usable: {split}.")
    parts, host, port = split
    if _has_dot_segment(parts.path):
        raise DomainError(Kind.INVALID, "return_url must not have a '.' or '..' path segment.")
    path = parts.path or "/"
    if not any(entry.accepts(parts.scheme.lower(), host, port, path) for entry in allowed):
        listed = ", ".join(str(entry) for entry in allowed)
        raise DomainError(
            Kind.INVALID,
            f"return_url is not on this deployment's allow-list (PROVISIO_PORTAL_RETURN_URLS: {listed}).",
        )
    return value


def display_host(url: str) -> str:
    """What "Back to <host>" names: the host of an accepted return URL, with its port if it has one."""
    return urlsplit(url).netloc
