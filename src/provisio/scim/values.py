"""Validation and normalisation of SCIM attribute values against the schema catalogue.

One place decides what a stored document looks like: canonical attribute names (RFC 7643 §2.1 makes
names case-insensitive, but we store the schema's spelling), proper JSON types (Entra sends booleans
as ``"True"``), no unassigned values (RFC 7643 §2.5: null, ``[]`` and absent are the same state, so we
keep only "absent") and no passwords (we never store them). POST, PUT and PATCH all go through here.
"""

from __future__ import annotations

import base64
import binascii
import math
from datetime import datetime
from typing import Any

from provisio.scim.errors import INVALID_SYNTAX, INVALID_VALUE, ScimError
from provisio.scim.schemas import Attribute, ResourceSchema

_TYPE_NAMES = {
    "string": "a string",
    "boolean": "a boolean (true or false)",
    "integer": "an integer",
    "decimal": "a decimal number",
    "dateTime": 'a dateTime string (xsd:dateTime, e.g. "2024-01-31T12:00:00Z")',
    "reference": "a reference (URI string)",
    "binary": "a base64-encoded string",
    "complex": "an object",
}


def invalid_value(detail: str) -> ScimError:
    return ScimError(400, detail, INVALID_VALUE)


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"number {value!r}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"string {shown!r}"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _expected(attr: Attribute, path: str, value: Any) -> ScimError:
    return invalid_value(
        f"Attribute '{path}' expects {_TYPE_NAMES.get(attr.type, attr.type)}, got {_describe(value)}"
    )


def _scalar(attr: Attribute, value: Any, path: str) -> Any:
    t = attr.type
    if t in ("string", "reference"):
        if isinstance(value, str):
            return value
    elif t == "boolean":
        if isinstance(value, bool):
            return value
        # Microsoft Entra sends booleans as "True"/"False" (e.g. active, roles[].primary).
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
    elif t == "integer":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif t == "decimal":
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
    elif t == "dateTime":
        # xsd:dateTime needs a time part; fromisoformat alone would also take a bare date.
        if isinstance(value, str) and "T" in value.upper():
            try:
                datetime.fromisoformat(value)
            except ValueError:
                pass
            else:
                return value
    elif t == "binary":
        if isinstance(value, str):
            try:
                base64.b64decode("".join(value.split()), validate=True)
            except (binascii.Error, ValueError):
                pass
            else:
                return value
    else:  # an attribute type the catalogue does not describe: keep the JSON as given
        return value
    raise _expected(attr, path, value)


def _complex(attr: Attribute, value: Any, path: str, drop_read_only: bool) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        raise _expected(attr, path, value)
    out: dict[str, Any] = {}
    for key, sub_value in value.items():
        sub = attr.sub(key) if isinstance(key, str) else None
        if sub is None:
            known = ", ".join(s.name for s in attr.sub_attributes)
            raise invalid_value(f"'{path}' has no sub-attribute {key!r} (known: {known})")
        if sub.name in out:
            raise invalid_value(f"Sub-attribute '{path}.{sub.name}' is given more than once")
        if sub_value is None or (drop_read_only and sub.mutability == "readOnly"):
            continue  # null means unassigned (RFC 7643 §2.5); readOnly input is ignored (RFC 7644 §3.3)
        normalised = validate_attribute_value(sub, sub_value, path=f"{path}.{sub.name}")
        if normalised is not None:
            out[sub.name] = normalised
    return out or None


def validate_element(
    attr: Attribute, value: Any, *, path: str | None = None, drop_read_only: bool = False
) -> Any:
    """Validate one value of ``attr`` as if it were single-valued (one element of a multi-valued list)."""
    where = path or attr.name
    if value is None:
        return None
    if attr.is_complex:
        return _complex(attr, value, where, drop_read_only)
    return _scalar(attr, value, where)


def validate_attribute_value(
    attr: Attribute, value: Any, *, path: str | None = None, drop_read_only: bool = False
) -> Any:
    """Type-check ``value`` for ``attr`` and return it normalised for storage.

    Sub-attribute names come back in canonical casing, Entra's string booleans become booleans, and
    unassigned values (null, ``[]``, ``{}``) come back as ``None``. ``drop_read_only`` drops readOnly
    sub-attributes instead of keeping them (request bodies: RFC 7644 §3.3 says they are ignored).
    Raises ``ScimError(400, invalidValue)`` naming the attribute and the expected type.
    """
    where = path or attr.name
    if value is None:
        return None
    if not attr.multi_valued:
        if isinstance(value, list):
            raise invalid_value(
                f"Attribute '{where}' is single-valued; expected "
                f"{_TYPE_NAMES.get(attr.type, attr.type)}, got an array"
            )
        return validate_element(attr, value, path=where, drop_read_only=drop_read_only)
    if not isinstance(value, list):
        raise invalid_value(
            f"Attribute '{where}' is multi-valued and expects an array of "
            f"{_TYPE_NAMES.get(attr.type, attr.type)} values, got {_describe(value)}"
        )
    items = []
    for index, element in enumerate(value):
        if element is None:
            raise invalid_value(f"Attribute '{where}' has a null element at index {index}")
        normalised = validate_element(attr, element, path=where, drop_read_only=drop_read_only)
        if normalised is not None:
            items.append(normalised)
    if attr.is_complex and sum(1 for el in items if el.get("primary") is True) > 1:
        # RFC 7643 §2.4: the primary value "true" MUST appear no more than once.
        raise invalid_value(f"Attribute '{where}' has more than one value with \"primary\": true")
    return items or None


