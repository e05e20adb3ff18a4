"""vcrpy's `query` and `body` matchers, with each request's query and body parsed once instead of on every comparison.

vcrpy finds the answer to a request by comparing it with every recorded request, twice (once to ask
whether the cassette holds it, once to play it), running every matcher on every pair. Its `body`
matcher parses both JSON bodies on each comparison and, when they differ, writes a unified diff of
them for its log. On a cassette of 300 exchanges that is tens of thousands of JSON parses and diffs
per `ccl deploy`: most of a replayed test's time. These two compare what vcrpy's do (vcrpy 6-9,
`vcr/matchers.py`): the query as sorted (name, value) pairs, and the body parsed when the request
says `application/json`, else its bytes; so a replay still fails on any request whose query or body
the cassette does not hold.

`parsed_body` is never looser than vcrpy's `body`: where vcrpy compares bytes because only one of
the two requests says `application/json`, or parses a form or XML-RPC body, it compares the parsed
JSON with the bytes (never equal) or the bytes with the bytes.
"""

from __future__ import annotations

import json
from typing import Any

from vcr.util import read_body


def _cached(request: Any, name: str, compute) -> Any:
    # Recorded requests live as long as the cassette and are compared with every new request.
    attribute = f"_ccl_replay_{name}"
    if attribute not in request.__dict__:
        request.__dict__[attribute] = compute(request)
    return request.__dict__[attribute]


def _content_type(request: Any) -> str:
    value = request.headers.get("Content-Type", "")
    return (value.decode("utf-8") if isinstance(value, bytes) else value).lower()


def body_of(request: Any) -> tuple[str, Any]:
    """("json", the parsed body) when the request says application/json and parses, else ("bytes", body)."""
    body = read_body(request)
    if "application/json" in _content_type(request):
        if not body:
            return ("json", None)
        try:
            return ("json", json.loads(body))
        except ValueError:
            pass
    return ("bytes", body)


def parsed_query(first: Any, second: Any) -> None:
    """vcrpy matcher: the same query parameters, in any order."""
    mine, theirs = (_cached(request, "query", lambda r: r.query) for request in (first, second))
    if mine != theirs:
        raise AssertionError(f"{mine} != {theirs}")


def parsed_body(first: Any, second: Any) -> None:
    """vcrpy matcher: the same body (the same JSON value, whatever its layout and key order)."""
    (mine_kind, mine), (their_kind, theirs) = (_cached(request, "body", body_of) for request in (first, second))
    if mine_kind != their_kind:
        raise AssertionError("one body is sent as JSON and the other is not")
    if mine != theirs:
        if isinstance(mine, dict) and isinstance(theirs, dict):
            keys = sorted(key for key in mine.keys() | theirs.keys() if mine.get(key) != theirs.get(key))
            raise AssertionError(f"the JSON bodies differ at {', '.join(map(str, keys))}")
        raise AssertionError("the bodies differ")
