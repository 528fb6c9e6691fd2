"""Members as SCIM User resources, and the attributes/excludedAttributes projection (RFC 7644 §3.9)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from provisio.db.functions import IsoMillis
from provisio.db.models import Member
from provisio.scim.errors import INVALID_VALUE, ScimError
from provisio.scim.schemas import ENTERPRISE_USER_SCHEMA, USER_SCHEMA, Attribute, ResourceSchema


def scim_datetime(value: datetime | str) -> str:
    """RFC 3339 with milliseconds; text already in that form (``IsoMillis``) passes through."""
    if isinstance(value, str):
        return value
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def etag(version: int) -> str:
    return f'W/"{version}"'


# What reads select to build User resources (rows of ``members.MemberResource``): the timestamps come
# formatted by the database, so a page of a hundred users neither parses nor formats two hundred datetimes.
RESOURCE_COLUMNS = (
    Member.id,
    Member.doc,
    IsoMillis(Member.created_at).label("created_at"),
    IsoMillis(Member.modified_at).label("modified_at"),
    Member.version,
)


class MemberView(Protocol):
    """What a User resource is built from: a ``Member`` or a row of ``RESOURCE_COLUMNS``."""

    @property
    def id(self) -> str: ...
    @property
    def doc(self) -> dict[str, Any]: ...
    @property
    def created_at(self) -> datetime | str: ...
    @property
    def modified_at(self) -> datetime | str: ...
    @property
    def version(self) -> int: ...


def user_resource(member: MemberView, location: str) -> dict[str, Any]:
    doc = member.doc
    schemas = [USER_SCHEMA]
    schemas += [u for u in doc.get("schemas", []) if u != USER_SCHEMA and u in doc]
    if ENTERPRISE_USER_SCHEMA in doc and ENTERPRISE_USER_SCHEMA not in schemas:
        schemas.append(ENTERPRISE_USER_SCHEMA)
    resource: dict[str, Any] = {"schemas": schemas, "id": member.id}
    resource.update(doc)  # a list page builds a hundred of these: dict.update, not a filtered copy
    resource["schemas"] = schemas
    resource["meta"] = {
        "resourceType": "User",
        "created": scim_datetime(member.created_at),
        "lastModified": scim_datetime(member.modified_at),
        "location": location,
        "version": etag(member.version),
    }
    return resource


@dataclass(frozen=True)
class Projection:
    """Which attributes a response carries. Paths are lower-cased ``urn:attr[.sub]`` keys."""

    include: frozenset[str] | None
    exclude: frozenset[str]

    @classmethod
    def parse(cls, schema: ResourceSchema, attributes: str | None, excluded: str | None) -> Projection:
        def keys(text: str | None) -> frozenset[str] | None:
            if text is None or not text.strip():
                return None
            return frozenset(_key(schema, part.strip()) for part in text.split(",") if part.strip())

        return cls(keys(attributes), keys(excluded) or frozenset())

    @property
    def is_default(self) -> bool:
        return self.include is None and not self.exclude

    def apply(self, schema: ResourceSchema, resource: dict[str, Any]) -> dict[str, Any]:
        if self.is_default and not _has_request_only(schema):
            # Stored documents never hold returned:"never" values (password is dropped on write), so
            # the default projection is the resource itself.
            return resource
        out: dict[str, Any] = {}
        for name, value in resource.items():
            if name in ("schemas", "id"):
                out[name] = value
                continue
            ext = schema.extension_urn(name) if name.startswith("urn:") else None
            if ext is not None and isinstance(value, dict):
                if ext.lower() in self.exclude:
                    continue
                inner = self._object(schema, ext, ext.lower(), value)
                if inner:
                    out[name] = inner
                continue
            attr = schema.attribute(name)
            kept = self._value(schema, attr, f"{schema.core_urn.lower()}:{name.lower()}", value)
            if kept is not _DROP:
                out[name] = kept
        return out

    def _object(self, schema: ResourceSchema, urn: str, prefix: str, value: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, sub in value.items():
            attr = schema.attribute(name, urn)
            kept = self._value(schema, attr, f"{prefix}:{name.lower()}", sub)
            if kept is not _DROP:
                out[name] = kept
        return out

    def _value(self, schema: ResourceSchema, attr: Attribute | None, key: str, value: Any) -> Any:
        returned = attr.returned if attr else "default"
        if returned == "never":
            return _DROP
        if returned == "always":
            return value
        if attr is not None and attr.is_complex and attr.sub_attributes:
            return self._complex(attr, key, value)
        return value if self._wanted(key, returned) else _DROP

    def _complex(self, attr: Attribute, key: str, value: Any) -> Any:
        whole = self._wanted(key, attr.returned)
        subs_wanted = self.include is not None and any(k.startswith(key + ".") for k in self.include)
        if not whole and not subs_wanted:
            return _DROP

        def pick(obj: Any) -> Any:
            if not isinstance(obj, dict):
                return obj if whole else _DROP
            kept = {}
            for name, v in obj.items():
                sub = attr.sub(name)
                sub_key = f"{key}.{name.lower()}"
                if sub is not None and sub.returned == "never":
                    continue
                if sub_key in self.exclude:
                    continue
                if whole or (self.include is not None and sub_key in self.include):
                    kept[name] = v
            return kept if kept else _DROP

        if isinstance(value, list):
            items = [p for p in (pick(v) for v in value) if p is not _DROP]
            return items if items else _DROP
        return pick(value)

    def _wanted(self, key: str, returned: str) -> bool:
        if key in self.exclude:
            return False
        if self.include is not None:
            return key in self.include or any(key.startswith((k + ".", k + ":")) for k in self.include)
        return returned != "request"


_DROP = object()


def _has_request_only(schema: ResourceSchema) -> bool:
    """Whether any attribute is returned only on request (none in the User schema served today)."""
    found = _REQUEST_ONLY.get(schema.core_urn)
    if found is None:
        tops = [a for attrs in (schema.core, *schema.extensions.values()) for a in attrs.values()]
        found = any(a.returned == "request" for top in tops for a in (top, *top.sub_attributes))
        _REQUEST_ONLY[schema.core_urn] = found
    return found


_REQUEST_ONLY: dict[str, bool] = {}


def _key(schema: ResourceSchema, path: str) -> str:
    urn, rest = schema.split_urn(path)
    if urn is None:
        if path.lower().startswith("urn:"):
            raise ScimError(400, f"Unknown schema in attribute path {path!r}.", INVALID_VALUE)
        urn = schema.core_urn
    if not rest:
        return urn.lower()
    return f"{urn.lower()}:{rest.lower()}"
