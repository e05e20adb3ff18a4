"""Evaluation of parsed Datadog log search queries: compile an AST to a Python predicate.

The semantics are described in ccl/detection/query/parser.py (the parser); this module applies them to events.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any

from ccl.detection.query.parser import parse
from ccl.detection.query.tokens import unescape
from ccl.detection.query.tree import RESERVED, And, Cidr, MatchAll, Node, Not, Or, Range, Term

Event = dict[str, Any]
Predicate = Callable[[Event], bool]


def compile_query(query: str | Node) -> Predicate:
    node = parse(query) if isinstance(query, str) else query
    return _compile(node)


def _compile(node: Node) -> Predicate:
    if isinstance(node, MatchAll):
        return lambda event: True
    if isinstance(node, And):
        parts = [_compile(part) for part in node.parts]
        if len(parts) == 2:  # the usual `@evt.name:x @field:y`, without a generator per event
            first, second = parts
            return lambda event: first(event) and second(event)
        return lambda event: all(part(event) for part in parts)
    if isinstance(node, Or):
        same_field = _literals_of_one_field(node)
        if same_field is not None:  # `@evt.name:(a OR b OR c)`: one lookup in a set
            return _text_in(*same_field)
        parts = [_compile(part) for part in node.parts]
        return lambda event: any(part(event) for part in parts)
    if isinstance(node, Not):
        inner = _compile(node.part)
        return lambda event: not inner(event)
    if isinstance(node, Cidr):
        path, networks = node.field.split("."), node.networks
        return lambda event: any(_in_networks(value, networks) for value in values_at(event, path))
    if isinstance(node, Range):
        return _compile_range(node)
    if isinstance(node, Term):
        return _compile_term(node)
    raise TypeError(node)


def _compile_term(node: Term) -> Predicate:
    if node.field is None:
        matcher = _text_matcher(node.value, node.quoted)
        return lambda event: isinstance(event.get("message"), str) and matcher(event["message"])
    path = _path(node)
    if path is None:  # a tag
        tag = f"{node.field}:{node.value}"
        tag_matcher = _value_matcher(tag, node.quoted)
        return lambda event: any(tag_matcher(t) for t in _tags(event))
    if node.value == "*" and not node.quoted:
        return lambda event: any(True for _ in values_at(event, path))
    literal = _literal(node)
    if literal is not None:
        return _text_in(path, frozenset([literal]))
    matcher = _value_matcher(node.value, node.quoted)
    return lambda event: any(matcher(_as_text(value)) for value in values_at(event, path))


def _literal(node: Node) -> str | None:
    """The exact text a term on an attribute matches, if it has no wildcard (as _value_matcher reads it)."""
    if not isinstance(node, Term) or node.field is None or _path(node) is None:
        return None
    if node.quoted or not re.search(r"(?<!\\)[*?]", node.value):
        return unescape(node.value)
    return None


def _literals_of_one_field(node: Or) -> tuple[list[str], frozenset[str]] | None:
    """(path, texts) when every part is an exact term on the same attribute, else None."""
    texts, paths = [], set()
    for part in node.parts:
        literal = _literal(part)
        if literal is None:
            return None
        texts.append(literal)
        paths.add(tuple(_path(part) or ()))  # type: ignore[arg-type]
    if len(paths) != 1:
        return None
    return list(paths.pop()), frozenset(texts)


def _text_in(path: list[str], texts: frozenset[str]) -> Predicate:
    """Whether any value at `path`, as text, is one of `texts`: what `any(matcher(_as_text(value)) for
    value in values_at(event, path))` says, without building the list in the usual case."""
    def matches(event: Event) -> bool:
        node = plain_value_at(event, path)
        if node is None:
            return False
        if node is THROUGH_ARRAYS:
            return any(_as_text(value) in texts for value in values_at(event, path))
        return node in texts if type(node) is str else _as_text(node) in texts
    return matches


THROUGH_ARRAYS = object()


def plain_value_at(event: Any, path: list[str]) -> Any:
    """The usual case of values_at without its list: the one value nested objects lead to at `path`;
    None if it is missing or null; THROUGH_ARRAYS if an array is on the way or at the end (then
    values_at must say)."""
    node = event
    for key in path:
        if type(node) is not dict:
            return THROUGH_ARRAYS
        node = node.get(key)
        if node is None:
            return None
    return THROUGH_ARRAYS if type(node) is list else node


def _path(node: Term | Range) -> list[str] | None:
    if node.attribute:
        return node.field.split(".")  # type: ignore[union-attr]
    if node.field in RESERVED:
        return [RESERVED[node.field]]  # type: ignore[index]
    return None


def _compile_range(node: Range) -> Predicate:
    path = _path(node) or [node.field]

    def check(value: Any) -> bool:
        if isinstance(value, bool) or value is None or isinstance(value, dict | list):
            return False
        for bound, inclusive, is_low in ((node.low, node.low_inclusive, True),
                                         (node.high, node.high_inclusive, False)):
            if bound is None:
                continue
            left, right = _comparable(value, bound)
            if left is None:
                return False
            if is_low and not (left >= right if inclusive else left > right):
                return False
            if not is_low and not (left <= right if inclusive else left < right):
                return False
        return True

    return lambda event: any(check(value) for value in values_at(event, path))


def _comparable(value: Any, bound: str) -> tuple[Any, Any]:
    """Numbers compare as numbers, anything else as text."""
    try:
        number = float(bound)
    except ValueError:
        return (_as_text(value), bound) if isinstance(value, str) else (None, None)
    if isinstance(value, int | float):
        return value, number
    try:
        return float(value), number
    except (TypeError, ValueError):
        return _as_text(value), bound


def values_at(event: Any, path: list[str]) -> list[Any]:
    """Every value at `path`, descending into arrays (any element may match)."""
    # Fast path, the usual case: nested objects all the way down (one lookup per key).
    node = event
    for key in path:
        if type(node) is not dict:
            break
        node = node.get(key, _ABSENT)
        if node is _ABSENT:
            return []
    else:
        if type(node) is list:
            return [item for item in node if item is not None]
        return [] if node is None else [node]
    return _values_through_arrays(event, path)


_ABSENT = object()


def _values_through_arrays(event: Any, path: list[str]) -> list[Any]:
    nodes = [event]
    for key in path:
        following = []
        for node in nodes:
            if isinstance(node, list):
                following.extend(item.get(key) for item in node if isinstance(item, dict) and key in item)
            elif isinstance(node, dict) and key in node:
                following.append(node[key])
        nodes = following
        if not nodes:
            return []
    flat = []
    for node in nodes:
        if isinstance(node, list):
            flat.extend(node)
        elif node is not None:
            flat.append(node)
    return flat


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _tags(event: Event) -> list[str]:
    tags = event.get("ddtags") or event.get("tags") or []
    if isinstance(tags, str):
        tags = tags.split(",")
    return [str(tag).strip() for tag in tags]


def wildcard_matcher(pattern: str) -> Callable[[str], bool]:
    """Whether a whole value matches an unquoted pattern (`*`, `?`, `\\` escapes), as the engine does."""
    return _value_matcher(pattern, quoted=False)


def _value_matcher(pattern: str, quoted: bool) -> Callable[[str], bool]:
    if quoted or not re.search(r"(?<!\\)[*?]", pattern):
        literal = unescape(pattern)
        return lambda text: text == literal
    regex = re.compile(_wildcard_regex(pattern, anchored_end=True), re.DOTALL)
    return lambda text: regex.fullmatch(text) is not None


def _text_matcher(pattern: str, quoted: bool) -> Callable[[str], bool]:
    if quoted:
        regex = re.compile(r"(?<!\w)" + re.escape(pattern) + r"(?!\w)", re.IGNORECASE)
    else:
        regex = re.compile(r"(?<!\w)" + _wildcard_regex(pattern, anchored_end=False) + r"(?!\w)",
                           re.IGNORECASE)
    return lambda text: regex.search(text) is not None


def _wildcard_regex(pattern: str, anchored_end: bool) -> str:
    """A regex for a wildcard pattern that never backtracks into a `*` but the last one.

    A naive `.*` per `*` backtracks over every split of the text between the stars: polynomial
    of the degree of the number of stars, minutes for a query with 25. Here the pattern is cut
    at each `*` into fixed-length segments; every middle segment is placed at its leftmost
    occurrence inside an atomic group (`(?>...)`, Python 3.11+), which never gives up a match
    another placement would find, because the earliest end leaves the most text to the rest.
    Only the last segment moves, once: it must end where the match ends (at the end of the value,
    or before a non-word character for free text). Matching takes linear time per start.
    """
    segments = [_segment_regex(part) for part in _split_on_stars(pattern)]
    if len(segments) == 1:
        return segments[0]
    middle = "".join(f"(?>.*?{segment})" for segment in segments[1:-1])
    last = (".*" if anchored_end else ".*?") + segments[-1]
    return segments[0] + middle + last


def _split_on_stars(pattern: str) -> list[str]:
    """The pattern cut at each unescaped `*` (escapes kept, for _segment_regex)."""
    parts, current, i = [], [], 0
    while i < len(pattern):
        if pattern[i] == "\\" and i + 1 < len(pattern):
            current.append(pattern[i:i + 2])
            i += 2
            continue
        if pattern[i] == "*":
            parts.append("".join(current))
            current = []
        else:
            current.append(pattern[i])
        i += 1
    parts.append("".join(current))
    return parts


def _segment_regex(segment: str) -> str:
    out, i = [], 0
    while i < len(segment):
        char = segment[i]
        if char == "\\" and i + 1 < len(segment):
            out.append(re.escape(segment[i + 1]))
            i += 2
            continue
        out.append("." if char == "?" else re.escape(char))
        i += 1
    return "".join(out)


def _in_networks(value: Any, networks: list[Any]) -> bool:
    try:
        address = ipaddress.ip_address(str(value))
    except ValueError:
        return False
    return any(address.version == network.version and address in network for network in networks)


