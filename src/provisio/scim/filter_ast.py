"""The syntax tree of SCIM filters and PATCH paths (RFC 7644 §3.4.2.2 and §3.5.2).

``filter_parser`` builds these nodes; ``filter_sql`` turns a filter into SQL; ``filter_eval`` evaluates
one against a single JSON element (PATCH value filters, tests). Names are kept as written by the client;
resolution against the schema (case-insensitive) happens in the consumers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Union

CompareOp = Literal["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"]
Literal_ = Union[str, int, float, bool, None]  # noqa: UP007 - a type alias needs Union at runtime on 3.11


@dataclass(frozen=True)
class AttrPath:
    """``[urn:]attr[.sub]``; ``urn`` is the schema URN prefix when the client wrote one."""

    attr: str
    sub: str | None = None
    urn: str | None = None

    @property
    def text(self) -> str:
        """The path as written (modulo whitespace), e.g. for ``ResourceSchema.split_urn``.

        The parser splits a URN prefix at its last colon, so a path that is an extension URN alone
        (``urn:…:enterprise:2.0:User``) comes out as urn ``urn:…:2.0`` and attr ``User``; consumers that
        accept such paths (PATCH) should re-split ``text`` against the schema.
        """
        head = f"{self.urn}:{self.attr}" if self.urn else self.attr
        return f"{head}.{self.sub}" if self.sub else head


@dataclass(frozen=True)
class Compare:
    path: AttrPath
    op: CompareOp
    value: Literal_


@dataclass(frozen=True)
class Present:
    path: AttrPath


@dataclass(frozen=True)
class And:
    left: Filter
    right: Filter


@dataclass(frozen=True)
class Or:
    left: Filter
    right: Filter


@dataclass(frozen=True)
class Not:
    expr: Filter


@dataclass(frozen=True)
class ValuePath:
    """``emails[type eq "work" and value co "@x"]``: elements of a multi-valued attribute matching ``filter``.

    Inside ``filter``, attribute paths name sub-attributes of ``path.attr`` (``AttrPath("type")``).
    """

    path: AttrPath
    filter: Filter


Filter = Union[Compare, Present, And, Or, Not, ValuePath]  # noqa: UP007


@dataclass(frozen=True)
class PatchPath:
    """A PATCH ``path``: ``attrPath`` or ``valuePath[.subAttr]`` (RFC 7644 §3.5.2, ABNF ``PATH``)."""

    path: AttrPath
    value_filter: Filter | None = None
    sub: str | None = None  # only with value_filter: emails[type eq "work"].value
