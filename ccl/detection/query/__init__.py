"""Datadog's log search syntax: lexed (tokens), parsed by level (parser: AND/OR/NOT;
values: what follows `field:`) to a tree (tree), and compiled to predicates over events (match).
Imports nothing else from ccl; the rest of ccl.detection, ccl.datadog (pipelines, the fake) and the verbs use it.
"""

from ccl.detection.query.parser import MAX_QUERY_LENGTH, Parser, parse
from ccl.detection.query.tokens import QueryError
from ccl.detection.query.tree import (
    RESERVED,
    And,
    Cidr,
    MatchAll,
    Node,
    Not,
    Or,
    Range,
    Term,
    attribute_fields,
    event_names,
    required_event_names,
    walk,
)

__all__ = ["MAX_QUERY_LENGTH", "RESERVED", "And", "Cidr", "MatchAll", "Node", "Not", "Or", "Parser", "QueryError",
           "Range", "Term", "attribute_fields", "event_names", "parse", "required_event_names", "walk"]
