"""Keeps the collector's request rate inside its share of the organization's limit.

The Compliance API allows 600 requests per minute per parent organization, shared by every key,
every linked org and every tool. The collector takes `max_rpm` of that (default 60), counted over
any sliding 60-second window, and slows down further when the API says the shared budget runs low.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from datetime import datetime

WINDOW_SECONDS = 60.0
# Below this many remaining requests in the org-wide window, spread what is left until the reset.
LOW_REMAINING = 20
MAX_SLOWDOWN_SECONDS = 60.0


class RequestBudget:
    def __init__(
        self,
        max_rpm: int,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ):
        self.max_rpm = max_rpm
        self._clock = clock
        self._wall_clock = wall_clock
        self._sent: deque[float] = deque()
        self._not_before = 0.0

    def delay_before_next(self) -> float:
        """Seconds to wait before the next request may be sent (0 when it may go now)."""
        now = self._clock()
        delay = max(0.0, self._not_before - now)
        if self.max_rpm > 0:
            while self._sent and self._sent[0] <= now - WINDOW_SECONDS:
                self._sent.popleft()
            if len(self._sent) >= self.max_rpm:
                delay = max(delay, self._sent[0] + WINDOW_SECONDS - now)
        return delay

    def record_request(self) -> None:
        self._sent.append(self._clock())

    def observe_headers(self, headers: dict[str, str] | object) -> float:
        """Reads `anthropic-ratelimit-requests-*`; returns the slowdown it imposes (seconds)."""
        get = getattr(headers, "get", None)
        if get is None:
            return 0.0
        remaining = _to_int(get("anthropic-ratelimit-requests-remaining"))
        if remaining is None or remaining > LOW_REMAINING:
            return 0.0
        until_reset = _seconds_until(get("anthropic-ratelimit-requests-reset"), self._wall_clock())
        if until_reset is None:
            until_reset = WINDOW_SECONDS
        slowdown = min(MAX_SLOWDOWN_SECONDS, until_reset / max(remaining, 1))
        self._not_before = max(self._not_before, self._clock() + slowdown)
        return slowdown

    def hold_off(self, seconds: float) -> None:
        """No request before `seconds` from now (a 429's retry-after)."""
        self._not_before = max(self._not_before, self._clock() + seconds)


def _to_int(value: object) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


def _seconds_until(reset: object, now: float) -> float | None:
    if not isinstance(reset, str) or not reset:
        return None
    try:
        when = datetime.fromisoformat(reset)
    except ValueError:
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, min(WINDOW_SECONDS, when.timestamp() - now))
