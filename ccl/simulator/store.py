"""The simulator's activity store: ordered by (created_at, id), with indexing delay per row.

A row is invisible to queries until its `visible_at`; rows whose delay outlasts newer rows are the
"late-indexed" activities that a cursor walking toward the present never sees again.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import json
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

CURSOR_PREFIX = "pos1_"


@dataclass(slots=True)
class Row:
    key: tuple[int, str]
    visible_at: float
    activity: dict[str, Any]
    encoded: bytes
    actor_user_id: str | None


@dataclass
class Query:
    order: str = "desc"
    limit: int = 100
    after: tuple[int, str] | None = None
    before: tuple[int, str] | None = None
    lower_us: int | None = None  # inclusive
    upper_us: int | None = None  # exclusive
    types: set[str] | None = None
    excluded_types: set[str] = field(default_factory=set)
    org_ids: set[str] | None = None
    actor_ids: set[str] | None = None


@dataclass
class PageResult:
    rows: list[Row]
    has_more: bool


def micros(created_at: str) -> int:
    value = datetime.fromisoformat(created_at)
    return int(value.timestamp()) * 1_000_000 + value.microsecond


def encode_cursor(key: tuple[int, str]) -> str:
    raw = f"{key[0]}|{key[1]}".encode()
    return CURSOR_PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str) -> tuple[int, str] | None:
    if not text.startswith(CURSOR_PREFIX):
        return None
    body = text[len(CURSOR_PREFIX):]
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()
        created, activity_id = raw.split("|", 1)
        return int(created), activity_id
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


class ActivityStore:
    def __init__(self) -> None:
        self._rows: list[Row] = []
        self._keys: list[tuple[int, str]] = []
        self.lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, activity: dict[str, Any], visible_at: float) -> None:
        actor = activity.get("actor") or {}
        row = Row((micros(activity["created_at"]), activity["id"]), visible_at, activity,
                  json.dumps(activity, separators=(",", ":")).encode(), actor.get("user_id"))
        with self.lock:
            index = bisect.bisect_right(self._keys, row.key)
            self._keys.insert(index, row.key)
            self._rows.insert(index, row)

    def all_activities(self) -> list[dict[str, Any]]:
        with self.lock:
            return [row.activity for row in self._rows]

    def visible_activities(self, now: float) -> list[dict[str, Any]]:
        with self.lock:
            return [row.activity for row in self._rows if row.visible_at <= now]

    def query(self, query: Query, now: float) -> PageResult:
        with self.lock:
            lo = 0 if query.lower_us is None else bisect.bisect_left(self._keys, (query.lower_us, ""))
            hi = len(self._keys) if query.upper_us is None else bisect.bisect_left(self._keys, (query.upper_us, ""))
            newest_first = query.order == "desc"
            if query.before is not None:
                # "Previous page": the rows right next to the cursor on the side it came from.
                toward_newer = newest_first
                start = self._start(query.before, toward_newer, lo, hi)
                found = self._collect(start, toward_newer, lo, hi, query, now)
                page = found[: query.limit]
                page.reverse()
                return PageResult(page, len(found) > query.limit)
            toward_newer = not newest_first
            if query.after is not None:
                start = self._start(query.after, toward_newer, lo, hi)
            else:
                start = lo if toward_newer else hi - 1
            found = self._collect(start, toward_newer, lo, hi, query, now)
            return PageResult(found[: query.limit], len(found) > query.limit)

    def _start(self, key: tuple[int, str], toward_newer: bool, lo: int, hi: int) -> int:
        if toward_newer:
            return max(lo, bisect.bisect_right(self._keys, key))
        return min(hi - 1, bisect.bisect_left(self._keys, key) - 1)

    def _collect(self, index: int, toward_newer: bool, lo: int, hi: int, query: Query, now: float) -> list[Row]:
        step = 1 if toward_newer else -1
        wanted = query.limit + 1
        found: list[Row] = []
        rows = self._rows
        while lo <= index < hi and len(found) < wanted:
            row = rows[index]
            index += step
            if row.visible_at > now or not _matches(row, query):
                continue
            found.append(row)
        return found


def _matches(row: Row, query: Query) -> bool:
    activity = row.activity
    kind = activity.get("type")
    if query.types is not None and kind not in query.types:
        return False
    if kind in query.excluded_types:
        return False
    if query.org_ids is not None and not (
        activity.get("organization_id") in query.org_ids or activity.get("organization_uuid") in query.org_ids
    ):
        return False
    return query.actor_ids is None or row.actor_user_id in query.actor_ids
