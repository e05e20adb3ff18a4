"""normalize.vrl with its user-agent parsing remembered per user agent, for `ccl detect` on raw input.

`parse_user_agent(..., mode: "enriched")` (uap-core's few hundred regular expressions) is about half
of what normalize.vrl costs per activity, and a month of activities carries few distinct user
agents. Its block in normalize.vrl reads `.http.useragent` and nothing else of the event, and
writes `.http.useragent_details` and nothing else, so its result is a function of that string.

So the program runs in two parts, both cut from the production text at start-up (nothing is
hand-copied): the block alone, once per distinct user agent, and the whole program with that block
taking the remembered result when it is handed the same user agent (else it parses as before).
The output is the production program's, event for event; where the text does not have the shape
relied on here, or the derived program fails, the production program runs unchanged.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ccl.vector.normalize import Normalizer
from ccl.vector.vrl import VrlError, VrlProgram

BLOCK_START = 'if is_string(.http.useragent) && .http.useragent != "" {'
# An event path in VRL starts with a dot that follows no name, number, quote or closing bracket.
EVENT_PATH = re.compile(r'(?<![\w"\')\]])\.(?=[A-Za-z_"])')
ALLOWED_PATHS = (".http.useragent_details", ".http.useragent")
# Handed to the derived program beside the activity; it takes them off first thing.
MEMO_USERAGENT, MEMO_DETAILS = "ccl_memo_useragent", "ccl_memo_useragent_details"
MAX_REMEMBERED = 10_000


def split_program(source: str) -> tuple[str, str] | None:
    """(the user-agent block alone, the program taking a remembered result), or None if the
    source does not have the one self-contained block this relies on."""
    start = source.find(BLOCK_START)
    if start < 0 or source.find(BLOCK_START, start + 1) >= 0:
        return None
    opening = start + len(BLOCK_START) - 1
    closing = _matching_brace(source, opening)
    if closing is None:
        return None
    body = source[opening + 1:closing]
    reads = body
    for path in ALLOWED_PATHS:
        reads = reads.replace(path, "")
    if EVENT_PATH.search(_code_only(reads)) or "ccl_memo" in source:
        return None  # the block touches more of the event than its user agent: not a function of it
    block = source[start:closing + 1]
    derived = (f"ccl_memo_useragent = del(.{MEMO_USERAGENT}); ccl_memo_details = del(.{MEMO_DETAILS})\n"
               + source[:start]
               + f"{BLOCK_START}\n  if ccl_memo_useragent == .http.useragent {{\n"
               + "    .http.useragent_details = ccl_memo_details\n  } else {" + body + "}\n}"
               + source[closing + 1:])
    return block, derived


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

    def __init__(self, production: VrlProgram, block: VrlProgram, derived: VrlProgram):
        self.production, self.block, self.derived = production, block, derived
        self.name, self.source = production.name, production.source
        self.remembered: dict[str, Any] = {}

    def run(self, activity: dict[str, Any]) -> dict[str, Any]:
        actor = activity.get("actor")
        useragent = actor.get("user_agent") if isinstance(actor, dict) else None
        if not isinstance(useragent, str) or not useragent or MEMO_USERAGENT in activity \
                or MEMO_DETAILS in activity:
            return self.production.run(activity)
        try:
            details = self._details(useragent)
            return self.derived.run({**activity, MEMO_USERAGENT: useragent, MEMO_DETAILS: details})
        except VrlError:
            return self.production.run(activity)  # with the production program's own diagnostic

    def _details(self, useragent: str) -> Any:
        details = self.remembered.get(useragent)
        if details is None:
            if len(self.remembered) >= MAX_REMEMBERED:
                self.remembered.clear()
            details = self.block.run({"http": {"useragent": useragent}})["http"]["useragent_details"]
            self.remembered[useragent] = details
        return details


class RememberingNormalizer(Normalizer):
    """A Normalizer whose normalize.vrl remembers parsed user agents; output identical to Normalizer's."""

    def __init__(self, geoip_db: Path | None = None):
        super().__init__(geoip_db)
        parts = split_program(self._normalize.source)
        if parts is None:
            return
        try:
            block = VrlProgram(parts[0], f"{self._normalize.name} (user-agent block)")
            derived = VrlProgram(parts[1], f"{self._normalize.name} (remembering user agents)")
        except VrlError:
            return
        self._normalize = _RememberingProgram(self._normalize, block, derived)  # type: ignore[assignment]
