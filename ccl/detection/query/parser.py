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

from ccl.detection.query.tokens import QueryError, unescape
from ccl.detection.query.tree import And, MatchAll, Node, Not, Or, Term
from ccl.detection.query.values import ValueParser

# ccl's own bound (Datadog documents none): far above any real rule.
MAX_QUERY_LENGTH = 4000


class Parser(ValueParser):
    """The boolean level of the grammar: OR over AND over NOT over a primary (a group, a term, field:value)."""

    def __init__(self, query: str):
        if len(query) > MAX_QUERY_LENGTH:
            raise QueryError(f"the query is {len(query):,} characters long; ccl accepts at most "
                             f"{MAX_QUERY_LENGTH:,} (split it into several queries or rules)", None)
        super().__init__(query)

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
            self.deeper(self.take())
            node = Not(self.parse_not())
            self.depth -= 1
            return node
        if token is not None and token.kind == "WORD" and token.text == "+":
            self.take()
        return self.parse_primary()

    def parse_primary(self) -> Node:
        token = self.take()
        if token.kind == "LPAREN":
            self.deeper(token)
            node = self.parse_or()
            if self.peek() is None:
                raise QueryError("unclosed parenthesis", token.position)
            self.take("RPAREN")
            self.depth -= 1
            return node
        if token.kind == "PHRASE":
            return Term(None, token.text, quoted=True)
        if token.kind == "WORD" and token.text.upper() == "CIDR" and self.next_is("LPAREN"):
            return self.parse_cidr(token)
        if token.kind in ("WORD", "TO"):
            if self.next_is("COLON"):
                self.take("COLON")
                return self.parse_field_value(token)
            if token.text in ("*", "*:*"):
                return MatchAll()
            return Term(None, unescape(token.text))
        raise QueryError(f"unexpected {token.text!r}", token.position)


def parse(query: str) -> Node:
    return Parser(query).parse()
