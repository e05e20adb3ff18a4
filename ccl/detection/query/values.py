"""The value level of the grammar: what follows `field:`, a value, `(a OR b)`, a range, a comparison, CIDR(...)."""

from __future__ import annotations

import ipaddress

from ccl.detection.query.tokens import QueryError, Token, TokenStream, unescape
from ccl.detection.query.tree import And, Cidr, Node, Not, Or, Range, Term


class ValueParser(TokenStream):
    """Parses the values of one field; the boolean level above (parser.Parser) calls it after `field:`."""

    def parse_field_value(self, name_token: Token) -> Node:
        name = unescape(name_token.text)
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
                    bound = unescape(text[len(operator):])
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
                self.deeper(token)
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
