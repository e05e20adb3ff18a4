"""Answers no correct Compliance API gives, for testing a client's defences.

These are not behaviours of the real API. They are what a broken release, a misbehaving proxy or
a hostile server in the middle could send; each one was found to hurt a client (issue 11):
an empty first page, duplicates inside a page, pages in the wrong order or that never move, a byte
that is not UTF-8, a NaN, an error that echoes the key, an answer dripped a byte at a time, and
an answer of hundreds of megabytes.
"""

from __future__ import annotations

import json
from typing import Any

from ccl.simulator.store import PageResult, Query, encode_cursor

PAGE_FAULTS = {
    "empty": "200 with an empty page and has_more false, whatever is there",
    "duplicate": "200 with each activity of the page twice",
    "ascending": "200 with the page oldest first (first_id the oldest), against the contract",
    "stuck": "200 whose cursor is the one of the request and has_more true: the cursor never moves",
    "bad-utf8": "200 with a byte that is not UTF-8 inside one activity's user_agent",
    "nan": "200 with a NaN value (not JSON) inside one activity",
}
SERVER_FAULTS = {
    "echo-key": "401 whose message repeats the key it was sent",
    "drip": "the answer sent one byte every 0.2 s (each read is quick, the whole never ends in time)",
    "huge": "200 with a body of 300 MB",
}
HUGE_BYTES = 300 << 20
DRIP_INTERVAL = 0.2


def render(rows: list[Any], has_more: bool, first: Any = None, last: Any = None) -> bytes:
    first = first if first is not None else (rows[0].key if rows else None)
    last = last if last is not None else (rows[-1].key if rows else None)
    return b"".join([
        b'{"data":[', b",".join(row.encoded for row in rows), b'],"has_more":', b"true" if has_more else b"false",
        b',"first_id":', _cursor(first), b',"last_id":', _cursor(last), b"}",
    ])


def page_answer(kind: str, page: PageResult, query: Query) -> bytes:
    """The body of a 200 for `page`, bent the way `kind` says."""
    rows = page.rows
    if kind == "empty":
        return render([], False)
    if kind == "duplicate":
        return render([row for row in rows for _ in (0, 1)], page.has_more, rows[0].key if rows else None,
                      rows[-1].key if rows else None)
    if kind == "ascending":
        return render(list(reversed(rows)), page.has_more)
    if kind == "stuck":
        cursor = query.before or query.after or (rows[0].key if rows else None)
        return render(rows, True, cursor, cursor)
    body = render(rows, page.has_more)
    if kind == "bad-utf8" and b'"user_agent":"' in body:
        return body.replace(b'"user_agent":"', b'"user_agent":"\xff', 1)
    if kind == "nan" and rows:
        return body.replace(b'{"id":', b'{"risk_score":NaN,"id":', 1)
    return body


def echo_key_body(key: str | None, request_id: str) -> bytes:
    return json.dumps({"type": "error", "error": {"type": "authentication_error",
                                                   "message": f"API key {key} is invalid."},
                       "request_id": request_id}).encode()


def huge_chunks(rows: list[Any]):
    """A page that goes on for HUGE_BYTES: valid JSON so far, so only its size can stop a client."""
    yield b'{"data":['
    block = b",".join(row.encoded for row in rows[:200]) or b'{"id":"activity_padding"}'
    sent = 0
    while sent < HUGE_BYTES:
        yield block + b","
        sent += len(block) + 1
    yield block + b'],"has_more":false,"first_id":null,"last_id":null}'


def _cursor(key: Any) -> bytes:
    return b"null" if key is None else json.dumps(encode_cursor(key)).encode()
