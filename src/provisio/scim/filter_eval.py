"""Reference evaluation of SCIM filters against one JSON value, and the schema binding it shares with SQL.

``bind`` resolves every attribute path against the schema and checks/coerces every literal *before*
anything is evaluated, so an invalid filter fails the same way whatever the data (``filter_sql`` uses
the same bound tree, which is what keeps the two in agreement).

Semantics (RFC 7644 §3.4.2.2 plus the decisions the RFC leaves open):

* A "resource document" is the served representation (``serialize.user_resource``: ``id`` and
  ``meta`` rendered from columns, dateTimes with milliseconds); ``filter_sql`` reproduces exactly that.
* Attribute names are case-insensitive; documents are expected to use the schema's canonical names
  (the domain layer stores them that way), because SQL cannot look JSON keys up case-insensitively.
* Two-valued logic. A comparison or ``pr`` on a missing/null attribute is false, and ``not`` simply
  negates: ``not (title eq "x")`` matches users without a title. ``ne`` is a comparison like the
  others ("some value differs"), so it is false on a missing attribute.
* A comparison on a multi-valued attribute is true if any value matches ("emails.type eq "work"");
  a multi-valued complex attribute without sub-attribute compares its ``value`` sub-attribute, and so
  does a single-valued complex one that has ``value`` (``manager eq "…"``); other complex attributes
  cannot be compared (400 invalidFilter).
* ``pr``: present and not null, "", [] or {} (for a multi-valued attribute: some element is).
* ``eq null`` means "not present" and ``ne null`` means "present" (RFC 7643 §2.5: unassigned and
  null are the same state); other operators with null are 400 invalidFilter.
* Strings: case-insensitive unless ``caseExact``. Case folding is ASCII-only so that SQLite (whose
  lower() is ASCII-only) and PostgreSQL give identical answers - except ``userName``, which is
  matched through the promoted ``user_name_lower`` column and therefore folds with ``str.lower()``.
  Ordering (gt/ge/lt/le) is by code point.
* Booleans: only eq/ne; "gt is not defined for boolean attributes" (RFC: Boolean and Binary
  attributes SHALL cause invalidFilter for gt/ge/lt/le; co/sw/ew are refused likewise). The string
  literals "true"/"false" are accepted for booleans; a string attribute compared with a non-string
  literal compares with its JSON text (``externalId eq 42`` matches "42").
* dateTime: the literal must be an ISO 8601 timestamp (400 invalidFilter otherwise; naive means UTC);
  comparison is chronological; co/sw/ew are refused. A stored value that does not parse never matches.
* An attribute the schema does not define (an unknown attribute, sub-attribute or schema URN) is
  400 invalidFilter naming it: answering "no match" would make a typo in an IdP's lookup filter
  look like "no such user" and lead to a duplicate create. Defined attributes filter whether or
  not a column holds them. Attribute/operator combinations that make no sense are invalidFilter
  too, as RFC 7644 §3.12 describes ("the specified attribute and filter comparison combination is
  not supported").
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Literal, Union

from provisio.scim.errors import INVALID_FILTER, ScimError
from provisio.scim.filter_ast import And, AttrPath, Compare, CompareOp, Filter, Not, Or, Present, ValuePath
from provisio.scim.schemas import Attribute, ResourceSchema

Fold = Literal["exact", "ascii", "unicode"]
Scalar = Union[str, bool, int, float, datetime]  # noqa: UP007 - a runtime alias

STRING_TYPES = frozenset({"string", "reference", "binary"})
NUMBER_TYPES = frozenset({"integer", "decimal"})
ORDERING_OPS = frozenset({"gt", "ge", "lt", "le"})
SUBSTRING_OPS = frozenset({"co", "sw", "ew"})

_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def ascii_lower(text: str) -> str:
    return text.translate(_ASCII_LOWER)


def fold_text(text: str, fold: Fold) -> str:
    if fold == "ascii":
        return ascii_lower(text)
    if fold == "unicode":
        return text.lower()
    return text


_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?"
    r"\s*(?:([Zz])|([+-])(\d{2}):?(\d{2}))?\Z"
)


def parse_datetime(text: str) -> datetime | None:
    """An ISO 8601 timestamp as an aware UTC datetime, or None. Naive means UTC; >6 fraction digits
    (.NET sends 7) are truncated."""
    m = _DATETIME.match(text.strip())
    if not m:
        return None
    y, mo, d, h, mi, s, frac, _z, sign, oh, om = m.groups()
    try:
        tz = UTC
        if sign:
            offset = timedelta(hours=int(oh), minutes=int(om))
            tz = timezone(-offset if sign == "-" else offset)
        micro = int((frac or "0")[:6].ljust(6, "0"))
        value = datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0), micro, tz)
        return value.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


# --- binding -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Where an attribute path leads in a document (or, with ``in_element``, in one element)."""

    top: Attribute  # attribute at the context root; in an element: the sub-attribute
    keys: tuple[str, ...]  # JSON keys from the context root to ``top`` (extension URN first)
    sub: Attribute | None  # sub-attribute below ``top``, written or the implied ``value``
    in_element: bool = False

    @property
    def leaf(self) -> Attribute:
        return self.sub or self.top

    @property
    def dotted(self) -> str:
        """Canonical name: ``name.givenName``, ``urn:…:User:manager.value`` (keys of columns)."""
        head = ":".join(self.keys)
        return f"{head}.{self.sub.name}" if self.sub else head

    @property
    def fold(self) -> Fold:
        if self.leaf.case_exact:
            return "exact"
        if not self.in_element and self.sub is None and self.keys == ("userName",):
            return "unicode"
        return "ascii"


