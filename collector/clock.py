"""The time the feed's windows are computed in: the API's clock, carried by a clock that never steps.

`created_at` values are stamped by the API's clock, so the re-poll windows must be too. The host's
wall clock can be wrong or step (a VM resumed, NTP correcting an hour, an operator's `date -s`),
which made a re-poll read the past or skip the present. So the feed's "now" is a monotonic clock
(one that counts suspend too, where the system has one) plus an offset, set from the wall clock at
start and then from the `Date` header of each API answer, what the API itself says the time is. A
step of the wall clock against the monotonic one is logged and changes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime

from collector.log import JsonLog

# Differences smaller than this are the Date header's one-second resolution plus network time.
JITTER_SECONDS = 2.0
# A host clock this far from the API's is worth a warning (the windows follow the API anyway).
SKEW_WARNING_SECONDS = 30.0
# A Date further than this from the host's clock is more likely a broken proxy than the truth.
MAX_TRUSTED_SKEW_SECONDS = 7 * 86400.0


def _steady() -> float:
    """Monotonic, and counting time spent suspended where the system offers such a clock."""
    try:
        return time.clock_gettime(time.CLOCK_BOOTTIME)
    except (AttributeError, OSError):
        return time.monotonic()


class FeedClock:
    def __init__(self, log: JsonLog | None = None, wall: Callable[[], float] = time.time,
                 steady: Callable[[], float] = _steady):
        self._log = log
        self._wall = wall
        self._steady = steady
        self._offset = wall() - steady()  # feed time = steady() + offset
        self._wall_offset = self._offset  # last seen wall - steady, to notice steps
        self._warned_skew: float | None = None
        self.anchored = False  # True once an answer's Date has set the clock (until then: the host's)

    def now(self) -> float:
        """Epoch seconds as the API counts them, as well as this process knows."""
        self._notice_step()
        return self._steady() + self._offset

    def observe_api_date(self, header: str | None) -> None:
        """Takes the API's `Date` header (one-second resolution) as the reference for "now"."""
        api_time = _parse_http_date(header)
        if api_time is None or abs(api_time - self._wall()) > MAX_TRUSTED_SKEW_SECONDS:
            return
        offset = api_time + 0.5 - self._steady()  # the header truncates to the second
        self.anchored = True
        if abs(offset - self._offset) > JITTER_SECONDS:
            self._offset = offset
        skew = self._wall() - (self._steady() + self._offset)
        if abs(skew) >= SKEW_WARNING_SECONDS and (
                self._warned_skew is None or abs(skew - self._warned_skew) >= SKEW_WARNING_SECONDS):
            self._warned_skew = skew
            self._say("this host's clock differs from the API's; the collector's windows follow the API's clock "
                      "(the Date of its answers). Keep the host clock synchronized (NTP)", skew_seconds=round(skew, 1))

    def _notice_step(self) -> None:
        wall_offset = self._wall() - self._steady()
        step = wall_offset - self._wall_offset
        if abs(step) > JITTER_SECONDS:
            self._wall_offset = wall_offset
            self._say("the system clock jumped; the collector's windows stay on a clock that does not jump and on "
                      "the API's Date", jump_seconds=round(step, 1))

    def _say(self, message: str, **fields: float) -> None:
        if self._log is not None:
            self._log.warning(message, **fields)


def _parse_http_date(header: str | None) -> float | None:
    if not header:
        return None
    try:
        value = parsedate_to_datetime(header)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if value is None or value.tzinfo is None:
        return None
    try:
        return value.timestamp()
    except (OverflowError, OSError, ValueError):
        return None
