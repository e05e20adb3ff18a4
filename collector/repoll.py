"""What the overlap re-poll must read so that an activity indexed late is never missed.

A traversal that reaches the present at time T has passed every activity created before T, but
one created shortly before T may not be queryable yet (the API indexes asynchronously). So each
time a traversal reaches the present, the span `[T - overlap, T)` is recorded as still to be
re-read, and a re-poll reads every recorded span plus the usual `[now - overlap, now - 1 min)`.

The spans are what makes a pause harmless: after a host was down 20 minutes, the span recorded by
the last traversal before the pause is still there, so late rows from just before the pause are
read, although `now - overlap` is already past them. Spans never reach back before where the last
completed re-poll ended (that part has been read), nor beyond what the API keeps (6 years). The
middle of a long pause is not re-read: the catch-up after it reads those rows long after they
were indexed.

All times are epoch seconds on the API's clock (collector/clock.py).
"""

from __future__ import annotations

from collector.state import FeedState

# The API documents that activities become queryable within one minute; a window closer to now
# than that loses late rows for good.
INDEXING_LAG_SECONDS = 60.0
RETENTION_SECONDS = 6 * 365.25 * 86400
# Remembered ids live a little longer than the windows that could return them again, so that
# clock jitter between pruning and the next re-poll can never let one through twice.
PRUNE_MARGIN_SECONDS = 120.0
MAX_SPANS = 16
# How wrong our idea of the API's clock can be: the Date header's second, plus the network.
CLOCK_MARGIN_SECONDS = 2.0

Span = tuple[float, float]


class Repoll:
    def __init__(self, state: FeedState, overlap: float):
        self.state = state
        self.overlap = overlap

    def passed(self, moment: float, newest_read: float | None = None) -> None:
        """A traversal reached the present at `moment`: what was created just before may still appear.

        `newest_read` is the `created_at` of the newest activity it read, which is at most the API's
        "now" when it answered: the span reaches at least that far, whatever our estimate of the
        API's clock (a second's resolution) says.
        """
        end = max(moment, newest_read or moment) + CLOCK_MARGIN_SECONDS
        start = moment - self.overlap
        if self.state.reconciled_until is not None:
            start = max(start, self.state.reconciled_until)
        if end > start:
            self.state.repoll_spans = _merge([*self.state.repoll_spans, (start, end)])

    def windows(self, now: float) -> list[Span]:
        """The `[gte, lt)` windows a re-poll at `now` reads, newest first."""
        end = now - INDEXING_LAG_SECONDS
        floor = now - RETENTION_SECONDS
        spans = _merge([*self.state.repoll_spans, (now - self.overlap, end)])
        clipped = [(max(lo, floor), min(hi, end)) for lo, hi in spans]
        return sorted(((lo, hi) for lo, hi in clipped if hi > lo), reverse=True)

    def completed(self, now: float) -> None:
        """A re-poll at `now` has read all its windows: what lies before its end is done."""
        end = now - INDEXING_LAG_SECONDS
        self.state.reconciled_until = end
        self.state.repoll_spans = [(max(lo, end), hi) for lo, hi in self.state.repoll_spans if hi > end]

    def oldest_kept(self, now: float) -> float:
        """No re-poll can return an activity created before this: older ids need not be remembered."""
        starts = [lo for lo, _ in self.state.repoll_spans]
        return min([now - self.overlap, *starts]) - PRUNE_MARGIN_SECONDS

    def keeps(self, created: float, now: float) -> bool:
        """Whether a re-poll could still return an activity created at `created`."""
        if created >= now - self.overlap - PRUNE_MARGIN_SECONDS:
            return True
        return any(lo - PRUNE_MARGIN_SECONDS <= created < hi + PRUNE_MARGIN_SECONDS
                   for lo, hi in self.state.repoll_spans)


def _merge(spans: list[Span]) -> list[Span]:
    merged: list[list[float]] = []
    for lo, hi in sorted(spans):
        if merged and lo <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    while len(merged) > MAX_SPANS:  # join the two closest, reading a little more rather than forgetting
        gaps = [merged[i + 1][0] - merged[i][1] for i in range(len(merged) - 1)]
        i = gaps.index(min(gaps))
        merged[i:i + 2] = [[merged[i][0], merged[i + 1][1]]]
    return [(lo, hi) for lo, hi in merged]
