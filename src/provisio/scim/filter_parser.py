"""A recursive-descent parser for SCIM filters (RFC 7644 §3.4.2.2, Figure 1) and PATCH paths (§3.5.2).

Grammar accepted (RFC ABNF, with the leniencies noted below)::

    FILTER    = orExp
    orExp     = andExp *(WS "or" WS andExp)          ; "and" binds tighter than "or"
    andExp    = unary *(WS "and" WS unary)
    unary     = "not" [WS] "(" FILTER ")" / "(" FILTER ")" / attrExp / valuePath
    valuePath = attrPath "[" valFilter "]"            ; valFilter: a FILTER without nested valuePaths
    attrExp   = attrPath WS "pr" / attrPath WS compareOp WS compValue
    attrPath  = [URI ":"] ATTRNAME ["." ATTRNAME]
    PATH      = attrPath / valuePath ["." ATTRNAME]   ; PATCH only

Keywords (operators, ``and``/``or``/``not``, ``true``/``false``/``null``) are case-insensitive.
Positions in error details are 1-based character offsets into the text.

Leniencies (none changes the meaning of an RFC-conformant filter, because each applies only to input
the RFC grammar rejects):

* any run of whitespace stands for the single SP of the ABNF, and it may be omitted next to
  parentheses, brackets and quoted strings;
* ``$ref`` is accepted as an attribute name (RFC 7643 uses it, although ATTRNAME forbids "$");
* a bare (unquoted) comparison value that is not ``true``/``false``/``null`` or a JSON number is taken
  as a string: Microsoft's SCIM validator sends ``userName eq Test_User_abc``. Such a token ends at
  whitespace or at one of ``( ) [ ] "``.
"""

from __future__ import annotations

import json
import re
from typing import NoReturn, cast

from provisio.scim.errors import INVALID_FILTER, INVALID_PATH, ScimError
from provisio.scim.filter_ast import (
    And,
    AttrPath,
    Compare,
    CompareOp,
    Filter,
    Literal_,
    Not,
    Or,
    PatchPath,
    Present,
    ValuePath,
)

MAX_LENGTH = 4096
MAX_DEPTH = 50

COMPARE_OPS: frozenset[str] = frozenset({"eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"})
_OPS_HINT = "a comparison operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr)"

_PATH_CHARS = re.compile(r"[A-Za-z0-9_\-.:$]+")
_NAME = re.compile(r"\$?[A-Za-z][A-Za-z0-9_\-]*")
_ATTRNAME = re.compile(_NAME.pattern + r"\Z")
_WORD = re.compile(r"[A-Za-z]+")
_BARE = re.compile(r'[^\s()\[\]"]+')
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?\Z")
_WS = re.compile(r"\s*")
_TOKEN = re.compile(r'"[^"]*"?|[^\s()\[\]"]+')


def parse_filter(text: str) -> Filter:
    """Parse a ``filter`` query/SearchRequest value; raises ScimError(400, …, invalidFilter)."""
    p = _Parser(text, "filter", INVALID_FILTER)
    p.check_length()
    p.skip_ws()
    if p.at_end():
        p.fail("the filter is empty")
    result = p.parse_or(in_brackets=False)
    p.skip_ws()
    if not p.at_end():
        p.fail_unexpected('"and", "or" or the end of the filter')
    return result


def parse_patch_path(text: str) -> PatchPath:
    """Parse a PATCH operation ``path``; raises ScimError(400, …, invalidPath)."""
    p = _Parser(text, "path", INVALID_PATH)
    p.check_length()
    p.skip_ws()
    if p.at_end():
        p.fail("the path is empty")
    path = p.parse_attr_path()
    value_filter: Filter | None = None
    sub: str | None = None
    if p.peek() == "[":
        value_filter = p.parse_brackets(path)
        if p.peek() == ".":
            p.pos += 1
            m = _NAME.match(p.text, p.pos)
            if not m:
                p.fail('expected a sub-attribute name after "]."')
            p.pos = m.end()
            sub = m.group(0)
    p.skip_ws()
    if not p.at_end():
        p.fail_unexpected('"[" or the end of the path' if value_filter is None else "the end of the path")
    return PatchPath(path=path, value_filter=value_filter, sub=sub)


