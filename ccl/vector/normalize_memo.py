"""normalize.vrl with its user-agent parsing remembered per user agent, for `ccl detect` on raw input.

`parse_user_agent(..., mode: "enriched")` (uap-core's few hundred regular expressions) is about half
of what normalize.vrl costs per activity, and a month of activities carries few distinct user
agents. Its block in normalize.vrl reads `.http.useragent` and nothing else of the event, and
writes `.http.useragent_details` and nothing else, so its result is a function of that string.

So the program runs in two parts, both cut from the production text at start-up (nothing is
hand-copied): the block alone, once per distinct user agent, and the program without the block,
once per event, its result then given the remembered details. That is the same as running the
block in place because the block sits at the top level (it runs for every event) and nothing after
it refers to `.http` or to the whole event, so nothing after it can see or change what it read or
wrote. Handing the details to VRL instead would cost about as much as parsing them: vrl-python
converts every value in and out, ~40 µs for an activity alone.

The output is the production program's, event for event (tests/test_normalize_memo.py); where the
text does not have the shape relied on here, or a derived program fails, the production program
runs unchanged.

A third program, also cut from the production text, leaves out its last part, the OCSF mapping
(marked in normalize.vrl; about a third of the program's cost), for events that no rule reading
`@ocsf` can match: `normalize_without_ocsf` writes what `normalize` writes, but for the `ocsf` key.
It is cut only where that part writes under `.ocsf` and nothing else, and cannot abort.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson

from ccl.vector.normalize import Normalizer
from ccl.vector.vrl import VrlError, VrlProgram

BLOCK_START = 'if is_string(.http.useragent) && .http.useragent != "" {'
# An event path in VRL starts with a dot that follows no name, number, quote or closing bracket.
EVENT_PATH = re.compile(r'(?<![\w"\')\]])\.(?=[A-Za-z_"])')
# The whole event: a dot that follows no name, number, quote or closing bracket, and starts no path.
WHOLE_EVENT = re.compile(r'(?<![\w"\')\]])\.(?![A-Za-z_"\d])')
# `.http`, or a quoted first segment (seen without its text, which could be "http").
HTTP_PATH = re.compile(r'(?<![\w"\')\]])\.(http\b|"")')
ALLOWED_PATHS = (".http.useragent_details", ".http.useragent")
MAX_REMEMBERED = 10_000
# The line after which normalize.vrl writes under .ocsf only, and the key it writes.
OCSF_MARKER = "# ccl-detect: the rest writes under .ocsf only"
OCSF_KEY = "ocsf"
# An assignment: `=` or `|=`, not part of `==`, `!=`, `<=`, `>=`.
ASSIGNMENT = re.compile(r"(?<![=!<>|])\|?=(?!=)")
# Variables of the program's own, or fields of them (`resource.uid`): not the event.
LOCAL_TARGETS = re.compile(r"[A-Za-z_]\w*(?:\.\w+|\[\d+\])*(?:\s*,\s*[A-Za-z_]\w*(?:\.\w+|\[\d+\])*)*")
OCSF_TARGET = re.compile(r"\.ocsf(?![\w\"])")
DELETION = re.compile(r"\bdel\(([^)]*)\)")


def split_program(source: str) -> tuple[str, str] | None:
    """(the user-agent block alone, the program without it), or None if the source does not have the
    one self-contained, top-level block this relies on, or refers to its paths after it."""
    start = source.find(BLOCK_START)
    if start < 0 or source.find(BLOCK_START, start + 1) >= 0:
        return None
    opening = start + len(BLOCK_START) - 1
    closing = _matching_brace(source, opening)
    if closing is None:
        return None
    before = _code_only(source[:start])
    if before.count("{") != before.count("}"):
        return None  # inside a condition or a closure: it does not run for every event
    body = source[opening + 1:closing]
    reads = body
    for path in ALLOWED_PATHS:
        reads = reads.replace(path, "")
    if EVENT_PATH.search(_code_only(reads)) or WHOLE_EVENT.search(_code_only(body)):
        return None  # the block touches more of the event than its user agent: not a function of it
    after = _code_only(source[closing + 1:])
    if HTTP_PATH.search(after) or WHOLE_EVENT.search(after):
        return None  # something later could read the details or change the user agent
    return source[start:closing + 1], source[:start] + source[closing + 1:]


def without_ocsf(source: str) -> str | None:
    """The program without its part after OCSF_MARKER, or None unless that part only writes under
    `.ocsf` (its own variables aside), never aborts, and runs for every event (top level)."""
    start = source.find(OCSF_MARKER)
    if start < 0 or source.find(OCSF_MARKER, start + 1) >= 0:
        return None
    before, tail = _code_only(source[:start]), _code_only(source[start:])
    if before.count("{") != before.count("}") or WHOLE_EVENT.search(tail) or re.search(r"\babort\b", tail):
        return None
    for assignment in ASSIGNMENT.finditer(tail):
        statement_start = max(tail.rfind(mark, 0, assignment.start()) for mark in "{};\n") + 1
        targets = tail[statement_start:assignment.start()].strip()
        if not (LOCAL_TARGETS.fullmatch(targets) or (OCSF_TARGET.match(targets) and "," not in targets)):
            return None
    for deletion in DELETION.finditer(tail):
        target = deletion.group(1).strip()
        if not (LOCAL_TARGETS.fullmatch(target) or OCSF_TARGET.match(target)):
            return None
    return source[:start]


def _matching_brace(source: str, opening: int) -> int | None:
    depth, position, size = 0, opening, len(source)
    while position < size:
        char = source[position]
        if char == "#":
            position = source.find("\n", position)
            if position < 0:
                return None
        elif char == '"' or (char == "'" and source[position - 1] in "rst"):
            position = _string_end(source, position)
            if position is None:
                return None
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return position
        position += 1
    return None


def _string_end(source: str, quote_at: int) -> int | None:
    quote, position = source[quote_at], quote_at + 1
    escapes = quote == '"'
    while position < len(source):
        char = source[position]
        if escapes and char == "\\":
            position += 2
            continue
        if char == quote:
            return position
        position += 1
    return None


def _code_only(text: str) -> str:
    """`text` without its comments and string literals (a dot inside them is no event path)."""
    kept, position = [], 0
    while position < len(text):
        char = text[position]
        if char == "#":
            end = text.find("\n", position)
            position = len(text) if end < 0 else end
            continue
        if char == '"' or (char == "'" and position and text[position - 1] in "rst"):
            end = _string_end(text, position)
            position = len(text) if end is None else end + 1
            kept.append('""')
            continue
        kept.append(char)
        position += 1
    return "".join(kept)


class _RememberingProgram:
    """Stands in for the normalize.vrl program: same `run`, same results."""

    def __init__(self, production: VrlProgram, block: VrlProgram, rest: VrlProgram, lean: VrlProgram | None):
        self.production, self.block, self.rest, self.lean = production, block, rest, lean
        self.name, self.source = production.name, production.source
        self.remembered: dict[str, bytes | None] = {}  # user agent -> its details as JSON, None for none

    def run(self, activity: dict[str, Any], without_ocsf: bool = False) -> dict[str, Any]:
        program = self.lean if without_ocsf and self.lean is not None else self.rest
        try:
            event = program.run(activity)
            http = event.get("http")
            useragent = http.get("useragent") if isinstance(http, dict) else None
            if isinstance(useragent, str) and useragent:
                details = self._details(useragent)
                if details is not None:
                    http["useragent_details"] = orjson.loads(details)  # a copy of its own for each event
                    if list(http) != sorted(http):  # VRL's objects keep their keys sorted
                        event["http"] = dict(sorted(http.items()))
            return event
        except VrlError:
            return self.production.run(activity)  # with the production program's own diagnostic

    def _details(self, useragent: str) -> bytes | None:
        if useragent not in self.remembered:
            if len(self.remembered) >= MAX_REMEMBERED:
                self.remembered.clear()
            http = self.block.run({"http": {"useragent": useragent}}).get("http")
            details = http.get("useragent_details") if isinstance(http, dict) else None
            self.remembered[useragent] = None if details is None else orjson.dumps(details)
        return self.remembered[useragent]


class RememberingNormalizer(Normalizer):
    """A Normalizer whose normalize.vrl remembers parsed user agents; output identical to Normalizer's."""

    def __init__(self, geoip_db: Path | None = None):
        super().__init__(geoip_db)
        self._without_ocsf: Any = self._normalize  # unless the derived programs below can be made
        parts = split_program(self._normalize.source)
        if parts is None:
            return
        try:
            block = VrlProgram(parts[0], f"{self._normalize.name} (user-agent block)")
            rest = VrlProgram(parts[1], f"{self._normalize.name} (without its user-agent block)")
        except VrlError:
            return
        lean_source = without_ocsf(parts[1])
        try:
            lean = VrlProgram(lean_source, f"{self._normalize.name} (without OCSF)") if lean_source else None
        except VrlError:
            lean = None
        self._normalize = _RememberingProgram(self._normalize, block, rest, lean)  # type: ignore[assignment]
        self._without_ocsf = _WithoutOcsf(self._normalize)

    def normalize_without_ocsf(self, activity: dict[str, Any]) -> dict[str, Any]:
        """`normalize(activity)`, but for the `ocsf` key, which may be missing."""
        return self._normalized(activity, self._without_ocsf)


class _WithoutOcsf:
    def __init__(self, program: _RememberingProgram):
        self.program = program

    def run(self, activity: dict[str, Any]) -> dict[str, Any]:
        return self.program.run(activity, without_ocsf=True)
