"""The tree a query parses to, and what validation and dispatch read from it (attributes, event names)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ccl.detection.query.tokens import unescape

RESERVED = {"host": "host", "source": "ddsource", "status": "status", "service": "service",
            "trace_id": "trace_id", "message": "message", "timestamp": "timestamp"}


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
            return {unescape(node.value)}
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
