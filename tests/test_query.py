"""The Datadog log search matcher, as a table of query / event / expected verdict.

Each row follows docs.datadoghq.com/logs/explorer/search_syntax (cited where behaviour is subtle).
"""

from __future__ import annotations

import pytest

from ccl.detection.query import QueryError, parse, required_event_names
from ccl.detection.query.match import _as_text, _value_matcher, compile_query, values_at

EVENT = {
    "evt": {"name": "org_sso_toggled", "outcome": "success"},
    "enabled": False,
    "status_code": 404,
    "network": {"client": {"ip": "81.2.69.142", "geoip": {"country": {"iso_code": "GB"}}}},
    "roles": ["admin", "user"],
    "updates": [{"type": "sharing", "current_value": "public"}, {"type": "name", "current_value": "x"}],
    "message": "Hello World from Claude",
    "ddtags": "env:prod,team:security",
    "ddsource": "claude-compliance-logs",
    "service": "claude-compliance-logs",
    "status": "warn",
    "usr": {"email": "Ana@Example.com"},
    "path": "a:b c",
    "ratio": 0.5,
    "ipv6": "2001:db8::1",
}

TABLE = [
    # attributes, exact and case-sensitive ("Attribute searches are case sensitive")
    ("@evt.name:org_sso_toggled", True),
    ("@evt.name:ORG_SSO_TOGGLED", False),
    ("@usr.email:ana@example.com", False),
    ("@usr.email:Ana@Example.com", True),
    ("@enabled:false", True),  # booleans compare as true/false
    ("@enabled:true", False),
    ("@status_code:404", True),  # numbers compare as their text too
    # wildcards: * any run, ? one character; not inside quotes
    ("@evt.name:org_sso_*", True),
    ("@evt.name:*_toggled", True),
    ("@evt.name:org_ss?_toggled", True),
    ('@evt.name:"org_sso_*"', False),
    ("@usr.email:*@Example.com", True),
    # existence and absence
    ("@enabled:*", True),
    ("@missing:*", False),
    ("-@missing:*", True),
    # value lists and boolean operators (uppercase only; juxtaposition is AND)
    ("@evt.name:(org_sso_toggled OR org_sso_connection_deleted)", True),
    ("@evt.name:(a OR b)", False),
    ("@evt.name:org_sso_toggled @enabled:false", True),
    ("@evt.name:org_sso_toggled AND @enabled:true", False),
    ("@evt.name:x OR @enabled:false", True),
    ("@evt.name:org_sso_toggled && @enabled:false", True),
    ("@evt.name:x || @enabled:false", True),
    ("NOT @enabled:true", True),
    ("-@evt.name:org_sso_toggled", False),
    ("(@evt.name:x OR @enabled:false) AND env:prod", True),
    ("@evt.name:x OR @enabled:false AND env:staging", False),  # AND binds tighter than OR
    ("@evt.name:x and", False),  # lowercase `and` is a word of free text, not an operator
    # numeric ranges and comparisons
    ("@status_code:[400 TO 499]", True),
    ("@status_code:[200 TO 299]", False),
    ("@status_code:{404 TO 500}", False),  # exclusive bounds
    ("@status_code:>=404", True),
    ("@status_code:>404", False),
    ("@status_code:<500", True),
    ("@ratio:<1", True),
    ("@usr.email:[A TO B]", True),  # strings compare lexically
    # arrays: any element matches; arrays of objects by sub-path
    ("@roles:admin", True),
    ("@roles:owner", False),
    ("@updates.current_value:public", True),
    ("@updates.type:sharing @updates.current_value:x", True),
    # reserved attributes without @, tags otherwise
    ("source:claude-compliance-logs", True),
    ("source:other", False),
    ("service:claude-compliance-logs", True),
    ("status:warn", True),
    ("env:prod", True),
    ("team:sec*", True),
    ("env:staging", False),
    # free text searches message only, case-insensitively, at word boundaries
    ("hello", True),
    ("HELLO", True),
    ("hell", False),
    ("hell*", True),
    ('"hello world"', True),
    ('"world hello"', False),
    ("org_sso_toggled", False),  # not in message
    # escaping and quoting special characters
    (r"@path:a\:b\ c", True),
    ('@path:"a:b c"', True),
    # CIDR (IPv4 and IPv6), negation
    ("CIDR(@network.client.ip, 81.2.69.0/24)", True),
    ("CIDR(@network.client.ip, 10.0.0.0/8, 192.168.0.0/16)", False),
    ("-CIDR(@network.client.ip, 10.0.0.0/8)", True),
    ("NOT CIDR(@network.client.ip, 81.2.69.0/24)", False),
    ("CIDR(@ipv6, 2001:db8::/32)", True),
    # match-all
    ("*", True),
    ("", True),
]