@dataclass(frozen=True)
class BCompare:
    target: Target
    op: CompareOp
    value: Scalar  # coerced to the attribute's type; strings already folded


@dataclass(frozen=True)
class BPresent:
    target: Target


@dataclass(frozen=True)
class BAnd:
    items: tuple[Bound, ...]


@dataclass(frozen=True)
class BOr:
    items: tuple[Bound, ...]


@dataclass(frozen=True)
class BNot:
    expr: Bound


@dataclass(frozen=True)
class BValuePath:
    """Some element of ``target.top`` (an object, or any element of a simple multi-valued
    attribute) satisfies ``filter``, which is bound in that element's context."""

    target: Target
    filter: Bound


Bound = Union[BCompare, BPresent, BAnd, BOr, BNot, BValuePath]  # noqa: UP007


def invalid(detail: str) -> ScimError:
    return ScimError(400, detail, INVALID_FILTER)


def bind(filt: Filter, schema: ResourceSchema, parent: Attribute | None = None) -> Bound:
    """Resolve ``filt`` against ``schema`` (in the element context of ``parent`` when given)."""
    if isinstance(filt, And | Or):
        cls = type(filt)
        items = tuple(bind(f, schema, parent) for f in _flatten(filt, cls))
        return BAnd(items) if cls is And else BOr(items)
    if isinstance(filt, Not):
        return BNot(bind(filt.expr, schema, parent))
    if isinstance(filt, Present):
        return BPresent(_resolve_known(filt.path, schema, parent))
    if isinstance(filt, Compare):
        return _bind_compare(filt, schema, parent)
    if isinstance(filt, ValuePath):
        return _bind_value_path(filt, schema, parent)
    raise TypeError(f"not a filter node: {filt!r}")


def _flatten(filt: Filter, cls: type[And] | type[Or]) -> list[Filter]:
    """Operands of a chain of ``cls`` nodes, iteratively (long chains must not recurse)."""
    out: list[Filter] = []
    stack: list[Filter] = [filt]
    while stack:
        node = stack.pop()
        if isinstance(node, cls):
            stack.append(node.right)
            stack.append(node.left)
        else:
            out.append(node)
    return out


