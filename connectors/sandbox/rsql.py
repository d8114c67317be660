"""RSQL, the filter language of Verifone's ``GET /v2/customer?search=…``: parsing only.

Grammar (after jirutka/rsql-parser, which the documented syntax follows)::

    or          = and ("," and)*
    and         = constraint (";" constraint)*          ; AND binds tighter than OR
    constraint  = "(" or ")" | comparison
    comparison  = selector operator arguments
    operator    = "==" | "!=" | "=" ALPHA* "=" | "<" | "<=" | ">" | ">="
    arguments   = "(" value ("," value)* ")" | value
    value       = unreserved+ | '"' … '"' | "'" … "'"    ; backslash escapes inside quotes

Whitespace between tokens is ignored. ``<``/``<=``/``>``/``>=`` are the usual aliases of
``=lt=``/``=le=``/``=gt=``/``=ge=``. What the fields and operators *mean* is in
:mod:`connectors.sandbox.query`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NoReturn

_RESERVED = frozenset("\"'();,=!~<> \t\r\n")
_ALIASES = {"<": "=lt=", "<=": "=le=", ">": "=gt=", ">=": "=ge="}


class RsqlError(ValueError):
    """The search expression is malformed or uses an unknown field or operator."""


@dataclass(frozen=True, slots=True)
class Comparison:
    """``selector operator arguments``, e.g. ``id=in=(a,b)``."""

    selector: str
    operator: str
    arguments: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class And:
    """All children hold."""

    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    """At least one child holds."""

    children: tuple[Node, ...]


Node = Comparison | And | Or


def parse(text: str) -> Node:
    """Parse an RSQL expression; raise :class:`RsqlError` naming the position on failure."""
    parser = _Parser(text)
    node = parser.parse_or()
    parser.skip_space()
    if parser.pos < len(text):
        char = text[parser.pos]
        if char == ")":
            parser.fail("unbalanced parentheses: unexpected ')'")
        parser.fail(f"unexpected {char!r}")
    return node


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, message: str) -> NoReturn:
        raise RsqlError(f"invalid search at position {self.pos + 1}: {message}")

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t\r\n":
            self.pos += 1

    def peek(self) -> str:
        self.skip_space()
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def parse_or(self) -> Node:
        children = [self.parse_and()]
        while self.peek() == ",":
            self.pos += 1
            children.append(self.parse_and())
        return children[0] if len(children) == 1 else Or(tuple(children))

    def parse_and(self) -> Node:
        children = [self.parse_constraint()]
        while self.peek() == ";":
            self.pos += 1
            children.append(self.parse_constraint())
        return children[0] if len(children) == 1 else And(tuple(children))

    def parse_constraint(self) -> Node:
        if self.peek() == "(":
            self.pos += 1
            node = self.parse_or()
            if self.peek() != ")":
                self.fail("unbalanced parentheses: expected ')'")
            self.pos += 1
            return node
        return self.parse_comparison()

    def parse_comparison(self) -> Comparison:
        self.skip_space()
        selector = self.unreserved()
        if not selector:
            found = repr(self.text[self.pos]) if self.pos < len(self.text) else "end of input"
            self.fail(f"expected a field name, found {found}")
        operator = self.operator()
        if self.peek() == "(":
            self.pos += 1
            arguments = [self.value()]
            while self.peek() == ",":
                self.pos += 1
                arguments.append(self.value())
            if self.peek() != ")":
                self.fail("expected ',' or ')' in the argument list")
            self.pos += 1
        else:
            arguments = [self.value()]
        return Comparison(selector, operator, tuple(arguments))

    def unreserved(self) -> str:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in _RESERVED:
            self.pos += 1
        return self.text[start : self.pos]

    def operator(self) -> str:
        self.skip_space()
        text, pos = self.text, self.pos
        for fixed in ("==", "!=", "<=", ">="):
            if text.startswith(fixed, pos):
                self.pos += 2
                return _ALIASES.get(fixed, fixed)
        if pos < len(text) and text[pos] in "<>":
            self.pos += 1
            return _ALIASES[text[pos]]
        if pos < len(text) and text[pos] == "=":
            end = pos + 1
            while end < len(text) and text[end].isascii() and text[end].isalpha():
                end += 1
            if end < len(text) and text[end] == "=" and end > pos + 1:
                self.pos = end + 1
                return text[pos : end + 1]
        self.fail("expected an operator (==, !=, =in=, =out=, =regex=, =gt=, =ge=, =lt=, =le=)")

    def value(self) -> str:
        quote = self.peek()
        if quote in ("'", '"'):
            self.pos += 1
            chars: list[str] = []
            while self.pos < len(self.text):
                char = self.text[self.pos]
                if char == "\\" and self.pos + 1 < len(self.text):
                    chars.append(self.text[self.pos + 1])
                    self.pos += 2
                    continue
                if char == quote:
                    self.pos += 1
                    return "".join(chars)
                chars.append(char)
                self.pos += 1
            self.fail(f"unterminated quoted value (missing {quote})")
        value = self.unreserved()
        if not value:
            self.fail("expected a value")
        return value