@pytest.mark.parametrize(("query", "expected"), TABLE, ids=[row[0] or "(empty)" for row in TABLE])
def test_matcher_table(query, expected):
    assert compile_query(query)(EVENT) is expected


@pytest.mark.parametrize(("query", "message"), [
    ("@evt.name:(a OR b", "unclosed parenthesis"),
    ('@evt.name:"abc', "unclosed quote at character 11"),
    ("@evt.name:", "the query ends too early"),
    ("*:admin", "not allowed in rules and pipelines"),
    ("CIDR(@ip, not-a-network)", "'not-a-network' is not a network"),
    ("@x:[1 TO", "the query ends too early"),
    ("a ) b", "unexpected ')'"),
])
def test_parse_errors_say_what_and_where(query, message):
    with pytest.raises(QueryError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse(query)


def test_event_names_a_query_requires_are_known_for_dispatch():
    assert required_event_names(parse("@evt.name:(a OR b) @x:1")) == {"a", "b"}
    assert required_event_names(parse("@evt.name:a_*")) is None
    assert required_event_names(parse("@evt.name:a OR @x:1")) is None


# Exact terms (and ORs of exact terms on one field) compare by set lookup; wildcards go through the
# general matcher. Both must say the same of every value shape an event can hold at a path.
SHAPES = [
    {"a": {"b": "x"}}, {"a": {"b": "X"}}, {"a": {"b": 1}}, {"a": {"b": 1.0}}, {"a": {"b": 1.5}},
    {"a": {"b": True}}, {"a": {"b": False}}, {"a": {"b": None}}, {"a": {"b": ["y", None, "x"]}},
    {"a": {"b": []}}, {"a": {"b": {"c": "x"}}}, {"a": [{"b": "x"}, {"b": "z"}]}, {"a": [{"c": "x"}]},
    {"a": None}, {"a": "x"}, {"a": {}}, {}, {"a": {"b": "x*"}}, {"a": {"b": "1"}}, {"a": {"b": "true"}},
]


def _general(field: str, patterns: list[tuple[str, bool]]):
    """The general formulation: any value at the path, as text, matched by any pattern."""
    path = field.split(".")
    matchers = [_value_matcher(pattern, quoted) for pattern, quoted in patterns]
    return lambda event: any(m(_as_text(value)) for value in values_at(event, path) for m in matchers)


@pytest.mark.parametrize("query, field, patterns", [
    ("@a.b:x", "a.b", [("x", False)]), ("@a.b:1", "a.b", [("1", False)]), ("@a.b:true", "a.b", [("true", False)]),
    ('@a.b:"x*"', "a.b", [("x*", True)]), ("@a.b:x\\*", "a.b", [("x\\*", False)]),
    ("@a.b:(x OR 1 OR true)", "a.b", [("x", False), ("1", False), ("true", False)]),
    ("@a.b:(z OR y)", "a.b", [("z", False), ("y", False)]),
])
def test_exact_terms_agree_with_the_general_matcher(query, field, patterns):
    fast, general = compile_query(query), _general(field, patterns)
    assert [(event, fast(event)) for event in SHAPES] == [(event, general(event)) for event in SHAPES]
    assert any(fast(event) for event in SHAPES) and not all(fast(event) for event in SHAPES)
