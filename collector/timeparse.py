"""Durations (`15m`, `2h`, `1h30m`) and RFC 3339 instants, as the command line accepts them; durations as
the collector's messages write them."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta

_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
# Options that take a duration accept at most this; `--since` reaches back at most to year 1.
MAX_DURATION_SECONDS = 3650 * 86400.0


class TimeFormatError(ValueError):
    """A duration or timestamp the user typed could not be read."""


def parse_duration(text: str) -> float:
    """Seconds in `text`: `90`, `90s`, `15m`, `2h`, `1h30m`, `7d`, `500ms`."""
    text = text.strip().lower()
    if not text:
        raise TimeFormatError("empty duration; use a number of seconds or a value like 15m, 2h, 7d")
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds):
            raise TimeFormatError(f"cannot read duration {text!r}; use a value like 90s, 15m, 2h, 1h30m or 7d")
        if seconds < 0:
            raise TimeFormatError(f"negative duration {text!r}")
        return seconds
    position = 0
    total = 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    if position != len(text) or position == 0 or not math.isfinite(total):
        raise TimeFormatError(f"cannot read duration {text!r}; use a value like 90s, 15m, 2h, 1h30m or 7d")
    return total


def parse_instant(text: str, now: datetime | None = None) -> datetime:
    """An RFC 3339 timestamp, or a duration meaning that long before `now`."""
    text = text.strip()
    if _looks_like_timestamp(text):
        try:
            value = datetime.fromisoformat(text.replace("z", "Z"))
        except ValueError as exc:
            raise TimeFormatError(
                f"cannot read timestamp {text!r}; use RFC 3339 like 2026-04-01T00:00:00Z"
            ) from exc
        if value.tzinfo is None:
            raise TimeFormatError(f"timestamp {text!r} has no timezone; add Z or an offset like +00:00")
        try:
            return value.astimezone(UTC)
        except OverflowError:
            raise TimeFormatError(f"timestamp {text!r} is out of range") from None
    try:
        ago = parse_duration(text)
    except TimeFormatError as exc:
        raise TimeFormatError(
            f"cannot read time {text!r}; use RFC 3339 (2026-04-01T00:00:00Z) or a duration ago (2h, 7d)"
        ) from exc
    try:
        return (now or datetime.now(UTC)) - timedelta(seconds=ago)
    except OverflowError:
        raise TimeFormatError(f"{text!r} reaches back before the year 1; give a shorter duration or a date") from None


def _looks_like_timestamp(text: str) -> bool:
    return len(text) >= 10 and text[4:5] == "-" and text[:4].isdigit()


def format_rfc3339(value: datetime) -> str:
    """UTC, microseconds, `Z` suffix: the form the API documents and accepts."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_created_at(text: str) -> float | None:
    """Epoch seconds of an activity's `created_at`, or None if it is missing or unreadable."""
    if not isinstance(text, str):
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        return value.timestamp()
    except (OverflowError, ValueError):
        return None


def format_duration(seconds: float) -> str:
    """A duration for people, to the precision that matters at its size: `45s`, `2m 5s`, `15m`, `3h 20m`, `4d 2h`."""
    whole = max(0, int(seconds))
    if whole < 90:
        return f"{whole}s"
    if whole < 5400:
        return f"{whole // 60}m {whole % 60}s" if whole % 60 else f"{whole // 60}m"
    if whole < 172800:
        return f"{whole // 3600}h {whole % 3600 // 60}m"
    return f"{whole // 86400}d {whole % 86400 // 3600}h"


def format_ago(seconds: object) -> str:
    """`3m 5s ago`; `unknown` when the age is not a number (a state file written by an older collector)."""
    if not isinstance(seconds, int | float) or isinstance(seconds, bool):
        return "unknown"
    return f"{format_duration(seconds)} ago"
