"""Reads a page of the Activity Feed and keeps the API's own text of each activity.

Emitting that text (instead of re-encoding the parsed object) makes each output line the
exact bytes the API sent, and it halves the collector's CPU: re-encoding was the largest cost.
The values are still parsed (the collector needs ids and timestamps) with the stdlib's C scanner.
"""

from __future__ import annotations

import json
import re
from typing import Any

_scan_value = json.JSONDecoder().scan_once
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
