"""SCIM filters as SQL over ``members`` rows, for SQLite and PostgreSQL.

The filter is bound with ``filter_eval.bind`` (same resolution, coercion and errors as the reference
evaluator) and every predicate reproduces ``filter_eval`` exactly:

* the evaluator's document is the *served* resource, so ``id`` and ``meta`` (not stored in ``doc``)
  come from columns: meta.created/lastModified compare as served, truncated to milliseconds, via
  range conditions on the indexed columns; meta.resourceType/version are computed; ``schemas`` is the
  core URN plus each known extension present in ``doc``; meta.location (needs the base URL) is 400;
* promoted columns serve the attributes they hold (userName via ``user_name_lower``, externalId,
  displayName, name.givenName/familyName); ``active`` is read from JSON because its column defaults
  to true when the document has none;
* everything else is read from the JSON ``doc``; multi-valued attributes become a correlated
  ``EXISTS`` over ``json_each`` / ``jsonb_array_elements``, so that in ``emails[type eq "work" and
  value co "@x"]`` one element must satisfy both conditions;
* every atomic predicate is two-valued (a missing or mistyped JSON value gives false, never NULL,
  through ``CASE … ELSE false``), so ``NOT`` agrees with the evaluator instead of SQL's three-valued
  logic dropping the rows where the attribute is missing;
* case-insensitive comparisons fold ASCII only (SQLite's lower(); ``translate`` on PostgreSQL, whose
  lower() follows the locale), string ordering uses code points (``COLLATE "C"`` on PostgreSQL), and
  substring operators use LIKE with escaped wildcards - or GLOB for case-exact attributes on SQLite,
  whose LIKE ignores ASCII case.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy import ColumnElement, FromClause
from sqlalchemy.dialects.postgresql import JSONB

from provisio.db.models import Member
from provisio.scim.filter_ast import CompareOp, Filter
from provisio.scim.filter_eval import (
    NUMBER_TYPES,
    STRING_TYPES,
    BAnd,
    BCompare,
    BNot,
    BOr,
    Bound,
    BPresent,
    BValuePath,
    Target,
    bind,
    compare_value,
    invalid,
)
from provisio.scim.schemas import USER_SCHEMA, ResourceSchema

Pred = ColumnElement[bool]

LIKE_ESCAPE = "/"


@dataclass(frozen=True)
class _Column:
    expr: Any  # a Member column, or an SQL expression of columns
    nullable: bool
    millis: bool = False  # rendered with millisecond precision (serialize.scim_datetime)


# What a served User shows for these paths comes from columns (see provisio.domain.members and
# provisio.scim.serialize: ``id`` and ``meta`` are not stored in ``doc`` but rendered from columns).
# ``active`` stays in JSON: its column defaults to true when the document has no ``active``, while
# the served resource then has none; it is not indexed anyway.
COLUMNS: dict[str, _Column] = {
    "id": _Column(Member.id, nullable=False),
    "externalId": _Column(Member.external_id, nullable=True),
    "userName": _Column(Member.user_name_lower, nullable=False),  # = userName.lower(); literal folded alike
    "displayName": _Column(Member.display_name, nullable=True),
    "name.givenName": _Column(Member.given_name, nullable=True),
    "name.familyName": _Column(Member.family_name, nullable=True),
    "meta.created": _Column(Member.created_at, nullable=False, millis=True),
    "meta.lastModified": _Column(Member.modified_at, nullable=False, millis=True),
    "meta.resourceType": _Column(sa.literal("User", sa.String), nullable=False),
    "meta.version": _Column(
        sa.literal('W/"', sa.String) + sa.cast(Member.version, sa.String) + sa.literal('"', sa.String),
        nullable=False,
    ),
}
# Always-present rendered objects, and paths SQL cannot reproduce (location needs the base URL).
RENDERED_OBJECTS = frozenset({"meta"})
UNSUPPORTED = frozenset({"meta.location"})
MILLI = timedelta(milliseconds=1)


def to_sql(filt: Filter, schema: ResourceSchema, dialect_name: str) -> Pred:
    """A boolean SQL expression selecting the ``Member`` rows whose document matches ``filt``."""
    if dialect_name == "sqlite":
        dialect: _Dialect = _Sqlite()
    elif dialect_name == "postgresql":
        dialect = _Postgres()
    else:
        raise ValueError(f"unsupported dialect {dialect_name!r}")
    return _Translator(dialect, schema).pred(bind(filt, schema, None), _Ctx())


def escape_like(text: str) -> str:
    return (
        text.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2)
        .replace("%", LIKE_ESCAPE + "%")
        .replace("_", LIKE_ESCAPE + "_")
    )


def escape_glob(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


def _false() -> Pred:
    return sa.false()


def _when(cond: Pred, then: Pred) -> Pred:
    """``then`` where ``cond`` holds, else false - also when ``cond`` is NULL."""
    return sa.case((cond, then), else_=_false())


# --- JSON access per dialect --------------------------------------------------------------------------


class _Node(Protocol):
    """A JSON value inside a row: a path into ``doc``, an array element, or a member of one."""

    def is_type(self, *kinds: str) -> Pred: ...  # kinds: string number true false null array object
    def text(self) -> ColumnElement[Any]: ...  # meaningful where is_type("string")
    def number(self) -> ColumnElement[Any]: ...  # meaningful where is_type("number")
    def present(self) -> Pred: ...
    def child(self, key: str) -> _Node: ...
    def elements(self) -> tuple[FromClause, _Node]: ...


class _Dialect(Protocol):
    def doc(self, keys: tuple[str, ...]) -> _Node: ...
    def fold(self, expr: ColumnElement[Any]) -> ColumnElement[Any]: ...
    def ordered(self, expr: ColumnElement[Any]) -> ColumnElement[Any]: ...
    def substring(self, expr: ColumnElement[Any], pattern_text: str, op: str, exact: bool) -> Pred: ...


def _sqlite_path(keys: tuple[str, ...]) -> str:
    return "$" + "".join('."' + k.replace('"', '\\"') + '"' for k in keys)


_SQLITE_KINDS = {
    "string": ("text",),
    "number": ("integer", "real"),
    "true": ("true",),
    "false": ("false",),
    "null": ("null",),
    "array": ("array",),
    "object": ("object",),
}


@dataclass(frozen=True)
class _SqliteNode:
    """``keys`` below the JSON text ``base`` (where ``guard`` holds), or a bare ``json_each`` row."""

    base: ColumnElement[Any] | None = None
    keys: tuple[str, ...] = ()
    guard: Pred | None = None
    each: Any = None  # json_each table: this node is one of its elements

    def _parts(self) -> tuple[ColumnElement[Any], ColumnElement[Any], ColumnElement[Any]]:
        """(json_type name or NULL, SQL value of a primitive, JSON text of an array/object)."""
        if self.each is not None:
            return self.each.c.type, self.each.c.atom, self.each.c.value
        assert self.base is not None
        path = sa.literal(_sqlite_path(self.keys), sa.String)
        type_: ColumnElement[Any] = sa.func.json_type(self.base, path)
        value: ColumnElement[Any] = sa.func.json_extract(self.base, path)
        if self.guard is not None:
            # json_type/json_extract raise on text that is not JSON, i.e. a primitive element.
            type_ = sa.case((self.guard, type_))
            value = sa.case((self.guard, value))
        return type_, value, value

    def is_type(self, *kinds: str) -> Pred:
        return self._parts()[0].in_([n for k in kinds for n in _SQLITE_KINDS[k]])

    def text(self) -> ColumnElement[Any]:
        return self._parts()[1]

    def number(self) -> ColumnElement[Any]:
        return self._parts()[1]

    def present(self) -> Pred:
        _, value, json = self._parts()
        return sa.case(
            (self.is_type("number", "true", "false"), sa.true()),
            (self.is_type("string"), value != ""),
            (self.is_type("array"), sa.func.json_array_length(json) > 0),
            (self.is_type("object"), json != "{}"),
            else_=_false(),
        )

    def child(self, key: str) -> _Node:
        if self.each is not None:
            return _SqliteNode(self.each.c.value, (key,), self.each.c.type == "object")
        return _SqliteNode(self.base, (*self.keys, key), self.guard)

    def elements(self) -> tuple[FromClause, _Node]:
        if self.each is not None:
            raise invalid("nested multi-valued attributes are not supported in filters")
        array = sa.case((self.is_type("array"), self._parts()[2]), else_=sa.literal("[]"))
        each = sa.func.json_each(array).table_valued("value", "type", "atom")
        return each, _SqliteNode(each=each)


class _Sqlite:
    def doc(self, keys: tuple[str, ...]) -> _Node:
        return _SqliteNode(Member.__table__.c.doc, keys)

    def fold(self, expr: ColumnElement[Any]) -> ColumnElement[Any]:
        return sa.func.lower(expr)  # ASCII-only in SQLite without ICU, which is what we want

    def ordered(self, expr: ColumnElement[Any]) -> ColumnElement[Any]:
        return expr  # BINARY collation: UTF-8 byte order = code point order

    def substring(self, expr: ColumnElement[Any], pattern_text: str, op: str, exact: bool) -> Pred:
        if exact:  # LIKE ignores ASCII case in SQLite; GLOB does not
            g = escape_glob(pattern_text)
            pattern = {"co": f"*{g}*", "sw": f"{g}*", "ew": f"*{g}"}[op]
            return expr.op("GLOB", is_comparison=True)(sa.literal(pattern, sa.String))
        return _like(expr, pattern_text, op)


def _like(expr: ColumnElement[Any], pattern_text: str, op: str) -> Pred:
    e = escape_like(pattern_text)
    pattern = {"co": f"%{e}%", "sw": f"{e}%", "ew": f"%{e}"}[op]
    return expr.like(sa.literal(pattern, sa.String), escape=LIKE_ESCAPE)


_PG_KINDS = {"string": "string", "number": "number", "null": "null", "array": "array", "object": "object"}
_EMPTY_PATH: ColumnElement[Any] = sa.literal_column("'{}'::text[]")


@dataclass(frozen=True)
class _PgNode:
    j: ColumnElement[Any]  # jsonb, NULL when missing

    def _typeof(self) -> ColumnElement[Any]:
        return sa.func.jsonb_typeof(self.j)

    def is_type(self, *kinds: str) -> Pred:
        conds: list[Pred] = []
        simple = [_PG_KINDS[k] for k in kinds if k in _PG_KINDS]
        if simple:
            conds.append(self._typeof().in_(simple))
        for k in kinds:
            if k in ("true", "false"):
                conds.append(self.j == sa.cast(sa.literal(k), JSONB))
        return conds[0] if len(conds) == 1 else sa.or_(*conds)

    def text(self) -> ColumnElement[Any]:
        return self.j.op("#>>", return_type=sa.Text)(_EMPTY_PATH)

    def number(self) -> ColumnElement[Any]:
        return sa.cast(self.text(), sa.Numeric)

    def present(self) -> Pred:
        t = self._typeof()
        return sa.case(
            (t.in_(["number", "boolean"]), sa.true()),
            (t == "string", self.text() != ""),
            (t == "array", sa.func.jsonb_array_length(self.j) > 0),
            (t == "object", self.j != sa.cast(sa.literal("{}"), JSONB)),
            else_=_false(),
        )

    def child(self, key: str) -> _Node:
        # "->" yields NULL (no error) on non-objects, so no guard is needed.
        return _PgNode(self.j.op("->", return_type=JSONB)(sa.literal(key, sa.String)))

    def elements(self) -> tuple[FromClause, _Node]:
        # jsonb_array_elements raises on a non-array: iterate [] instead.
        array = sa.case((self._typeof() == "array", self.j), else_=sa.cast(sa.literal("[]"), JSONB))
        each = sa.func.jsonb_array_elements(array).table_valued(sa.column("value", JSONB))
        return each, _PgNode(each.c.value)


_UPPER, _LOWER = string.ascii_uppercase, string.ascii_lowercase
_ALL_KINDS = ("string", "number", "true", "false", "null", "array", "object")


class _Postgres:
    def doc(self, keys: tuple[str, ...]) -> _Node:
        node: _Node = _PgNode(sa.type_coerce(Member.doc, JSONB))
        for key in keys:
            node = node.child(key)
        return node

    def fold(self, expr: ColumnElement[Any]) -> ColumnElement[Any]:
        # lower() follows the database locale (Unicode); the evaluator and SQLite fold ASCII only.
        return sa.func.translate(expr, sa.literal(_UPPER), sa.literal(_LOWER))

    def ordered(self, expr: ColumnElement[Any]) -> ColumnElement[Any]:
        return sa.collate(expr, "C")

    def substring(self, expr: ColumnElement[Any], pattern_text: str, op: str, exact: bool) -> Pred:
        return _like(expr, pattern_text, op)


# --- translation --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Ctx:
    """Where paths are resolved: the row (``node`` None), one array element, or - for a value filter
    on a single-valued complex attribute - the row again with paths re-rooted under ``rebase``."""

    node: _Node | None = None
    rebase: Target | None = None


class _Translator:
    def __init__(self, dialect: _Dialect, schema: ResourceSchema) -> None:
        self.d = dialect
        self.schema = schema

    def pred(self, b: Bound, ctx: _Ctx) -> Pred:
        if isinstance(b, BAnd):
            return sa.and_(*(self.pred(x, ctx) for x in b.items))
        if isinstance(b, BOr):
            return sa.or_(*(self.pred(x, ctx) for x in b.items))
        if isinstance(b, BNot):
            return sa.not_(self.pred(b.expr, ctx))
        if isinstance(b, BPresent):
            return self._leaf(b.target, ctx, lambda n: n.present(), _column_present, lambda v: True)
        if isinstance(b, BCompare):
            return self._leaf(
                b.target,
                ctx,
                lambda n: self._compare_node(b, n),
                lambda c: self._compare_column(b, c),
                lambda v: compare_value(b, v),
            )
        return self._value_path(b, ctx)

    def _leaf(
        self,
        t: Target,
        ctx: _Ctx,
        on_node: Callable[[_Node], Pred],
        on_column: Callable[[_Column], Pred],
        on_constant: Callable[[Any], bool],
    ) -> Pred:
        if ctx.rebase is not None:
            t = Target(top=ctx.rebase.top, keys=ctx.rebase.keys, sub=t.top)
            ctx = _Ctx()
        if ctx.node is None:
            name = t.dotted
            if name in UNSUPPORTED:
                raise invalid(f"filtering on {name} is not supported")
            if (column := COLUMNS.get(name)) is not None:
                return on_column(column)
            if name in RENDERED_OBJECTS:
                return sa.true()  # only "pr" reaches here: meta cannot be compared
            if name == "schemas":
                return self._schemas(on_constant)
        node = self.d.doc(t.keys) if ctx.node is None else _descend(ctx.node, t.keys)
        if t.top.multi_valued:
            each, element = node.elements()
            return self._exists(each, on_node(element.child(t.sub.name) if t.sub else element))
        return on_node(node.child(t.sub.name) if t.sub else node)

    def _schemas(self, holds: Callable[[Any], bool]) -> Pred:
        """The served ``schemas``: the core URN, plus each known extension the document has."""
        if holds(USER_SCHEMA):
            return sa.true()
        conds = [
            _when(self.d.doc((urn,)).is_type(*_ALL_KINDS), sa.true())
            for urn in self.schema.extensions
            if holds(urn)
        ]
        return sa.or_(*conds) if conds else _false()

    def _exists(self, each: FromClause, cond: Pred) -> Pred:
        return sa.select(sa.literal(1)).select_from(each).where(cond).correlate(Member).exists()

    def _value_path(self, b: BValuePath, ctx: _Ctx) -> Pred:
        t = b.target
        if ctx.node is not None or ctx.rebase is not None:
            raise invalid("value filters cannot be nested")
        node = self.d.doc(t.keys)
        if not t.top.multi_valued:
            # name[givenName eq "x"]: the object must exist; its sub-attributes may be columns.
            exists = sa.true() if t.dotted in RENDERED_OBJECTS else _when(node.is_type("object"), sa.true())
            return sa.and_(exists, self.pred(b.filter, _Ctx(rebase=t)))
        each, element = node.elements()
        inner = self.pred(b.filter, _Ctx(node=element))
        cond = _when(element.is_type("object"), inner) if t.top.is_complex else inner
        return self._exists(each, cond)

    # -- comparisons --

    def _compare_node(self, b: BCompare, node: _Node) -> Pred:
        t, op, lit = b.target, b.op, b.value
        kind = t.leaf.type
        if kind in STRING_TYPES:
            assert isinstance(lit, str)
            text = node.text()
            if t.fold != "exact":
                text = self.d.fold(text)
            return _when(node.is_type("string"), self._string_op(text, op, lit, t.fold == "exact"))
        if kind == "boolean":
            wanted = lit if op == "eq" else not lit
            return _when(node.is_type("true" if wanted else "false"), sa.true())
        if kind in NUMBER_TYPES:
            return _when(node.is_type("number"), _ordered_op(node.number(), op, sa.literal(lit)))
        # dateTime stored in JSON: no portable chronological comparison in SQL. Only meta.* are
        # dateTime in the schemas served, and they are columns.
        raise invalid(f"filtering on {t.dotted} is not supported")

    def _compare_column(self, b: BCompare, column: _Column) -> Pred:
        t, op, lit = b.target, b.op, b.value
        kind = t.leaf.type
        expr: ColumnElement[Any] = column.expr
        if kind in STRING_TYPES:
            assert isinstance(lit, str)
            if t.fold == "ascii":
                expr = self.d.fold(expr)
            pred = self._string_op(expr, op, lit, t.fold == "exact")
        elif kind == "dateTime" and column.millis:
            assert isinstance(lit, datetime)
            pred = _millis_compare(column.expr, op, lit)
        else:
            raise invalid(f"filtering on {t.dotted} is not supported")
        return sa.and_(column.expr.is_not(None), pred) if column.nullable else pred

    def _string_op(self, expr: ColumnElement[Any], op: CompareOp, lit: str, exact: bool) -> Pred:
        if op in ("co", "sw", "ew"):
            return self.d.substring(expr, lit, op, exact)
        value = sa.literal(lit, sa.String)
        if op in ("eq", "ne"):
            return _ordered_op(expr, op, value)
        return _ordered_op(self.d.ordered(expr), op, value)


def _descend(node: _Node, keys: tuple[str, ...]) -> _Node:
    for key in keys:
        node = node.child(key)
    return node


def _ordered_op(left: ColumnElement[Any], op: CompareOp, right: ColumnElement[Any]) -> Pred:
    if op == "eq":
        return left == right
    if op == "ne":
        return left != right
    if op == "gt":
        return left > right
    if op == "ge":
        return left >= right
    if op == "lt":
        return left < right
    if op == "le":
        return left <= right
    raise invalid(f"{op} is not defined for this attribute")


def _column_present(column: _Column) -> Pred:
    expr = column.expr
    if isinstance(expr.type, sa.String):
        return sa.and_(expr.is_not(None), expr != "") if column.nullable else expr != ""
    return expr.is_not(None) if column.nullable else sa.true()


def _millis_compare(column: Any, op: CompareOp, lit: datetime) -> Pred:
    """``trunc_ms(column) op lit`` - what a client comparing the served value sees - as a range on the
    column itself, so that the index on it stays usable."""
    floor = lit - timedelta(microseconds=lit.microsecond % 1000)
    aligned = floor == lit
    try:
        above = floor + MILLI  # the first served value greater than lit
    except OverflowError:
        return _false() if op in ("eq", "gt", "ge") else sa.true()
    ceil = floor if aligned else above  # the first served value >= lit

    def at(value: datetime) -> ColumnElement[Any]:
        return sa.literal(value, column.type)

    if op == "eq":
        return sa.and_(column >= at(lit), column < at(above)) if aligned else _false()
    if op == "ne":
        return sa.or_(column < at(lit), column >= at(above)) if aligned else sa.true()
    if op == "gt":
        return column >= at(above)
    if op == "ge":
        return column >= at(ceil)
    if op == "lt":
        return column < at(ceil)
    if op == "le":
        return column < at(above)
    raise invalid(f"{op} is not defined for dateTime attributes")