class _Parser:
    def __init__(self, text: str, what: str, scim_type: str) -> None:
        self.text = text
        self.pos = 0
        self.depth = 0
        self.what = what
        self.scim_type = scim_type

    # --- errors -------------------------------------------------------------------------------------

    def fail(self, message: str, pos: int | None = None) -> NoReturn:
        at = self.pos if pos is None else pos
        raise ScimError(400, f"Invalid {self.what} at position {at + 1}: {message}", self.scim_type)

    def fail_unexpected(self, expected: str) -> NoReturn:
        self.fail(f"expected {expected}, found {self.snippet()}")

    def snippet(self) -> str:
        if self.at_end():
            return "the end of the text"
        m = _TOKEN.match(self.text, self.pos)
        token = (m.group(0) if m else self.text[self.pos])[:30]
        return f"'{token}'" if '"' in token else f'"{token}"'

    def check_length(self) -> None:
        if len(self.text) > MAX_LENGTH:
            raise ScimError(400, f"Invalid {self.what}: longer than {MAX_LENGTH} characters", self.scim_type)

    # --- lexical helpers ----------------------------------------------------------------------------

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip_ws(self) -> None:
        m = _WS.match(self.text, self.pos)
        if m:
            self.pos = m.end()

    def word_at(self, pos: int) -> str:
        """The lower-cased keyword at ``pos`` if it is a whole word, else ""."""
        m = _WORD.match(self.text, pos)
        if not m:
            return ""
        end = m.end()
        # A keyword must not run on into an attribute-name-ish character ("order" is not "or").
        if end < len(self.text) and (self.text[end].isalnum() or self.text[end] in "_-.:$"):
            return ""
        return m.group(0).lower()

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            self.fail(f"nested more than {MAX_DEPTH} levels deep")

    # --- grammar ------------------------------------------------------------------------------------

    def parse_or(self, *, in_brackets: bool) -> Filter:
        operands = [self.parse_and(in_brackets=in_brackets)]
        while self._keyword_follows("or"):
            operands.append(self.parse_and(in_brackets=in_brackets))
        return _left_assoc(Or, operands)

    def parse_and(self, *, in_brackets: bool) -> Filter:
        operands = [self.parse_unary(in_brackets=in_brackets)]
        while self._keyword_follows("and"):
            operands.append(self.parse_unary(in_brackets=in_brackets))
        return _left_assoc(And, operands)

    def _keyword_follows(self, keyword: str) -> bool:
        """Consume ``keyword`` (and surrounding whitespace) if it comes next."""
        save = self.pos
        self.skip_ws()
        if self.word_at(self.pos) == keyword:
            self.pos += len(keyword)
            self.skip_ws()
            if self.at_end():
                self.fail(f'expected an expression after "{keyword}"')
            return True
        self.pos = save
        return False

    def parse_unary(self, *, in_brackets: bool) -> Filter:
        self.skip_ws()
        start = self.pos
        if self.at_end():
            self.fail('expected an attribute path, "not" or "("')
        if self.word_at(start) == "not":
            self.pos += 3
            self.skip_ws()
            if self.peek() != "(":
                self.fail_unexpected('"(" after "not"')
            return Not(self._parse_group(in_brackets=in_brackets))
        if self.peek() == "(":
            return self._parse_group(in_brackets=in_brackets)
        path = self.parse_attr_path()
        if self.peek() == "[":
            if in_brackets:
                self.fail("value filters cannot be nested")
            return ValuePath(path=path, filter=self.parse_brackets(path))
        return self._parse_attr_exp(path, start)

    def _parse_group(self, *, in_brackets: bool) -> Filter:
        open_at = self.pos
        self.pos += 1  # "("
        self.enter()
        inner = self.parse_or(in_brackets=in_brackets)
        self.skip_ws()
        if self.peek() != ")":
            if self.at_end():
                self.fail(f'missing ")" to close the "(" at position {open_at + 1}')
            self.fail_unexpected('"and", "or" or ")"')
        self.pos += 1
        self.depth -= 1
        return inner

    def parse_brackets(self, path: AttrPath) -> Filter:
        open_at = self.pos
        self.pos += 1  # "["
        self.enter()
        inner = self.parse_or(in_brackets=True)
        self.skip_ws()
        if self.peek() != "]":
            if self.at_end():
                self.fail(f'missing "]" to close the "[" at position {open_at + 1}')
            self.fail_unexpected('"and", "or" or "]"')
        self.pos += 1
        self.depth -= 1
        return inner

    def parse_attr_path(self) -> AttrPath:
        start = self.pos
        m = _PATH_CHARS.match(self.text, start)
        if not m:
            self.fail_unexpected("an attribute path")
        token = m.group(0)
        self.pos = m.end()
        urn: str | None = None
        rest = token
        if ":" in token:
            # URNs contain dots ("2.0"), so the attribute starts after the last colon.
            urn, rest = token.rsplit(":", 1)
            if not urn:
                self.fail('expected a schema URN before ":"', start)
        parts = rest.split(".")
        if len(parts) > 2:
            self.fail(f'"{token}" has more than one sub-attribute', start)
        for part in parts:
            if not _ATTRNAME.match(part):
                self.fail(f'"{token}" is not a valid attribute path', start)
        return AttrPath(attr=parts[0], sub=parts[1] if len(parts) == 2 else None, urn=urn)

    def _parse_attr_exp(self, path: AttrPath, start: int) -> Filter:
        written = self.text[start : self.pos]
        self.skip_ws()
        op = self.word_at(self.pos)
        if op == "pr":
            self.pos += 2
            return Present(path)
        if op not in COMPARE_OPS:
            self.fail(f'expected {_OPS_HINT} after "{written}"')
        self.pos += 2
        self.skip_ws()
        return Compare(path=path, op=cast(CompareOp, op), value=self._parse_value(op))

    def _parse_value(self, op: str) -> Literal_:
        start = self.pos
        if self.peek() == '"':
            return self._parse_string()
        m = _BARE.match(self.text, start)
        if not m:
            self.fail(f'expected a value after "{op}"')
        token = m.group(0)
        self.pos = m.end()
        low = token.lower()
        if low in ("true", "false"):
            return low == "true"
        if low == "null":
            return None
        num = _NUMBER.match(token)
        if num:
            if num.group(1) is None and num.group(2) is None:
                return int(token)
            value = float(token)
            if value in (float("inf"), float("-inf")):
                self.fail(f"the number {token} is out of range", start)
            return value
        # Leniency (see module docstring): an unquoted token is a string.
        self._check_string(token, start)
        return token

    def _parse_string(self) -> str:
        start = self.pos
        i = start + 1
        n = len(self.text)
        while i < n:
            c = self.text[i]
            if c == "\\":
                i += 2
                continue
            if c == '"':
                break
            i += 1
        else:
            self.fail("unterminated string", start)
        raw = self.text[start : i + 1]
        try:
            value = json.loads(raw, strict=False)  # strict=False: tolerate raw tabs/newlines
        except json.JSONDecodeError as exc:
            self.fail(f"invalid string literal ({exc.msg})", start + exc.pos)
        self.pos = i + 1
        self._check_string(value, start)
        return cast(str, value)

    def _check_string(self, value: str, start: int) -> None:
        # Neither database can store NUL in text, and lone surrogates are not UTF-8: refuse both
        # here rather than fail deep inside the driver.
        if "\x00" in value:
            self.fail("strings must not contain NUL characters", start)
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            self.fail("the string contains an unpaired surrogate escape", start)


def _left_assoc(cls: type[And] | type[Or], operands: list[Filter]) -> Filter:
    result = operands[0]
    for operand in operands[1:]:
        result = cls(result, operand)
    return result