def resolve(path: AttrPath, schema: ResourceSchema, parent: Attribute | None = None) -> Target | None:
    """The Target of ``path``, or None when it names nothing the schema knows."""
    if parent is not None:
        if path.urn is not None or path.sub is not None:
            return None
        if not parent.is_complex:
            # In a simple multi-valued attribute's element, "value" is the element itself.
            if path.attr.lower() != "value":
                return None
            return Target(top=replace(parent, multi_valued=False), keys=(), sub=None, in_element=True)
        member = parent.sub(path.attr)
        return Target(top=member, keys=(member.name,), sub=None, in_element=True) if member else None

    attr = schema.attribute(path.attr, path.urn)
    ext_urn = schema.extension_urn(path.urn) if path.urn else None
    if attr is None and path.urn is None:
        # Leniency: an extension attribute without its URN, when only one extension has it.
        found = [(u, a[path.attr.lower()]) for u, a in schema.extensions.items() if path.attr.lower() in a]
        if len(found) == 1:
            ext_urn, attr = found[0]
    if attr is None:
        return None
    keys = (ext_urn, attr.name) if ext_urn else (attr.name,)
    sub: Attribute | None = None
    if path.sub is not None:
        sub = attr.sub(path.sub) if attr.is_complex else None
        if sub is None:
            return None
    return Target(top=attr, keys=keys, sub=sub)


def _resolve_known(path: AttrPath, schema: ResourceSchema, parent: Attribute | None) -> Target:
    """The Target of ``path``; 400 invalidFilter naming the path when the schema does not define it."""
    target = resolve(path, schema, parent)
    if target is None:
        where = f"{parent.name}[{path.text}]" if parent is not None else path.text
        raise invalid(f"Unknown attribute '{where}' in filter: {schema.name} does not define it")
    return target


def _bind_compare(filt: Compare, schema: ResourceSchema, parent: Attribute | None) -> Bound:
    target = _resolve_known(filt.path, schema, parent)
    op, value = filt.op, filt.value
    if value is None:
        if op == "eq":
            return BNot(BPresent(target))
        if op == "ne":
            return BPresent(target)
        raise invalid(f"{op} cannot compare with null; use eq null, ne null or pr")
    if target.sub is None and target.top.is_complex:
        implied = target.top.sub("value")
        if implied is None:
            raise invalid(
                f"{target.dotted} is a complex attribute: compare one of its sub-attributes "
                f"(e.g. {target.dotted}.{target.top.sub_attributes[0].name})"
                if target.top.sub_attributes
                else f"{target.dotted} is a complex attribute and cannot be compared"
            )
        target = replace(target, sub=implied)
    return BCompare(target, op, _coerce(target, op, value))


def _coerce(target: Target, op: CompareOp, value: str | bool | int | float) -> Scalar:
    leaf = target.leaf
    name = target.dotted
    if leaf.type in STRING_TYPES:
        if op in ORDERING_OPS and leaf.type == "binary":
            raise invalid(f"{op} is not defined for binary attributes ({name})")
        text = value if isinstance(value, str) else json.dumps(value)
        return fold_text(text, target.fold)
    if leaf.type == "boolean":
        if op not in ("eq", "ne"):
            raise invalid(f"{op} is not defined for boolean attributes ({name})")
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise invalid(f"{name} is a boolean attribute: compare it with true or false")
    if leaf.type == "dateTime":
        if op in SUBSTRING_OPS:
            raise invalid(f"{op} is not defined for dateTime attributes ({name})")
        parsed = parse_datetime(value) if isinstance(value, str) else None
        if parsed is None:
            raise invalid(f"{json.dumps(value)} is not a valid dateTime for {name} (use ISO 8601)")
        return parsed
    if leaf.type in NUMBER_TYPES:
        if op in SUBSTRING_OPS:
            raise invalid(f"{op} is not defined for numeric attributes ({name})")
        if isinstance(value, int | float) and not isinstance(value, bool):
            return value
        raise invalid(f"{name} is a number: compare it with a number")
    raise invalid(f"{name} ({leaf.type}) cannot be compared")


