"""The lexer of Datadog's search syntax: characters to tokens, and a cursor over them for the parser.

Also what every level shares: the error that says where, the nesting bound, backslash escapes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# ccl's own bound (Datadog documents none): far above any real rule, and low enough that a hostile
# query cannot exhaust the parser's recursion.
MAX_NESTING = 32


class QueryError(ValueError):
    """A query does not parse; the message says where and what."""

    def __init__(self, message: str, position: int | None):
        super().__init__(message if position is None else f"{message} at character {position + 1}")
        self.position = position


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


def unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


class TokenStream:
    """The tokens of one query, read front to back, and how deep the parser is in parentheses and NOT."""

    def __init__(self, query: str):
        self.query = query
        self.tokens = tokenize(query)
        self.index = 0
        self.depth = 0

    def deeper(self, token: Token) -> None:
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

    def next_is(self, kind: str) -> bool:
        token = self.peek()
        return token is not None and token.kind == kind