def _find_key(doc: dict[str, Any], name: str) -> str | None:
    low = name.lower()
    return next((k for k in doc if isinstance(k, str) and k.lower() == low), None)


def document_schemas(doc: dict[str, Any], schema: ResourceSchema) -> list[str]:
    """The ``schemas`` list a document should carry (RFC 7643 §3): the core URN, every known extension
    that holds data, then any other URNs the client listed (kept so their extension data stays valid).
    """
    known = {u.lower() for u in schema.urns()}
    out = [schema.core_urn]
    out += [urn for urn in schema.extensions if isinstance(doc.get(urn), dict) and doc[urn]]
    listed = doc.get("schemas")
    for urn in listed if isinstance(listed, list) else ():
        if isinstance(urn, str) and urn.lower() not in known and urn not in out:
            out.append(urn)
    return out


def _undeclared_urns(doc: dict[str, Any], schema: ResourceSchema) -> dict[str, str]:
    listed = doc.get("schemas")
    if listed is None:
        return {}
    if not isinstance(listed, list) or not all(isinstance(u, str) for u in listed):
        raise ScimError(400, "'schemas' must be an array of schema URI strings", INVALID_SYNTAX)
    known = {u.lower() for u in schema.urns()}
    return {u.lower(): u for u in listed if u.lower() not in known}


def _normalise_attributes(
    source: dict[str, Any], schema: ResourceSchema, urn: str | None, drop_read_only: bool, out: dict[str, Any]
) -> None:
    for key, value in source.items():
        attr = schema.attribute(key, urn) if isinstance(key, str) else None
        if attr is None:
            where = f"{urn}:{key}" if urn else str(key)
            raise ScimError(
                400, f"Unknown attribute '{where}' for resource type {schema.name}", INVALID_SYNTAX
            )
        if attr.name in out:
            raise ScimError(400, f"Attribute '{attr.name}' is given more than once", INVALID_SYNTAX)
        if attr.mutability == "writeOnly":
            continue  # password: accepted for compatibility, never stored
        if drop_read_only and attr.mutability == "readOnly":
            continue
        where = f"{urn}:{attr.name}" if urn else attr.name
        normalised = validate_attribute_value(attr, value, path=where, drop_read_only=drop_read_only)
        if normalised is not None:
            out[attr.name] = normalised


def normalise_document(
    doc: dict[str, Any], schema: ResourceSchema, *, drop_read_only: bool = False
) -> dict[str, Any]:
    """Return a new, storage-ready copy of a whole resource document (POST/PUT bodies, stored documents).

    Canonical attribute casing, JSON-typed values (string booleans coerced), every known attribute
    type-checked, unassigned values omitted, ``password`` dropped. Data under an extension URN the
    catalogue does not know is kept as given only when the URN is listed in ``schemas``. With
    ``drop_read_only`` readOnly attributes (``id``, ``meta``, ``groups``, ...) are dropped, as
    RFC 7644 §3.3/§3.5.1 require for request bodies. Raises ``ScimError(400)``: ``invalidSyntax``
    for unknown attributes or URNs, ``invalidValue`` for bad values or a missing required attribute.
    """
    if not isinstance(doc, dict):
        raise ScimError(400, f"A {schema.name} must be a JSON object", INVALID_SYNTAX)
    undeclared = _undeclared_urns(doc, schema)
    core: dict[str, Any] = {}
    extensions: dict[str, Any] = {}
    for key, value in doc.items():
        if not isinstance(key, str):
            raise ScimError(400, f"Unknown attribute {key!r}", INVALID_SYNTAX)
        if key.lower() == "schemas":
            continue
        ext = schema.extension_urn(key)
        if ext is None and key.lower() == schema.core_urn.lower():
            ext = schema.core_urn  # the core schema written as an extension object: fold it in
        if ext is not None:
            if value is None:
                continue
            if not isinstance(value, dict):
                raise invalid_value(
                    f"'{key}' must be an object of extension attributes, got {_describe(value)}"
                )
            target = core if ext == schema.core_urn else extensions.setdefault(ext, {})
            _normalise_attributes(
                value, schema, None if ext == schema.core_urn else ext, drop_read_only, target
            )
        elif key.lower() in undeclared:
            if value is not None:
                extensions[undeclared[key.lower()]] = value
        elif key.lower().startswith("urn:"):
            raise ScimError(
                400,
                f"Schema extension '{key}' is not supported by this server and not listed in 'schemas'",
                INVALID_SYNTAX,
            )
        else:
            _normalise_attributes({key: value}, schema, None, drop_read_only, core)
    for attr in schema.core.values():
        if attr.required and attr.mutability != "readOnly" and core.get(attr.name) in (None, ""):
            raise invalid_value(f"Attribute '{attr.name}' is required")
    out: dict[str, Any] = {"schemas": []}
    out.update(core)
    out.update({urn: value for urn, value in extensions.items() if value})
    out["schemas"] = document_schemas({**out, "schemas": doc.get("schemas")}, schema)
    return out
