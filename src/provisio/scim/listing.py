"""List and search parameters (RFC 7644 §3.4.2), sorting, and RFC 9865 cursors.

Index pagination uses ``startIndex``/``count``; cursor pagination is keyset pagination over the sort
key and ``id``, so a page costs the same however deep it is. Cursors are signed, carry their
expiry, and are bound to the filter and sort they were issued for.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import ColumnElement, String, and_, func, literal, or_

from provisio.db.models import Member
from provisio.domain import members as member_service
from provisio.scim.errors import EXPIRED_CURSOR, INVALID_CURSOR, INVALID_VALUE, ScimError
from provisio.scim.filter_ast import Filter
from provisio.scim.filter_parser import parse_filter
from provisio.scim.filter_sql import to_sql
from provisio.scim.schemas import ResourceSchema

# Sortable attributes with a column of their own (others sort through the JSON document).
_SORT_COLUMNS: dict[str, Any] = {
    "id": Member.id,
    "username": Member.user_name_lower,
    "externalid": Member.external_id,
    "displayname": func.lower(Member.display_name, type_=String),
    "name.givenname": func.lower(Member.given_name, type_=String),
    "name.familyname": func.lower(Member.family_name, type_=String),
    "emails": Member.email_lower,
    "emails.value": Member.email_lower,
    "active": Member.active,
    "meta.created": Member.created_at,
    "meta.lastmodified": Member.modified_at,
}


# Beyond any workspace's size; keeps OFFSET within a 64-bit integer on every database.
MAX_START_INDEX = 2**31


@dataclass(frozen=True)
class ListParams:
    filter: Filter | None
    filter_text: str
    sort_by: str | None
    descending: bool
    start_index: int
    count: int
    cursor: str | None  # None: index pagination; "" asks for the first cursor page
    attributes: str | None
    excluded_attributes: str | None


def _int(name: str, value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ScimError(400, f"{name} must be an integer, not {value!r}.", INVALID_VALUE)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ScimError(400, f"{name} must be an integer, not {value!r}.", INVALID_VALUE) from None


def _text(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, list):
        value = ",".join(str(v) for v in value)
    if not isinstance(value, str):
        raise ScimError(400, f"{name} must be a string.", INVALID_VALUE)
    return value


def parse_params(raw: dict[str, Any], max_results: int) -> ListParams:
    """Read query parameters (GET) or a SearchRequest body (POST /.search); names are case-insensitive."""
    params = {k.lower(): v for k, v in raw.items()}
    filter_text = _text("filter", params.get("filter")) or ""
    sort_order = (_text("sortOrder", params.get("sortorder")) or "ascending").lower()
    if sort_order not in ("ascending", "descending"):
        raise ScimError(
            400, f"sortOrder must be 'ascending' or 'descending', not {sort_order!r}.", INVALID_VALUE
        )
    start_index = _int("startIndex", params.get("startindex"))
    count = _int("count", params.get("count"))
    cursor = _text("cursor", params.get("cursor"))
    if cursor is not None and start_index is not None:
        raise ScimError(400, "Use either cursor or startIndex pagination, not both.", INVALID_VALUE)
    return ListParams(
        filter=parse_filter(filter_text) if filter_text.strip() else None,
        filter_text=filter_text,
        sort_by=_text("sortBy", params.get("sortby")) or None,
        descending=sort_order == "descending",
        # RFC 7644 §3.4.2.4: a startIndex below 1 is read as 1, a negative count as 0.
        start_index=min(max(start_index or 1, 1), MAX_START_INDEX),
        count=max(0, min(max_results if count is None else count, max_results)),
        cursor=cursor,
        attributes=_text("attributes", params.get("attributes")),
        excluded_attributes=_text("excludedAttributes", params.get("excludedattributes")),
    )


def sort_key(schema: ResourceSchema, sort_by: str | None) -> ColumnElement[Any] | None:
    """The SQL expression rows are ordered by (then by id); text keys sort a missing value as ""."""
    key = _raw_sort_key(schema, sort_by)
    if key is not None and _is_text(key) and getattr(key, "nullable", True):
        # Keyset comparisons must never meet NULL, which compares as unknown.
        return func.coalesce(key, literal(""), type_=String)
    return key


def _raw_sort_key(schema: ResourceSchema, sort_by: str | None) -> ColumnElement[Any] | None:
    if not sort_by:
        return None
    urn, rest = schema.split_urn(sort_by)
    path = rest if urn in (None, schema.core_urn) else None
    if path is not None and path.lower() in _SORT_COLUMNS:
        return _SORT_COLUMNS[path.lower()]
    # Any other singular attribute sorts by its JSON text (case-insensitively unless caseExact).
    parts = (rest or "").split(".")
    attr = schema.attribute(parts[0], urn)
    sub = attr.sub(parts[1]) if attr and len(parts) == 2 else None
    if attr is None or len(parts) > 2 or (len(parts) == 2 and sub is None) or attr.multi_valued:
        raise ScimError(
            400, f"Cannot sort by {sort_by!r}: name a singular attribute of the User schema.", INVALID_VALUE
        )
    keys: list[str] = [] if urn in (None, schema.core_urn) else [str(urn)]
    keys.append(attr.name)
    if sub is not None:
        keys.append(sub.name)
    expr = Member.doc[tuple(keys)].as_string() if len(keys) > 1 else Member.doc[keys[0]].as_string()
    leaf = sub or attr
    return expr if leaf.case_exact else func.lower(expr, type_=String)


_BY_ID = member_service.BY_ID  # the domain pages in it by buckets
_BY_ID_DESCENDING = Member.id.desc()


def order_by(
    key: ColumnElement[Any] | None, descending: bool, *, reverse: bool = False
) -> list[ColumnElement[Any]]:
    """Rows by ``key`` (by id alone without one), ties by id ascending; with ``reverse`` the exact reverse
    of that order. Both databases place NULLs at the opposite end when the direction flips, so turning
    every term round reverses the whole order (text keys have no NULLs anyway: ``sort_key``)."""
    if key is None:
        return [_BY_ID if descending == reverse else _BY_ID_DESCENDING]
    return [key.desc() if descending != reverse else key.asc(), _BY_ID_DESCENDING if reverse else _BY_ID]


def _is_text(expr: ColumnElement[Any]) -> bool:
    return isinstance(expr.type, String)


def filter_clause(params: ListParams, schema: ResourceSchema, dialect: str) -> ColumnElement[bool] | None:
    return to_sql(params.filter, schema, dialect) if params.filter is not None else None


# --- RFC 9865 cursors -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cursor:
    sort_value: Any
    last_id: str


def _fingerprint(params: ListParams) -> str:
    basis = f"{params.filter_text}\x00{params.sort_by or ''}\x00{params.descending}"
    return hashlib.sha256(basis.encode()).hexdigest()[:16]


def encode_cursor(secret: bytes, params: ListParams, cursor: Cursor, ttl: int) -> str:
    value = cursor.sort_value
    # Datetime keys (meta.created, meta.lastModified) travel as ISO text and come back as datetimes.
    typed = {"dt": value.isoformat()} if isinstance(value, datetime) else {"v": value}
    payload = orjson.dumps(
        {**typed, "id": cursor.last_id, "q": _fingerprint(params), "exp": int(time.time()) + ttl}
    )
    mac = hmac.new(secret, payload, hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(payload + mac).decode().rstrip("=")


def decode_cursor(secret: bytes, params: ListParams, text: str) -> Cursor:
    invalid = ScimError(
        400,
        "The cursor is not one this server issued for this query: start again without a cursor value.",
        INVALID_CURSOR,
    )
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError):
        raise invalid from None
    payload, mac = raw[:-16], raw[-16:]
    if len(raw) <= 16 or not hmac.compare_digest(
        mac, hmac.new(secret, payload, hashlib.sha256).digest()[:16]
    ):
        raise invalid
    data = orjson.loads(payload)
    if data.get("q") != _fingerprint(params):
        raise invalid
    if data.get("exp", 0) < time.time():
        raise ScimError(
            400, "The cursor has expired: start the listing again with an empty cursor.", EXPIRED_CURSOR
        )
    if "dt" in data:
        try:
            return Cursor(sort_value=datetime.fromisoformat(data["dt"]), last_id=str(data.get("id")))
        except (TypeError, ValueError):
            raise invalid from None
    return Cursor(sort_value=data.get("v"), last_id=str(data.get("id")))


def after_cursor(key: ColumnElement[Any] | None, descending: bool, cursor: Cursor) -> ColumnElement[bool]:
    """The keyset condition: rows strictly after the cursor in (sort key, id) order."""
    if key is None:
        return Member.id < cursor.last_id if descending else Member.id > cursor.last_id
    value = literal(cursor.sort_value, type_=key.type)  # a bound value, also for booleans
    beyond = key < value if descending else key > value
    return or_(beyond, and_(key == value, Member.id > cursor.last_id))