def _bind_value_path(filt: ValuePath, schema: ResourceSchema, parent: Attribute | None) -> Bound:
    if parent is not None:
        raise invalid("value filters cannot be nested")
    target = _resolve_known(filt.path, schema, None)
    if target.sub is not None or not (target.top.is_complex or target.top.multi_valued):
        raise invalid(f"a value filter needs a complex or multi-valued attribute, not {target.dotted}")
    return BValuePath(target, bind(filt.filter, schema, target.top))


# --- evaluation -------------------------------------------------------------------------------------


def matches(filt: Filter, element: Any, attribute: Attribute | None, schema: ResourceSchema) -> bool:
    """Whether ``element`` matches ``filt``.

    With ``attribute`` None, ``element`` is a whole resource document; otherwise it is one element of
    the multi-valued (or complex) ``attribute`` and paths in ``filt`` name its sub-attributes, as in
    the PATCH path ``emails[type eq "work"]``.
    """
    bound = bind(filt, schema, attribute)
    if attribute is not None and attribute.is_complex and not isinstance(element, dict):
        return False
    return evaluate(bound, element)


def evaluate(bound: Bound, root: Any) -> bool:
    if isinstance(bound, BAnd):
        return all(evaluate(b, root) for b in bound.items)
    if isinstance(bound, BOr):
        return any(evaluate(b, root) for b in bound.items)
    if isinstance(bound, BNot):
        return not evaluate(bound.expr, root)
    if isinstance(bound, BPresent):
        return any(is_present(v) for v in values(bound.target, root))
    if isinstance(bound, BCompare):
        return any(compare_value(bound, v) for v in values(bound.target, root))
    top = bound.target.top
    elements = _expand(top, _walk(root, bound.target.keys))
    return any(evaluate(bound.filter, el) for el in elements if isinstance(el, dict) or not top.is_complex)


_MISSING = object()


def _walk(root: Any, keys: tuple[str, ...]) -> Any:
    node = root
    for key in keys:
        if not isinstance(node, dict) or key not in node:
            return _MISSING
        node = node[key]
    return node


def _expand(attr: Attribute, node: Any) -> list[Any]:
    if node is _MISSING:
        return []
    if attr.multi_valued:
        return node if isinstance(node, list) else []  # a malformed non-list has no elements
    return [node]


def values(target: Target, root: Any) -> Iterable[Any]:
    """The values ``target`` designates in ``root`` (several for multi-valued attributes)."""
    tops = _expand(target.top, _walk(root, target.keys))
    if target.sub is None:
        return tops
    name = target.sub.name
    found: list[Any] = []
    for el in tops:
        if isinstance(el, dict) and name in el:
            found.extend(_expand(target.sub, el[name]))
    return found


def is_present(value: Any) -> bool:
    return value is not None and not (isinstance(value, str | list | dict) and len(value) == 0)


def compare_value(bound: BCompare, value: Any) -> bool:
    target, op, lit = bound.target, bound.op, bound.value
    kind = target.leaf.type
    if kind in STRING_TYPES:
        if not isinstance(value, str) or not isinstance(lit, str):
            return False
        return _apply(op, fold_text(value, target.fold), lit)
    if kind == "boolean":
        if not isinstance(value, bool):
            return False
        return (value == lit) if op == "eq" else (value != lit)
    if kind == "dateTime":
        when = parse_datetime(value) if isinstance(value, str) else None
        return when is not None and _apply(op, when, lit)
    if kind in NUMBER_TYPES:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        return _apply(op, value, lit)
    return False


def _apply(op: CompareOp, left: Any, right: Any) -> bool:
    if op == "eq":
        return bool(left == right)
    if op == "ne":
        return bool(left != right)
    if op == "co":
        return bool(right in left)
    if op == "sw":
        return bool(left.startswith(right))
    if op == "ew":
        return bool(left.endswith(right))
    if op == "gt":
        return bool(left > right)
    if op == "ge":
        return bool(left >= right)
    if op == "lt":
        return bool(left < right)
    return bool(left <= right)
