"""Datadog log search syntax: a parser and a compiler to Python predicates over events.

Semantics follow docs.datadoghq.com/logs/explorer/search_syntax (and Vector's implementation of it):
- `@path.to.attr:value` searches an attribute (dotted path), case-sensitively; `*` and `?` are
  wildcards outside quotes; a quoted value is exact; an array matches if any element matches.
- Without `@`, `key:value` is a tag (`env:prod`, matched against `ddtags`), except the reserved
  attributes host, source (= ddsource), status, service, trace_id, message and timestamp.
- A bare term or phrase is free text: it searches `message` only, case-insensitively, at word
  boundaries.
- `AND` (or `&&`), `OR` (or `||`), `NOT` / `-` are case-sensitive operators; juxtaposition is AND;
  NOT binds tighter than AND, AND tighter than OR; parentheses group.
- `@attr:*` exists, `-@attr:*` is missing; `@attr:(a OR b)`; ranges `[a TO b]` (inclusive),
  `{a TO b}` (exclusive), comparisons `>`, `>=`, `<`, `<=`, numeric when both sides are numbers.
- `CIDR(@attr, 10.0.0.0/8, ...)`: IPv4 and IPv6, any element of an array.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any

RESERVED = {"host": "host", "source": "ddsource", "status": "status", "service": "service",
            "trace_id": "trace_id", "message": "message", "timestamp": "timestamp"}
SPECIAL = set('+-=&|><!(){}[]^"~*?:\\# \t\n')
# ccl's own bounds (Datadog documents none): far above any real rule, and low enough that a
# hostile query cannot exhaust the parser's recursion or the matcher's time.
MAX_QUERY_LENGTH = 4000
MAX_NESTING = 32


class QueryError(ValueError):
    """A query does not parse; the message says where and what."""

    def __init__(self, message: str, position: int | None):
        super().__init__(message if position is None else f"{message} at character {position + 1}")
        self.position = position


# -- AST ------------------------------------------------------------------------------------------

@dataclass
class Node:
    pass


@dataclass
class And(Node):
    parts: list[Node]


@dataclass
class Or(Node):
    parts: list[Node]


@dataclass
class Not(Node):
    part: Node


@dataclass
class MatchAll(Node):
    pass


@dataclass
class Term(Node):
    """field None means free text; `attribute` says whether field was written with `@`."""
    field: str | None
    value: str
    quoted: bool = False
    attribute: bool = False


@dataclass
class Range(Node):
    field: str
    low: str | None
    high: str | None
    low_inclusive: bool = True
    high_inclusive: bool = True
    attribute: bool = True


@dataclass
class Cidr(Node):
    field: str
    networks: list[Any] = field(default_factory=list)


# -- tokens and parser ----------------------------------------------------------------------------

@dataclass
class Token:
    kind: str  # WORD, PHRASE, LPAREN, RPAREN, AND, OR, NOT, MINUS, COLON, LBRACKET...
    text: str
    position: int


def tokenize(query: str) -> list[Token]:
    tokens: list[Token] = []
    i = 0
    while i < len(query):
        char = query[i]
        if char.isspace():
            i += 1
            continue
        if char in "()[]{}:":
            tokens.append(Token({"(": "LPAREN", ")": "RPAREN", "[": "LBRACKET", "]": "RBRACKET", "{": "LBRACE",
                                 "}": "RBRACE", ":": "COLON"}[char], char, i))
            i += 1
            continue
        if query.startswith("&&", i):
            tokens.append(Token("AND", "&&", i))
            i += 2
            continue
        if query.startswith("||", i):
            tokens.append(Token("OR", "||", i))
            i += 2
            continue
        if char in "-!" and (not tokens or tokens[-1].kind in ("LPAREN", "AND", "OR", "NOT", "MINUS")
                             or query[i - 1].isspace()):
            tokens.append(Token("MINUS", char, i))
            i += 1
            continue
        if char == '"':
            j, text = i + 1, []
            while j < len(query) and query[j] != '"':
                if query[j] == "\\" and j + 1 < len(query):
                    j += 1
                text.append(query[j])
                j += 1
            if j >= len(query):
                raise QueryError("unclosed quote", i)
            tokens.append(Token("PHRASE", "".join(text), i))
            i = j + 1
            continue
        j, text = i, []
        while j < len(query):
            c = query[j]
            if c == "\\" and j + 1 < len(query):
                text.append("\\" + query[j + 1])  # keep escapes: they make wildcards literal
                j += 2
                continue
            if c.isspace() or c in '()[]{}:"' or (c == "," and not text):
                break
            text.append(c)
            j += 1
        word = "".join(text)
        if not word:
            raise QueryError(f"unexpected {char!r}", i)
        kind = {"AND": "AND", "OR": "OR", "NOT": "NOT", "TO": "TO"}.get(word, "WORD")
        tokens.append(Token(kind, word, i))
        i = j
    return tokens


class Parser:
    def __init__(self, query: str):
        if len(query) > MAX_QUERY_LENGTH:
            raise QueryError(f"the query is {len(query):,} characters long; ccl accepts at most "
                             f"{MAX_QUERY_LENGTH:,} (split it into several queries or rules)", None)
        self.query = query
        self.tokens = tokenize(query)
        self.index = 0
        self.depth = 0

    def _deeper(self, token: Token) -> None:
        """Count one more level of parentheses or NOT; refuse what would exhaust the recursion."""
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise QueryError(f"nested deeper than {MAX_NESTING} levels (parentheses and NOT)", token.position)

    def peek(self, offset: int = 0) -> Token | None:
        at = self.index + offset
        return self.tokens[at] if at < len(self.tokens) else None

    def take(self, kind: str | None = None) -> Token:
        token = self.peek()
        if token is None:
            raise QueryError("the query ends too early", len(self.query))
        if kind and token.kind != kind:
            raise QueryError(f"expected {kind.lower()} but found {token.text!r}", token.position)
        self.index += 1
        return token

    def parse(self) -> Node:
        if not self.tokens:
            return MatchAll()
        node = self.parse_or()
        if self.peek() is not None:
            token = self.peek()
            raise QueryError(f"unexpected {token.text!r}", token.position)  # type: ignore[union-attr]
        return node

    def parse_or(self) -> Node:
        parts = [self.parse_and()]
        while self.peek() is not None and self.peek().kind == "OR":  # type: ignore[union-attr]
            self.take()
            parts.append(self.parse_and())
        return parts[0] if len(parts) == 1 else Or(parts)

    def parse_and(self) -> Node:
        parts = [self.parse_not()]
        while True:
            token = self.peek()
            if token is None or token.kind in ("OR", "RPAREN"):
                break
            if token.kind == "AND":
                self.take()
            parts.append(self.parse_not())
        return parts[0] if len(parts) == 1 else And(parts)

    def parse_not(self) -> Node:
        token = self.peek()
        if token is not None and token.kind in ("NOT", "MINUS"):
            self._deeper(self.take())
            node = Not(self.parse_not())
            self.depth -= 1
            return node
        if token is not None and token.kind == "WORD" and token.text == "+":
            self.take()
        return self.parse_primary()

    def parse_primary(self) -> Node:
        token = self.take()
        if token.kind == "LPAREN":
            self._deeper(token)
            node = self.parse_or()
            if self.peek() is None:
                raise QueryError("unclosed parenthesis", token.position)
            self.take("RPAREN")
            self.depth -= 1
            return node
        if token.kind == "PHRASE":
            return Term(None, token.text, quoted=True)
        if token.kind == "WORD" and token.text.upper() == "CIDR" and self._next_is("LPAREN"):
            return self.parse_cidr(token)
        if token.kind in ("WORD", "TO"):
            if self._next_is("COLON"):
                self.take("COLON")
                return self.parse_field_value(token)
            if token.text in ("*", "*:*"):
                return MatchAll()
            return Term(None, _unescape(token.text))
        raise QueryError(f"unexpected {token.text!r}", token.position)

    def _next_is(self, kind: str) -> bool:
        token = self.peek()
        return token is not None and token.kind == kind

    def parse_field_value(self, name_token: Token) -> Node:
        name = _unescape(name_token.text)
        attribute = name.startswith("@")
        path = name[1:] if attribute else name
        if not path:
            raise QueryError("an attribute needs a name after @", name_token.position)
        if path == "*" and not attribute:
            raise QueryError("`*:term` (search every attribute) is not allowed in rules and pipelines",
                             name_token.position)
        token = self.take()
        if token.kind == "LPAREN":
            inner = self.parse_value_group(path, attribute)
            self.take("RPAREN")
            return inner
        if token.kind in ("LBRACKET", "LBRACE"):
            return self.parse_range(path, attribute, token)
        if token.kind == "PHRASE":
            return Term(path, token.text, quoted=True, attribute=attribute)
        if token.kind in ("WORD", "TO", "AND", "OR", "NOT"):
            text = token.text
            for operator in (">=", "<=", ">", "<"):
                if text.startswith(operator) and len(text) > len(operator):
                    bound = _unescape(text[len(operator):])
                    if operator.startswith(">"):
                        return Range(path, bound, None, low_inclusive=operator == ">=", attribute=attribute)
                    return Range(path, None, bound, high_inclusive=operator == "<=", attribute=attribute)
            return Term(path, text, attribute=attribute)
        raise QueryError(f"expected a value after {name}:", token.position)

    def parse_value_group(self, path: str, attribute: bool) -> Node:
        """`@field:(a OR b c)`: the operators apply to values of one field."""
        parts_or: list[Node] = []
        parts_and: list[Node] = []
        negate = False
        while True:
            token = self.peek()
            if token is None:
                raise QueryError("unclosed parenthesis", len(self.query))
            if token.kind == "RPAREN":
                break
            self.take()
            if token.kind == "OR":
                parts_or.append(parts_and[0] if len(parts_and) == 1 else And(parts_and))
                parts_and = []
                continue
            if token.kind == "AND":
                continue
            if token.kind in ("NOT", "MINUS"):
                negate = True
                continue
            if token.kind == "LPAREN":
                self._deeper(token)
                node = self.parse_value_group(path, attribute)
                self.take("RPAREN")
                self.depth -= 1
            elif token.kind in ("WORD", "PHRASE", "TO"):
                node = Term(path, token.text, quoted=token.kind == "PHRASE", attribute=attribute)
            else:
                raise QueryError(f"unexpected {token.text!r} in a value list", token.position)
            parts_and.append(Not(node) if negate else node)
            negate = False
        if not parts_and:
            raise QueryError("empty value list", self.peek().position if self.peek() else len(self.query))
        parts_or.append(parts_and[0] if len(parts_and) == 1 else And(parts_and))
        return parts_or[0] if len(parts_or) == 1 else Or(parts_or)

    def parse_range(self, path: str, attribute: bool, opener: Token) -> Node:
        low = self.take()
        self.take("TO")
        high = self.take()
        closer = self.take()
        if closer.kind not in ("RBRACKET", "RBRACE"):
            raise QueryError("a range ends with ] or }", closer.position)
        return Range(path, None if low.text == "*" else low.text, None if high.text == "*" else high.text,
                     low_inclusive=opener.kind == "LBRACKET", high_inclusive=closer.kind == "RBRACKET",
                     attribute=attribute)

    def parse_cidr(self, token: Token) -> Node:
        self.take("LPAREN")
        # CIDR(@attr, 10.0.0.0/8, 2001:db8::/32): read raw text up to the closing parenthesis,
        # because IPv6 networks contain colons.
        start = self.peek().position if self.peek() else len(self.query)
        depth, end = 0, start
        while end < len(self.query):
            if self.query[end] == "(":
                depth += 1
            elif self.query[end] == ")":
                if depth == 0:
                    break
                depth -= 1
            end += 1
        if end >= len(self.query):
            raise QueryError("unclosed CIDR(", token.position)
        items = [item.strip() for item in self.query[start:end].split(",")]
        if len(items) < 2 or not items[0].startswith("@"):
            raise QueryError("CIDR takes an @attribute and at least one network", token.position)
        networks = []
        for item in items[1:]:
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise QueryError(f"{item!r} is not a network", start) from None
        while self.peek() is not None and self.peek().position < end:  # type: ignore[union-attr]
            self.index += 1
        self.take("RPAREN")
        return Cidr(items[0][1:], networks)


def parse(query: str) -> Node:
    return Parser(query).parse()


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


# -- introspection (validation, dispatch) ---------------------------------------------------------

def walk(node: Node):
    yield node
    if isinstance(node, And | Or):
        for part in node.parts:
            yield from walk(part)
    elif isinstance(node, Not):
        yield from walk(node.part)


def attribute_fields(node: Node) -> set[str]:
    fields = set()
    for item in walk(node):
        named = isinstance(item, Term | Range) and getattr(item, "attribute", False) and item.field
        if named or isinstance(item, Cidr):
            fields.add(item.field)
    return fields


def event_names(node: Node) -> list[tuple[str, bool]]:
    """(value, is_pattern) of every `@evt.name:` term, for catalog checks."""
    return [(item.value, not item.quoted and bool(re.search(r"(?<!\\)[*?]", item.value)))
            for item in walk(node) if isinstance(item, Term) and item.attribute and item.field == "evt.name"]


def required_event_names(node: Node) -> set[str] | None:
    """Exact event names an event must have to match, or None if any event may match."""
    if isinstance(node, Term) and node.attribute and node.field == "evt.name":
        if node.quoted or not re.search(r"(?<!\\)[*?]", node.value):
            return {_unescape(node.value)}
        return None
    if isinstance(node, Or):
        names: set[str] = set()
        for part in node.parts:
            found = required_event_names(part)
            if found is None:
                return None
            names |= found
        return names
    if isinstance(node, And):
        for part in node.parts:
            found = required_event_names(part)
            if found is not None:
                return found
    return None
