"""SCIM PATCH (RFC 7644 §3.5.2) applied to a stored resource document: a pure function, no I/O.

``apply_patch`` takes the stored JSON document, the request body and the resource's schema, and returns a
new document plus whether anything changed (so the caller bumps ``meta.version``/``lastModified`` only for
real changes, RFC 7644 §3.5.2.1). Operations apply in order and atomically: the first failing operation
raises ``ScimError`` and the caller keeps the old document (RFC 7644 §3.5.2).

Besides RFC 7644 clients it accepts the dialects Microsoft Entra and Okta really send, in ways that cannot
change the meaning of a well-formed RFC request:

* op names in any case (``"Replace"``), booleans as strings (``"False"``, see ``values``);
* path-less add/replace whose keys are full paths (``"name.givenName"``, ``emails[type eq "work"].value``,
  URN-qualified attribute paths);
* single values wrapped in a one-element list (``"value": [{"value": "Babs"}]`` for ``nickName``);
* ``manager`` as a bare id string, and ``""``/null meaning "no manager";
* ``remove`` on a multi-valued attribute with a ``value`` list: only those values are removed;
* bare strings as elements of multi-valued complex attributes (``members: "id"`` = ``{"value": "id"}``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from provisio.scim.errors import INVALID_PATH, INVALID_SYNTAX, INVALID_VALUE, MUTABILITY, NO_TARGET, ScimError
from provisio.scim.filter_ast import And, Compare, Filter
from provisio.scim.filter_eval import bind, matches
from provisio.scim.filter_parser import parse_patch_path
from provisio.scim.schemas import PATCH_OP_SCHEMA, Attribute, ResourceSchema
from provisio.scim.values import document_schemas, validate_attribute_value, validate_element

Op = Literal["add", "remove", "replace"]
_OPS: tuple[Op, ...] = ("add", "remove", "replace")
_MISSING: Any = object()


@dataclass(frozen=True)
class PatchResult:
    document: dict[str, Any]  # a new document; the input is never mutated
    changed: bool  # False when every operation was a no-op: keep meta.version and lastModified


def _copy(doc: dict[str, Any]) -> dict[str, Any]:
    """A stored document is JSON, and a JSON round trip copies it several times faster than deepcopy
    (which stays for anything orjson cannot write, such as integers beyond 64 bits)."""
    try:
        copied: dict[str, Any] = orjson.loads(orjson.dumps(doc))
    except TypeError:
        return copy.deepcopy(doc)
    return copied


def apply_patch(doc: dict[str, Any], body: Any, schema: ResourceSchema) -> PatchResult:
    """Apply a PatchOp request ``body`` to ``doc``; raises ``ScimError`` (400) on the first bad operation."""
    operations = _operations(body)
    patcher = _Patcher(_copy(doc), schema)
    for index, operation in enumerate(operations):
        try:
            patcher.apply(operation)
        except ScimError as exc:
            raise ScimError(exc.status, f"Operations[{index}]: {exc.detail}", exc.scim_type) from exc
    new = patcher.finish()
    return PatchResult(new, new != doc)


def _get_ci(obj: dict[str, Any], key: str) -> Any:
    """``obj[key]`` with the key matched case-insensitively (``Operations``/``operations``)."""
    if key in obj:
        return obj[key]
    low = key.lower()
    return next((v for k, v in obj.items() if isinstance(k, str) and k.lower() == low), _MISSING)


def _operations(body: Any) -> list[dict[str, Any]]:
    if not isinstance(body, dict):
        raise ScimError(400, "A PATCH request body must be a JSON object", INVALID_SYNTAX)
    schemas = _get_ci(body, "schemas")
    if not isinstance(schemas, list) or PATCH_OP_SCHEMA.lower() not in {
        s.lower() for s in schemas if isinstance(s, str)
    }:
        raise ScimError(400, f'A PATCH request must have "schemas": ["{PATCH_OP_SCHEMA}"]', INVALID_SYNTAX)
    operations = _get_ci(body, "Operations")
    if not isinstance(operations, list) or not operations:
        raise ScimError(400, 'A PATCH request must have a non-empty "Operations" array', INVALID_SYNTAX)
    for index, operation in enumerate(operations):
        if not isinstance(operation, dict):
            raise ScimError(
                400, f'Operations[{index}] must be an object with "op", "path" and "value"', INVALID_SYNTAX
            )
    return operations


@dataclass(frozen=True)
class _Target:
    """A resolved path. ``attr`` is None for data under an undeclared extension URN (stored as given)."""

    text: str
    urn: str | None  # extension URN holding the attribute; None for core and common attributes
    attr: Attribute | None = None
    name: str = ""  # canonical attribute name (as given for undeclared extensions)
    sub: Attribute | None = None
    sub_name: str | None = None
    value_filter: Filter | None = None
    urn_only: bool = False  # the path is an extension URN alone: the whole extension object


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool)


def _shape(attr: Attribute, value: Any) -> Any:
    """Undo the wrappings IdPs put around values, before type validation (see the module docstring)."""
    if attr.multi_valued:
        if value is None:
            return None
        items = value if isinstance(value, list) else [value]
        return [_shape_element(attr, item, unwrap=False) for item in items]
    if isinstance(value, list):
        if not value:
            return None
        if len(value) > 1:
            return value  # validation reports "single-valued, got an array"
        value = value[0]  # Entra: "value": [{"value": "Babs"}] for a single-valued attribute
    return _shape_element(attr, value, unwrap=True)


def _shape_element(attr: Attribute, value: Any, *, unwrap: bool) -> Any:
    if unwrap and isinstance(value, list) and len(value) == 1:
        value = value[0]
    if attr.is_complex:
        if attr.sub("value") is None:
            return value
        if _is_scalar(value):
            # manager: "id" means {"value": "id"}; "" means no manager (Entra clears it that way).
            return None if unwrap and value == "" else {"value": value}
        if unwrap and isinstance(value, dict) and len(value) == 1:
            ((key, inner),) = value.items()
            if isinstance(key, str) and key.lower() == "value" and inner in ("", None):
                return None  # {"value": ""}: a reference to nothing
        return value
    if isinstance(value, dict) and len(value) == 1:
        ((key, inner),) = value.items()
        if isinstance(key, str) and key.lower() == "value":
            return inner  # Entra: {"value": "Babs"} for a simple attribute
    return value


def _null_keys(attr: Attribute, value: Any) -> set[str]:
    """Canonical names of sub-attributes explicitly set to null: RFC 7643 §2.5 makes that "unassigned"."""
    if not isinstance(value, dict):
        return set()
    out = set()
    for key, sub_value in value.items():
        sub = attr.sub(key) if isinstance(key, str) else None
        if sub is not None and sub_value is None:
            out.add(sub.name)
    return out


def _same_value(attr: Attribute, a: Any, b: Any) -> bool:
    if a == b:
        return True
    sub = attr.sub("value")
    if isinstance(a, str) and isinstance(b, str) and sub is not None and not sub.case_exact:
        return a.casefold() == b.casefold()
    return False


def _find_same(attr: Attribute, elements: list[Any], new: Any) -> int | None:
    """Index of the element ``new`` denotes: an equal one, or (complex) one with the same ``value`` and no
    conflicting ``type``. Used so adding a present value is a no-op (RFC 7644
    §3.5.2.1) and so a value-list removal finds its element whatever its other sub-attributes are."""
    for index, element in enumerate(elements):
        if element == new:
            return index
    if not (attr.is_complex and isinstance(new, dict) and "value" in new):
        return None
    for index, element in enumerate(elements):
        if (
            isinstance(element, dict)
            and _same_value(attr, element.get("value"), new["value"])
            and element.get("type", new.get("type")) == new.get("type", element.get("type"))
        ):
            return index
    return None


def _seed(filt: Filter, attr: Attribute) -> dict[str, Any] | None:
    """The element a filter of ``eq`` comparisons describes (``type eq "work"`` -> {"type": "work"}), or
    None when the filter is not such a conjunction."""
    if isinstance(filt, Compare):
        sub = attr.sub(filt.path.attr)
        if (
            filt.op != "eq"
            or filt.path.sub is not None
            or filt.path.urn is not None
            or sub is None
            or sub.mutability == "readOnly"
            or filt.value is None
        ):
            return None
        return {sub.name: filt.value}
    if isinstance(filt, And):
        left, right = _seed(filt.left, attr), _seed(filt.right, attr)
        if left is None or right is None or any(left[k] != right[k] for k in left.keys() & right.keys()):
            return None
        return {**left, **right}
    return None


def _is_reference(attr: Attribute) -> bool:
    return attr.sub("value") is not None and attr.sub("$ref") is not None and not attr.multi_valued


def _merge(attr: Attribute, existing: Any, update: dict[str, Any], nulls: set[str]) -> dict[str, Any]:
    """RFC 7644 §3.5.2.3: the given sub-attributes replace or add, the others are left unchanged."""
    base = existing if isinstance(existing, dict) else {}
    moved = "value" in update and not _same_value(attr, base.get("value"), update["value"])
    if _is_reference(attr) and moved:
        # A reference (manager) now points elsewhere: its old $ref/displayName described the old target.
        base = {}
    merged = {k: v for k, v in base.items() if k not in nulls}
    merged.update(update)
    return merged


def _mutability_error(what: str, mutability: str) -> ScimError:
    return ScimError(400, f"Attribute '{what}' is {mutability} and cannot be modified", MUTABILITY)


class _Patcher:
    def __init__(self, doc: dict[str, Any], schema: ResourceSchema) -> None:
        self.doc = doc
        self.schema = schema

    # -- operations ---------------------------------------------------------------------------------

    def apply(self, operation: dict[str, Any]) -> None:
        name = _get_ci(operation, "op")
        if not isinstance(name, str) or name.lower() not in _OPS:
            raise ScimError(
                400,
                f'"op" must be one of add, remove, replace; got {name!r}'
                if name is not _MISSING
                else 'Every operation needs an "op"',
                INVALID_SYNTAX,
            )
        op = name.lower()
        path = _get_ci(operation, "path")
        if path is _MISSING or path is None or (isinstance(path, str) and not path.strip()):
            path = None
        elif not isinstance(path, str):
            raise ScimError(400, f'"path" must be a string, got {path!r}', INVALID_PATH)
        value = _get_ci(operation, "value")
        if op == "remove":
            if path is None:
                # RFC 7644 §3.5.2.2: remove without a path fails with noTarget.
                raise ScimError(400, 'A remove operation needs a "path"', NO_TARGET)
            self.remove(self.resolve(path), value)
            return
        if value is _MISSING:
            raise ScimError(400, f'An {op} operation needs a "value"', INVALID_VALUE)
        if path is None:
            self.write_resource(op, value)
        else:
            self.write(op, self.resolve(path), value)

    def write_resource(self, op: str, value: Any) -> None:
        """Path-less add/replace (RFC 7644 §3.5.2.1/§3.5.2.3): each key is a path into the resource."""
        if isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict):
            value = value[0]
        if not isinstance(value, dict):
            raise ScimError(
                400, f'An {op} without "path" needs an object of attributes as "value"', INVALID_VALUE
            )
        schemas = next((v for k, v in value.items() if isinstance(k, str) and k.lower() == "schemas"), None)
        if schemas is not None:
            # Listing URNs first lets the same value carry data of an extension it declares. The list
            # itself is derived from the data (values.document_schemas), so replace does not drop URNs.
            self.write("add", self.resolve("schemas"), schemas)
        for key, item in value.items():
            if not isinstance(key, str):
                raise ScimError(400, f"Unknown attribute {key!r}", INVALID_PATH)
            if key.lower() != "schemas":
                self.write(op, self.resolve(key), item)

    def write(self, op: str, t: _Target, value: Any) -> None:
        if t.urn_only:
            if value is None:
                self.remove(t, _MISSING)
                return
            if not isinstance(value, dict):
                raise ScimError(
                    400, f"'{t.text}' needs an object of extension attributes as \"value\"", INVALID_VALUE
                )
            for key, item in value.items():
                # Clients that serialise an extension as its own resource (scim2-models does) add a
                # "schemas" member to it; it names the extension itself and carries no data.
                if isinstance(key, str) and key.lower() == "schemas":
                    continue
                self.write(op, self.resolve(f"{t.urn}:{key}"), item)
            return
        if t.attr is None:
            self.write_undeclared(t, value)
        elif t.value_filter is not None:
            self.write_filtered(op, t, t.attr, value)
        elif t.sub is not None and t.attr.multi_valued:
            self.write_every_element(t, t.attr, t.sub, value)
        elif t.sub is not None:
            self.write_sub(t, t.attr, t.sub, value)
        else:
            self.write_attribute(op, t, t.attr, value)

    def write_attribute(self, op: str, t: _Target, attr: Attribute, value: Any) -> None:
        if attr.mutability == "writeOnly":
            return  # password: accepted so IdP password sync does not fail, never stored
        existing = self.get(t.urn, attr.name)
        shaped = _shape(attr, value)
        if attr.mutability == "readOnly":
            # Setting a readOnly attribute to its current value modifies nothing (Okta echoes "id").
            if validate_attribute_value(attr, shaped, path=t.text) != existing:
                raise _mutability_error(t.text, "readOnly")
            return
        new = validate_attribute_value(attr, shaped, path=t.text, drop_read_only=True)
        nulls = _null_keys(attr, shaped) if attr.is_complex and not attr.multi_valued else set()
        if new is None and nulls:
            new = {}  # {"givenName": null} unassigns one sub-attribute, not the whole attribute
        if new is None or (attr.required and new == ""):
            self.unassign(t, attr, existing)  # null / [] mean unassigned (RFC 7643 §2.5)
            return
        result: Any
        if attr.multi_valued:
            if op == "add":
                result, written = self.add_elements(attr, existing, new)
            else:
                result, written = new, list(range(len(new)))
            result = self.finish_list(t, attr, result, written)
        elif attr.is_complex:
            result = _merge(attr, existing, new, nulls)
            if not result:
                self.unassign(t, attr, existing)
                return
        else:
            result = new
        self.check_immutable(t, attr, existing, result)
        self.put(t.urn, attr.name, result)

    def write_sub(self, t: _Target, attr: Attribute, sub: Attribute, value: Any) -> None:
        """``name.givenName``, ``urn:…:manager.value``: one sub-attribute of a single-valued complex."""
        existing = self.get(t.urn, attr.name)
        parent = existing if isinstance(existing, dict) else {}
        new = validate_attribute_value(sub, _shape(sub, value), path=t.text)
        for checked in (attr, sub):
            if checked.mutability == "readOnly" and new != parent.get(sub.name):
                raise _mutability_error(t.text, "readOnly")
        if sub.mutability == "writeOnly":
            return
        if sub.mutability == "immutable" and parent.get(sub.name) not in (None, new):
            raise _mutability_error(t.text, "immutable")
        if new is None:
            result = _merge(attr, parent, {}, {sub.name})
        else:
            result = _merge(attr, parent, {sub.name: new}, set())
        self.check_immutable(t, attr, existing, result)
        if result:
            self.put(t.urn, attr.name, result)
        else:
            self.unassign(t, attr, existing)

    def write_every_element(self, t: _Target, attr: Attribute, sub: Attribute, value: Any) -> None:
        """``emails.display`` without a filter: the sub-attribute of every value."""
        elements = self.get(t.urn, attr.name) or []
        if not elements:
            if validate_attribute_value(sub, _shape(sub, value), path=t.text) is None:
                return  # clearing the sub-attribute of no values: nothing to clear, nothing changes
            raise ScimError(400, f"'{t.text}': '{attr.name}' has no values to set '{sub.name}' on", NO_TARGET)
        self.set_sub_of(t, attr, sub, value, elements, list(range(len(elements))))

    def set_sub_of(
        self, t: _Target, attr: Attribute, sub: Attribute, value: Any, elements: list[Any], indexes: list[int]
    ) -> None:
        if attr.mutability == "readOnly" or sub.mutability == "readOnly":
            raise _mutability_error(t.text, "readOnly")
        new = validate_attribute_value(sub, _shape(sub, value), path=t.text)
        if sub.mutability == "immutable" and any(
            isinstance(elements[i], dict) and elements[i].get(sub.name) not in (None, new) for i in indexes
        ):
            raise _mutability_error(t.text, "immutable")
        result = [dict(el) if isinstance(el, dict) else el for el in elements]
        for index in indexes:
            if new is None:
                result[index].pop(sub.name, None)
            else:
                result[index][sub.name] = new
        result = [el for el in result if el != {}]
        self.check_immutable(t, attr, elements, result)
        self.put_list(t, attr, self.finish_list(t, attr, result, indexes if new is not None else []))

    def write_filtered(self, op: str, t: _Target, attr: Attribute, value: Any) -> None:
        """``emails[type eq "work"]`` and ``emails[type eq "work"].value`` (RFC 7644 §3.5.2.3)."""
        assert t.value_filter is not None
        elements = list(self.get(t.urn, attr.name) or [])
        matched = self.matching(t, attr, elements)
        if matched:
            if t.sub is not None:
                self.set_sub_of(t, attr, t.sub, value, elements, matched)
                return
            if attr.mutability == "readOnly":
                raise _mutability_error(t.text, "readOnly")
            shaped = _shape_element(attr, value, unwrap=True)
            if shaped is None:
                self.drop_elements(t, attr, elements, matched)
                return
            new = validate_element(attr, shaped, path=t.text, drop_read_only=True) or {}
            nulls = _null_keys(attr, shaped)
            result = list(elements)
            for index in matched:
                # Matched values are complex: merge like any complex target (RFC 7644 §3.5.2.3).
                result[index] = _merge(attr, result[index], new, nulls)
            self.check_immutable(t, attr, elements, result)
            self.put_list(t, attr, self.finish_list(t, attr, result, matched))
            return
        # No value matched. RFC 7644 §3.5.2.3 says replace then fails with noTarget; but Entra and Okta
        # send `replace emails[type eq "work"].value` (and `add` with the same path) for users who have
        # no work e-mail yet, and every server they integrate with creates the value instead. So when the
        # path names a sub-attribute, or the op is add, and the filter is a plain conjunction of `eq`
        # tests on `type` (and `primary`), we add a new value built from it: {"type": "work", "value": ...}.
        seed = _seed(t.value_filter, attr)
        # Only a filter that names the kind of value (`type eq "work"`) describes a value to create;
        # `emails[value eq "x"].type` that hits nothing is a client error, never a silent success.
        if seed is not None and ("type" not in seed or not set(seed) <= {"type", "primary"}):
            seed = None
        if seed is None or (op == "replace" and t.sub is None):
            raise ScimError(400, f"'{t.text}' matches no value of '{attr.name}'", NO_TARGET)
        if attr.mutability == "readOnly" or (t.sub is not None and t.sub.mutability == "readOnly"):
            raise _mutability_error(t.text, "readOnly")
        if t.sub is not None:
            sub_value = validate_attribute_value(t.sub, _shape(t.sub, value), path=t.text)
            if sub_value is None:
                return  # setting nothing on no value: nothing to do
            element: Any = {**seed, t.sub.name: sub_value}
        else:
            shaped = _shape_element(attr, value, unwrap=True)
            if shaped is None:
                return
            if not isinstance(shaped, dict):
                raise ScimError(400, f"'{t.text}' expects an object, got {shaped!r}", INVALID_VALUE)
            element = {**seed, **shaped}
        element = validate_element(attr, element, path=t.text, drop_read_only=True)
        result = [*elements, element]
        self.check_immutable(t, attr, elements, result)
        self.put_list(t, attr, self.finish_list(t, attr, result, [len(result) - 1]))

    def write_undeclared(self, t: _Target, value: Any) -> None:
        """An attribute of an extension the catalogue does not know but ``schemas`` lists: stored as given."""
        assert t.urn is not None
        container = self.doc.setdefault(t.urn, {})
        if not isinstance(container, dict):
            container = self.doc[t.urn] = {}
        if t.sub_name is None:
            if value is None:
                container.pop(t.name, None)
            else:
                container[t.name] = copy.deepcopy(value)
            return
        parent = container.get(t.name)
        if not isinstance(parent, dict):
            parent = container[t.name] = {}
        if value is None:
            parent.pop(t.sub_name, None)
        else:
            parent[t.sub_name] = copy.deepcopy(value)

    def remove(self, t: _Target, value: Any) -> None:
        """RFC 7644 §3.5.2.2. Removing what is not there is a no-op success: the section defines no error
        for it (noTarget only for a missing path), the requested end state ("unassigned") already holds,
        and IdPs retry removals (Entra removes members that are already gone)."""
        if t.urn_only:
            self.doc.pop(t.urn or "", None)
            return
        if t.attr is None:
            self.write_undeclared(t, None)
            return
        attr = t.attr
        if attr.mutability == "writeOnly":
            return
        if attr.mutability == "readOnly" or (t.sub is not None and t.sub.mutability == "readOnly"):
            raise _mutability_error(t.text, "readOnly")  # RFC 7644 §3.5.2, whether or not it has a value
        existing = self.get(t.urn, attr.name)
        if t.value_filter is not None:
            elements = list(existing or [])
            matched = self.matching(t, attr, elements)
            if not matched:
                return
            if t.sub is not None:
                self.set_sub_of(t, attr, t.sub, None, elements, matched)
            else:
                self.drop_elements(t, attr, elements, matched)
            return
        if t.sub is not None:
            if attr.multi_valued:
                if existing:
                    self.set_sub_of(t, attr, t.sub, None, existing, list(range(len(existing))))
                return
            if not isinstance(existing, dict) or t.sub.name not in existing:
                return
            self.write_sub(t, attr, t.sub, None)
            return
        if attr.multi_valued and value is not _MISSING and value is not None:
            # Entra: {"op": "Remove", "path": "members", "value": [{"value": "id"}]} removes those values.
            shaped = _shape(attr, value)
            wanted = validate_attribute_value(attr, shaped, path=t.text) or []
            elements = list(existing or [])
            indexes = sorted({i for w in wanted if (i := _find_same(attr, elements, w)) is not None})
            if indexes:
                self.drop_elements(t, attr, elements, indexes)
            return
        self.unassign(t, attr, existing)

    # -- helpers ------------------------------------------------------------------------------------

    def matching(self, t: _Target, attr: Attribute, elements: list[Any]) -> list[int]:
        assert t.value_filter is not None
        return [
            i
            for i, el in enumerate(elements)
            if isinstance(el, dict) and matches(t.value_filter, el, attr, self.schema)
        ]

    def drop_elements(self, t: _Target, attr: Attribute, elements: list[Any], indexes: list[int]) -> None:
        if attr.mutability in ("readOnly", "immutable"):
            raise _mutability_error(t.text, attr.mutability)
        drop = set(indexes)
        remaining = [el for i, el in enumerate(elements) if i not in drop]
        if remaining:
            self.put(t.urn, attr.name, remaining)
        else:
            self.unassign(t, attr, elements)

    def add_elements(self, attr: Attribute, existing: Any, new: list[Any]) -> tuple[list[Any], list[int]]:
        """RFC 7644 §3.5.2.1: add appends, except values already present (then merged, usually a no-op)."""
        result = list(existing) if isinstance(existing, list) else []
        written: list[int] = []
        for element in new:
            index = _find_same(attr, result, element)
            if index is None:
                result.append(element)
                written.append(len(result) - 1)
            else:
                if isinstance(element, dict) and isinstance(result[index], dict):
                    result[index] = {**result[index], **element}
                written.append(index)
        return result, written

    def finish_list(self, t: _Target, attr: Attribute, elements: list[Any], written: list[int]) -> list[Any]:
        """RFC 7643 §2.4 / RFC 7644 §3.5.2: a value written with primary=true makes the others false."""
        if attr.is_complex and attr.sub("primary") is not None:
            winners = [i for i in dict.fromkeys(written) if elements[i].get("primary") is True]
            if len(winners) > 1:
                raise ScimError(
                    400, f"'{t.text}' would make more than one value of '{attr.name}' primary", INVALID_VALUE
                )
            if winners:
                elements = [
                    {**el, "primary": False} if i != winners[0] and el.get("primary") is True else el
                    for i, el in enumerate(elements)
                ]
        checked = validate_attribute_value(attr, elements, path=t.text)
        return checked if checked is not None else []

    def put_list(self, t: _Target, attr: Attribute, elements: list[Any]) -> None:
        if elements:
            self.put(t.urn, attr.name, elements)
        else:
            self.unassign(t, attr, self.get(t.urn, attr.name))

    def check_immutable(self, t: _Target, attr: Attribute, existing: Any, result: Any) -> None:
        # RFC 7644 §3.5.2: an immutable attribute may be added when it has no value, never changed.
        if attr.mutability == "immutable" and existing not in (None, [], {}) and result != existing:
            raise _mutability_error(t.text, "immutable")

    def unassign(self, t: _Target, attr: Attribute, existing: Any) -> None:
        # RFC 7644 §3.5.2: removing (or unassigning) a required or readOnly attribute fails with
        # "mutability" - that status is what the RFC prescribes, so not invalidValue.
        if attr.required:
            raise ScimError(400, f"Attribute '{attr.name}' is required and cannot be removed", MUTABILITY)
        if attr.mutability == "readOnly":
            raise _mutability_error(t.text, "readOnly")
        if existing is None:
            return
        if attr.mutability == "immutable":
            raise _mutability_error(t.text, "immutable")
        container = self.container(t.urn)
        if container is not None:
            for key in [k for k in container if isinstance(k, str) and k.lower() == attr.name.lower()]:
                del container[key]

    # -- the document -------------------------------------------------------------------------------

    def container(self, urn: str | None, create: bool = False) -> dict[str, Any] | None:
        if urn is None:
            return self.doc
        current = self.doc.get(urn)
        if isinstance(current, dict):
            return current
        if not create:
            return None
        created: dict[str, Any] = {}
        self.doc[urn] = created
        return created

    def get(self, urn: str | None, name: str) -> Any:
        container = self.container(urn)
        if container is None:
            return None
        if name in container:
            return container[name]
        low = name.lower()
        return next((v for k, v in container.items() if isinstance(k, str) and k.lower() == low), None)

    def put(self, urn: str | None, name: str, value: Any) -> None:
        container = self.container(urn, create=True)
        assert container is not None
        for key in [k for k in container if isinstance(k, str) and k.lower() == name.lower() and k != name]:
            del container[key]  # keep one, canonically cased key
        container[name] = value

    def finish(self) -> dict[str, Any]:
        for urn in [*self.schema.extensions, *self.undeclared_urns()]:
            if self.doc.get(urn) == {}:
                del self.doc[urn]
        schemas = document_schemas(self.doc, self.schema)
        if self.doc.get("schemas") != schemas:
            self.doc["schemas"] = schemas
        return self.doc

    # -- paths --------------------------------------------------------------------------------------

    def undeclared_urns(self) -> list[str]:
        listed = self.doc.get("schemas")
        known = {u.lower() for u in self.schema.urns()}
        return (
            [u for u in listed if isinstance(u, str) and u.lower() not in known]
            if isinstance(listed, list)
            else []
        )

    def split_urn(self, text: str) -> tuple[str | None, str]:
        urn, rest = self.schema.split_urn(text)
        if urn is not None:
            return urn, rest
        low = text.lower()
        for candidate in sorted(self.undeclared_urns(), key=len, reverse=True):
            c = candidate.lower()
            if low == c:
                return candidate, ""
            if low.startswith(c + ":"):
                return candidate, text[len(candidate) + 1 :]
        if low.startswith("urn:"):
            head = text.split("[", 1)[0]
            unknown = head.rsplit(":", 1)[0] if head.count(":") > 1 else head
            raise ScimError(
                400,
                f"Path '{text}' uses schema '{unknown}', which this server does not support "
                'and the resource does not list in "schemas"',
                INVALID_PATH,
            )
        return None, text

    def resolve(self, text: str) -> _Target:
        text = text.strip()
        urn, rest = self.split_urn(text)
        if urn is not None and urn.lower() == self.schema.core_urn.lower():
            urn = None
            if not rest:
                raise ScimError(400, f"Path '{text}' names the core schema, not an attribute", INVALID_PATH)
        elif urn is not None and not rest:
            return _Target(text, urn, urn_only=True)
        try:
            parsed = parse_patch_path(rest)
        except (ScimError, ValueError) as exc:
            detail = exc.detail if isinstance(exc, ScimError) else str(exc)
            raise ScimError(400, f"Invalid path '{text}': {detail}", INVALID_PATH) from exc
        attr_path = parsed.path
        if attr_path.urn is not None and urn is None:
            urn, _ = self.split_urn(attr_path.urn)
            urn = None if urn is not None and urn.lower() == self.schema.core_urn.lower() else urn
        if attr_path.sub is not None and parsed.sub is not None:
            raise ScimError(400, f"Invalid path '{text}'", INVALID_PATH)
        sub_name = attr_path.sub or parsed.sub
        if urn is not None and self.schema.extension_urn(urn) is None:
            if parsed.value_filter is not None:
                raise ScimError(
                    400,
                    f"Path '{text}': value filters are not supported on attributes of "
                    f"the undeclared extension '{urn}'",
                    INVALID_PATH,
                )
            return _Target(text, urn, name=attr_path.attr, sub_name=sub_name)
        attr = self.schema.attribute(attr_path.attr, urn)
        if attr is None:
            where = f"{urn}:{attr_path.attr}" if urn else attr_path.attr
            raise ScimError(400, f"Unknown attribute '{where}' in path '{text}'", INVALID_PATH)
        sub = None
        if sub_name is not None:
            sub = attr.sub(sub_name)
            if sub is None:
                raise ScimError(
                    400, f"Unknown sub-attribute '{attr.name}.{sub_name}' in path '{text}'", INVALID_PATH
                )
        if parsed.value_filter is not None:
            if not (attr.multi_valued and attr.is_complex):
                raise ScimError(
                    400, f"Path '{text}': a value filter needs a multi-valued complex attribute", INVALID_PATH
                )
            try:
                bind(parsed.value_filter, self.schema, attr)  # check it now, not only when values exist
            except ScimError as exc:
                raise ScimError(400, f"Invalid filter in path '{text}': {exc.detail}", INVALID_PATH) from exc
        return _Target(text, urn, attr, attr.name, sub, sub.name if sub else None, parsed.value_filter)
