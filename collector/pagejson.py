"""Reads a page of the Activity Feed and keeps the API's own text of each activity.

Emitting that text (instead of re-encoding the parsed object) makes each output line the
exact bytes the API sent, and it halves the collector's CPU: re-encoding was the largest cost.
The values are still parsed (the collector needs ids and timestamps) with the stdlib's C scanner.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any


class _Constants:
    """Counts NaN, Infinity and -Infinity as the scanner meets them (Python accepts them, strict JSON does not)."""

    seen = 0

    @classmethod
    def parse(cls, name: str) -> float:
        cls.seen += 1
        return float(name)


_scan_value = json.JSONDecoder(parse_constant=_Constants.parse).scan_once
_encode_strict = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode
_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_whitespace = re.compile(r"[ \t\n\r]*").match
_WHITESPACE = " \t\n\r"
_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True).encode


class NotAPage(ValueError):
    """The text is not one JSON object (the caller reports it as a garbled page)."""


def read_page(text: str) -> tuple[dict[str, Any], list[str]]:
    """The page object and, for each element of its `data` array, one line of JSON for it.

    Lines are the API's text when it holds no line break (compact JSON, the norm), else the
    element re-encoded compactly, so that every line is one element whatever the formatting.
    If `data` is missing or is not an array, the line list is empty.
    """
    try:
        return _read_object(text)
    except (StopIteration, IndexError) as error:
        raise NotAPage(f"not JSON near character {getattr(error, 'value', '?')}") from None
    except RecursionError:
        raise NotAPage("JSON nested too deeply") from None


def constants_seen() -> int:
    """How many NaN/Infinity the reader has met so far (compare before and after a page)."""
    return _Constants.seen


def make_strict(items: list[Any], lines: list[str], had_bad_bytes: bool, had_constants: bool) -> list[tuple[int, str]]:
    """Rewrites, in place, the lines a strict JSON reader (Vector's) would refuse, so none is dropped.

    - a string holding an invalid UTF-8 byte (decoded with surrogateescape) or a lone UTF-16
      surrogate escape (`\\ud800` without its pair): those characters become U+FFFD;
    - NaN, Infinity, -Infinity (not JSON): null, as JavaScript's JSON.stringify writes them.
    Returns (index, what was replaced) for each rewritten line, for the log.
    """
    repaired = []
    for index, line in enumerate(lines):
        suspicious = (had_bad_bytes and _SURROGATE.search(line)) or (
            "\\u" in line and _SURROGATE_ESCAPE.search(line)) or (
            had_constants and ("NaN" in line or "Infinity" in line))
        if not suspicious:
            continue
        found: set[str] = set()
        fixed = _strict(items[index], found)
        if found:
            items[index] = fixed
            lines[index] = _encode_strict(fixed)
            repaired.append((index, " and ".join(sorted(found))))
    return repaired


def _strict(value: Any, found: set[str]) -> Any:
    if isinstance(value, str):
        if _SURROGATE.search(value):
            found.add("invalid UTF-8 or lone surrogates (now U+FFFD)")
            return _SURROGATE.sub("\ufffd", value)
        return value
    if isinstance(value, float) and not math.isfinite(value):
        found.add("NaN or Infinity (now null)")
        return None
    if isinstance(value, list):
        return [_strict(item, found) for item in value]
    if isinstance(value, dict):
        return {_strict(key, found): _strict(item, found) for key, item in value.items()}
    return value


def _read_object(text: str) -> tuple[dict[str, Any], list[str]]:
    index = _skip(text, 0)
    _expect(text, index, "{")
    body: dict[str, Any] = {}
    lines: list[str] = []
    index = _skip(text, index + 1)
    if text[index] != "}":
        while True:
            _expect(text, index, '"')
            key, index = _scan_value(text, index)
            index = _skip(text, index)
            _expect(text, index, ":")
            index = _skip(text, index + 1)
            if key == "data" and text[index] == "[":
                body[key], lines, index = _read_array(text, index)
            else:
                body[key], index = _scan_value(text, index)
                if key == "data":
                    lines = []
            index = _skip(text, index)
            if text[index] == ",":
                index = _skip(text, index + 1)
                continue
            _expect(text, index, "}")
            break
    if _skip(text, index + 1) != len(text):
        raise NotAPage("extra data after the page object")
    return body, lines


def _read_array(text: str, index: int) -> tuple[list[Any], list[str], int]:
    items: list[Any] = []
    lines: list[str] = []
    may_break_lines = "\n" in text or "\r" in text
    index = _skip(text, index + 1)
    if text[index] == "]":
        return items, lines, index + 1
    scan, whitespace = _scan_value, _WHITESPACE
    # The loop is the collector's hot path (one turn per activity): whitespace is skipped only
    # where there is some, which compact JSON never has.
    while True:
        item, end = scan(text, index)
        items.append(item)
        raw = text[index:end]
        lines.append(_encode(item) if may_break_lines and ("\n" in raw or "\r" in raw) else raw)
        char = text[end]
        if char in whitespace:
            end = _skip(text, end)
            char = text[end]
        if char == ",":
            index = end + 1
            if text[index] in whitespace:
                index = _skip(text, index)
            continue
        _expect(text, end, "]")
        return items, lines, end + 1


def _skip(text: str, index: int) -> int:
    return _whitespace(text, index).end()  # type: ignore[union-attr]  # the pattern always matches


def _expect(text: str, index: int, char: str) -> None:
    if text[index] != char:
        raise NotAPage(f"expected {char!r} at character {index}")
