"""YAML loading with bounds, so that a hostile file gets one clear error instead of eating the machine.

A 555-byte "billion laughs" file (anchors whose aliases nest nine deep) expands to hundreds of
millions of values once turned into Python objects: a minute of CPU and gigabytes of memory.
ruamel composes aliases as shared nodes, which is cheap, so the whole document is measured as
composed, before anything expands it: the number of values it would expand to, its depth once
expanded, and aliases that refer to themselves. The limits are far above any asset (the largest,
the pipeline, has about 3,000 values and 10 levels).
"""

from __future__ import annotations

from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.composer import Composer
from ruamel.yaml.error import YAMLError
from ruamel.yaml.events import AliasEvent
from ruamel.yaml.nodes import MappingNode, SequenceNode

MAX_DEPTH = 50
MAX_ALIASES = 200
MAX_VALUES = 200_000


class YamlLimitError(YAMLError):
    """The document is beyond what ccl accepts; `line` is 1-based (0 when unknown)."""

    def __init__(self, message: str, line: int):
        super().__init__(message)
        self.message, self.line = message, line


class BoundedComposer(Composer):
    def compose_document(self) -> Any:
        self._depth, self._aliases, self._first_alias_line = 0, 0, 0
        node = super().compose_document()
        values, depth = _expanded_size(node)
        if values > MAX_VALUES:
            raise YamlLimitError(f"aliases (*name) expand this document to {values:,} values; ccl accepts at most "
                                 f"{MAX_VALUES:,}: write the values out instead of aliasing aliases",
                                 self._first_alias_line)
        if depth > MAX_DEPTH:
            raise YamlLimitError(f"aliases (*name) nest this document {depth} levels deep; ccl accepts at most "
                                 f"{MAX_DEPTH}", self._first_alias_line)
        return node

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.parser.peek_event()
        line = event.start_mark.line + 1 if event.start_mark else 0
        if isinstance(event, AliasEvent):
            self._aliases += 1
            self._first_alias_line = self._first_alias_line or line
            if self._aliases > MAX_ALIASES:
                raise YamlLimitError(f"more than {MAX_ALIASES} aliases (*name); ccl accepts at most {MAX_ALIASES}",
                                     line)
            return super().compose_node(parent, index)
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise YamlLimitError(f"nested more than {MAX_DEPTH} levels deep; ccl accepts at most {MAX_DEPTH}", line)
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _children(node: Any) -> list[Any]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [item for pair in node.value for item in pair]
    return []


def _expanded_size(root: Any) -> tuple[int, int]:
    """(values, depth) of the document once every alias is replaced by what it names.

    Each distinct node is visited once (shared nodes are measured once and counted as often as
    they are used), without recursion, so the cost is linear in the file, whatever it expands to.
    """
    measured: dict[int, tuple[int, int]] = {}
    ancestors: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, children_measured = stack.pop()
        key = id(node)
        if children_measured:
            sizes = [measured[id(child)] for child in _children(node)]
            measured[key] = (1 + sum(size for size, _ in sizes), 1 + max((depth for _, depth in sizes), default=0))
            ancestors.discard(key)
            continue
        if key in measured:
            continue
        ancestors.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) in ancestors:
                line = child.start_mark.line + 1 if child.start_mark else 0
                raise YamlLimitError("an alias (*name) refers to a value that contains it; ccl does not accept "
                                     "recursive documents", line)
            if id(child) not in measured:
                stack.append((child, False))
    return measured[id(root)]


def bounded_yaml(typ: str = "rt") -> YAML:
    """A ruamel loader (pure Python, so the bounds apply) that refuses what exceeds them."""
    yaml = YAML(typ=typ, pure=True)
    yaml.Composer = BoundedComposer
    return yaml
