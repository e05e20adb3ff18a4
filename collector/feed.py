"""The traversal: first run, catch-up by cursor, and the overlap re-poll, without loss or repeats.

Order of work in each cycle:
1. first run (empty state): `[since, now)` newest-first with `after_id`; the first page's
   `first_id` becomes the catch-up cursor; progress is saved after every page;
2. catch-up: `before_id` from the newest `first_id` until `has_more` is false;
3. overlap re-poll, when due: `created_at.gte = now - overlap`, `created_at.lt = now - 1 min`, to pick
   up activities indexed after the cursor passed them; only ids not emitted before go out.

Every page is written and flushed before the state that follows it is saved, so a crash repeats at
most that page. Ids emitted inside the overlap window are remembered (pruned by `created_at`) so
that re-polls and restarts never repeat anything.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from collector.api import PAGE_LIMIT, ComplianceClient, Page
from collector.errors import ApiFailure
from collector.log import JsonLog
from collector.output import NdjsonOutput
from collector.shutdown import Shutdown
from collector.state import FeedState, StateDir
from collector.timeparse import format_rfc3339, parse_created_at

# The API documents that activities become queryable within one minute; a window closer to now
# than that loses late rows for good.
INDEXING_LAG_SECONDS = 60.0
# Remembered ids live a little longer than the overlap window, so that clock jitter between
# pruning and the next re-poll can never let one through twice.
PRUNE_MARGIN_SECONDS = 120.0


@dataclass
class FeedOptions:
    since: datetime
    overlap: float = 900.0
    reconcile_every: float = 300.0
    filters: list[tuple[str, str]] = field(default_factory=list)
    give_up_after: float | None = None


@dataclass
class CycleReport:
    emitted: int = 0
    pages: int = 0
    late_found: int = 0
    skipped_seen: int = 0
    reconciled: bool = False

    def add_page(self, emitted: int, skipped: int) -> None:
        self.pages += 1
        self.emitted += emitted
        self.skipped_seen += skipped


MAX_EMPTY_PAGES = 50


class Feed:
    def __init__(
        self,
        client: ComplianceClient,
        state_dir: StateDir,
        state: FeedState,
        output: NdjsonOutput,
        shutdown: Shutdown,
        log: JsonLog,
        options: FeedOptions,
        clock: Callable[[], float] | None = None,
    ):
        self.client = client
        self.state_dir = state_dir
        self.state = state
        self.output = output
        self.shutdown = shutdown
        self.log = log
        self.options = options
        self.clock = clock or _wall_clock
        self._warned_missing_id = False

    # -- the cycle ---------------------------------------------------------------------------

    def run_cycle(self, force_reconcile: bool) -> CycleReport:
        report = CycleReport()
        self._prune_recent()
        if self.state.cursor is None and self.state.initial is None:
            self.state.initial = {"since": format_rfc3339(self.options.since), "after_id": None}
        if self.state.initial is not None:
            self._first_run(report)
        if self.state.cursor is not None:
            self._catch_up(report)
        due = (
            self.state.last_reconcile_at is None
            or self.clock() - self.state.last_reconcile_at >= self.options.reconcile_every
        )
        if force_reconcile or due:
            self._reconcile(report)
        return report

    def replay(self, seconds: float) -> int:
        """Re-emits the last `seconds` of activities once, seen or not (operator's choice at start)."""
        if self.state.cursor is None:
            return 0
        params = [("created_at.gte", format_rfc3339(_utc(self.clock() - seconds)))]
        emitted = 0
        for page in self._walk_older(params):
            with self.shutdown.critical():
                self.output.write_page(page.lines)
                self._remember(page.activities)
                self._save()
            emitted += len(page.activities)
        self.log.info("replayed recent activities at start", emitted=emitted, replay_seconds=seconds)
        return emitted

    # -- the three traversals ----------------------------------------------------------------

    def _first_run(self, report: CycleReport) -> None:
        initial = self.state.initial or {}
        params = [("created_at.gte", initial["since"])]
        resume = initial.get("after_id")
        if resume is None:
            self.log.info("first run: reading activities since the start point, newest first",
                          since=initial["since"])
        for page in self._walk_older(params, start_after=resume):
            with self.shutdown.critical():
                emitted, skipped = self._emit_unseen(page)
                if self.state.cursor is None and page.first_id:
                    # The newest activity of the first page: catch-up continues from here.
                    self.state.cursor = page.first_id
                    self.state.cursor_created_at = _created_at(page.activities[0]) if page.activities else None
                if page.has_more:
                    self.state.initial = {"since": initial["since"], "after_id": page.last_id}
                elif self.state.cursor is not None:
                    self.state.initial = None
                else:
                    # Nothing in the window yet: start the next attempt where this one looked,
                    # minus the overlap, so that rows indexed late are not skipped.
                    later = max(parse_created_at(initial["since"]) or 0.0,
                                self.clock() - self.options.overlap)
                    self.state.initial = {"since": format_rfc3339(_utc(later)), "after_id": None}
                self._save()
            report.add_page(emitted, skipped)

    def _catch_up(self, report: CycleReport) -> None:
        while True:
            page = self._fetch([*self.options.filters, ("before_id", self.state.cursor or ""),
                                ("limit", str(PAGE_LIMIT))])
            with self.shutdown.critical():
                emitted, skipped = self._emit_unseen(page)
                if page.first_id:
                    self.state.cursor = page.first_id
                    newest = _created_at(page.activities[0]) if page.activities else None
                    self.state.cursor_created_at = newest or self.state.cursor_created_at
                self._save()
            report.add_page(emitted, skipped)
            if not page.has_more:
                return

    def _reconcile(self, report: CycleReport) -> None:
        now = self.clock()
        params = [
            ("created_at.gte", format_rfc3339(_utc(now - self.options.overlap))),
            ("created_at.lt", format_rfc3339(_utc(now - INDEXING_LAG_SECONDS))),
        ]
        late = 0
        for page in self._walk_older(params):
            with self.shutdown.critical():
                emitted, skipped = self._emit_unseen(page)
                self._save()
            late += emitted
            report.add_page(emitted, skipped)
        self.state.last_reconcile_at = now
        self._save()
        report.late_found += late
        report.reconciled = True
        if late:
            # Routine: ingestion is asynchronous, so a cursor regularly passes rows indexed a moment later.
            self.log.info("overlap re-poll found activities indexed late; emitted them now", late_found=late)

    # -- helpers -----------------------------------------------------------------------------

    def _walk_older(self, params: list[tuple[str, str]], start_after: str | None = None):
        """Pages of `params` in the default newest-first order, following `last_id`."""
        after = start_after
        empty_in_a_row = 0
        while True:
            query = [*self.options.filters, *params, ("limit", str(PAGE_LIMIT))]
            if after:
                query.append(("after_id", after))
            page = self._fetch(query)
            yield page
            if not page.has_more:
                return
            # A cursor that does not move, or page after empty page, would loop forever.
            empty_in_a_row = 0 if page.activities else empty_in_a_row + 1
            if page.last_id == after or empty_in_a_row >= MAX_EMPTY_PAGES:
                raise ApiFailure("the API keeps answering has_more without moving forward (same cursor or "
                                 f"{empty_in_a_row} empty pages); stopping here, the saved position is kept",
                                 request_id=page.request_id)
            after = page.last_id

    def _fetch(self, params: list[tuple[str, str]]) -> Page:
        return self.client.list_activities(params, self.options.give_up_after)

    def _emit_unseen(self, page: Page) -> tuple[int, int]:
        recent = self.state.recent
        fresh, lines = [], []
        for activity, line in zip(page.activities, page.lines, strict=True):
            activity_id = activity.get("id")
            if isinstance(activity_id, str):
                if activity_id in recent:
                    continue
            elif not self._warned_missing_id:
                self._warned_missing_id = True
                self.log.warning("the API returned an activity without an id; it is emitted but cannot be "
                                 "deduplicated")
            fresh.append(activity)
            lines.append(line)
        self.output.write_page(lines)
        self._remember(fresh)
        return len(fresh), len(page.activities) - len(fresh)

    def _remember(self, activities: list[dict[str, Any]]) -> None:
        keep_from = self._prune_threshold()
        keep_from_second = _utc(keep_from).strftime("%Y-%m-%dT%H:%M:%S")
        now = self.clock()
        recent = self.state.recent
        for activity in activities:
            activity_id = activity.get("id")
            if not isinstance(activity_id, str):
                continue
            text = activity.get("created_at")
            if _is_older_utc_second(text, keep_from_second):
                continue  # most of a first run or backlog: cheaper than parsing every timestamp
            created = parse_created_at(text)
            if created is None:
                recent[activity_id] = now
            elif created >= keep_from:
                recent[activity_id] = created

    def _prune_threshold(self) -> float:
        return self.clock() - self.options.overlap - PRUNE_MARGIN_SECONDS

    def _prune_recent(self) -> None:
        keep_from = self._prune_threshold()
        self.state.recent = {key: ts for key, ts in self.state.recent.items() if ts >= keep_from}

    def _save(self) -> None:
        self.state_dir.save_feed(self.state)


def _wall_clock() -> float:
    return time.time()


def _created_at(activity: dict[str, Any]) -> str | None:
    value = activity.get("created_at")
    return value if isinstance(value, str) else None


def _is_older_utc_second(text: Any, second: str) -> bool:
    """True if `text` is a `...Z` timestamp in a whole second before `second` (same layout)."""
    return (isinstance(text, str) and len(text) >= 20 and text[-1] == "Z" and text[10] == "T"
            and text[19] in ".Z" and text[:19] < second)


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)
