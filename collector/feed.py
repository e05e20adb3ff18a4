"""The traversal: first run, catch-up by cursor, and the overlap re-poll, without loss or repeats.

Order of work in each cycle:
1. first run (empty state): `[since, now)` newest-first with `after_id`; the first page's
   `first_id` becomes the catch-up cursor; progress is saved after every page. An empty answer
   never moves the start point: the next cycle reads from the same `since` again;
2. catch-up: `before_id` from the newest `first_id` until `has_more` is false;
3. overlap re-poll, when due: the windows of collector/repoll.py (at least `[now - overlap,
   now - 1 min)`, plus what earlier traversals left to re-read), to pick up activities indexed after
   the cursor passed them; only ids not emitted before go out.

Each page goes out in three steps: the state that follows it is written to a temporary file and
fsynced, the page is written to stdout in full, then the state file is renamed into place. So a
crash repeats at most that page, a full disk stops before the page (nothing repeated on restart),
and SIGTERM, deferred during the last two steps, never cuts a page. Ids emitted inside the re-poll
windows are remembered so that re-polls and restarts never repeat anything.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from collector.api import PAGE_LIMIT, ComplianceClient, Page
from collector.clock import FeedClock
from collector.errors import StateWriteError
from collector.files import StagedWrite
from collector.log import JsonLog
from collector.output import NdjsonOutput
from collector.progress import NEWER, OLDER, PageProgress
from collector.repoll import Repoll
from collector.shutdown import Shutdown
from collector.state import FeedState, StateDir
from collector.timeparse import format_rfc3339, parse_created_at

DISK_RETRY_SECONDS = 5.0
DISK_LOG_EVERY_SECONDS = 60.0


@dataclass
class FeedOptions:
    since: datetime
    overlap: float = 900.0
    reconcile_every: float = 300.0
    filters: list[tuple[str, str]] = field(default_factory=list)
    give_up_after: float | None = None
    wait_for_disk: bool = False  # follow mode: a full disk is waited out instead of ending the run


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
        clock: FeedClock | None = None,
    ):
        self.client = client
        self.state_dir = state_dir
        self.state = state
        self.output = output
        self.shutdown = shutdown
        self.log = log
        self.options = options
        self.clock = clock or FeedClock(log)
        self.repoll = Repoll(state, options.overlap)
        self._warned_missing_id = False
        self._answered_at = 0.0

    # -- the cycle ---------------------------------------------------------------------------

    def run_cycle(self, force_reconcile: bool) -> CycleReport:
        report = CycleReport()
        if self.clock.anchored:
            # Not before the API has answered: on a host clock that runs ahead, pruning would drop
            # ids that the re-poll can still return, and they would go out twice.
            self._prune_recent()
        if self.state.cursor is None and self.state.initial is None:
            self.state.initial = {"since": format_rfc3339(self.options.since), "after_id": None}
        if self.state.initial is not None:
            self._first_run(report)
        if self.state.cursor is not None:
            self._catch_up(report)
        if force_reconcile or self._reconcile_due():
            self._reconcile(report)
        return report

    def replay(self, seconds: float) -> int:
        """Re-emits the last `seconds` of activities once, seen or not (operator's choice at start)."""
        if self.state.cursor is None:
            return 0
        params = [("created_at.gte", format_rfc3339(_utc(self.clock.now() - seconds)))]
        emitted = 0
        for page in self._walk_older(params):
            fresh = self._unique(page)
            self._remember([activity for activity, _ in fresh])
            self._publish(fresh)
            emitted += len(fresh)
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
            fresh, skipped = self._unseen(page)
            if self.state.cursor is None and page.first_id:
                # The newest activity of the first page: catch-up continues from here.
                self.state.cursor = page.first_id
                self.state.cursor_created_at = _created_at(page.activities[0]) if page.activities else None
                self.repoll.passed(self._answered_at, parse_created_at(self.state.cursor_created_at))
            if page.has_more:
                self.state.initial = {"since": initial["since"], "after_id": page.last_id}
            elif self.state.cursor is not None:
                self.state.initial = None
            # else: nothing in the window yet. The start stays where it is: an empty answer (an API
            # glitch, a replica behind) says nothing about what is there, so the next cycle asks again.
            self._publish(fresh)
            report.add_page(len(fresh), skipped)

    def _catch_up(self, report: CycleReport) -> None:
        progress = PageProgress(NEWER)
        while True:
            cursor = self.state.cursor
            page = self._fetch([*self.options.filters, ("before_id", cursor or ""), ("limit", str(PAGE_LIMIT))])
            progress.check(page, cursor)
            fresh, skipped = self._unseen(page)
            if page.first_id:
                self.state.cursor = page.first_id
                newest = _created_at(page.activities[0]) if page.activities else None
                self.state.cursor_created_at = newest or self.state.cursor_created_at
            if not page.has_more:
                self.repoll.passed(self._answered_at, parse_created_at(self.state.cursor_created_at))
            self._publish(fresh)
            report.add_page(len(fresh), skipped)
            if not page.has_more:
                return

    def _reconcile(self, report: CycleReport) -> None:
        now = self.clock.now()
        late = 0
        for start, end in self.repoll.windows(now):
            params = [("created_at.gte", format_rfc3339(_utc(start))), ("created_at.lt", format_rfc3339(_utc(end)))]
            for page in self._walk_older(params):
                fresh, skipped = self._unseen(page)
                self._publish(fresh)
                late += len(fresh)
                report.add_page(len(fresh), skipped)
        self.repoll.completed(now)
        self.state.last_reconcile_at = now
        self._prune_recent()
        self._publish([])
        report.late_found += late
        report.reconciled = True
        if late:
            # Routine: ingestion is asynchronous, so a cursor regularly passes rows indexed a moment later.
            self.log.info("overlap re-poll found activities indexed late; emitted them now", late_found=late)

    def _reconcile_due(self) -> bool:
        last = self.state.last_reconcile_at
        if last is None:
            return True
        now = self.clock.now()
        if last > now + 60:
            self.log.warning("the last re-poll is recorded in the future (the clock was ahead then); re-polling now",
                             last_reconcile_at=last)
            return True
        return now - last >= self.options.reconcile_every

    # -- pages -------------------------------------------------------------------------------

    def _walk_older(self, params: list[tuple[str, str]], start_after: str | None = None) -> Iterator[Page]:
        """Pages of `params` in the default newest-first order, following `last_id`."""
        after = start_after
        progress = PageProgress(OLDER)
        while True:
            query = [*self.options.filters, *params, ("limit", str(PAGE_LIMIT))]
            if after:
                query.append(("after_id", after))
            page = self._fetch(query)
            progress.check(page, after)
            yield page
            if not page.has_more:
                return
            after = page.last_id

    def _fetch(self, params: list[tuple[str, str]]) -> Page:
        page = self.client.list_activities(params, self.options.give_up_after)
        self.clock.observe_api_date(page.date)
        self._answered_at = self.clock.now()
        return page

    def _unseen(self, page: Page) -> tuple[list[tuple[dict[str, Any], str]], int]:
        """The page's activities not emitted before (and each once), remembered as emitted."""
        recent = self.state.recent
        fresh = []
        for activity, line in self._unique(page):
            activity_id = activity.get("id")
            if isinstance(activity_id, str):
                if activity_id in recent:
                    continue
            elif not self._warned_missing_id:
                self._warned_missing_id = True
                self.log.warning("the API returned an activity without an id; it is emitted but cannot be "
                                 "deduplicated")
            fresh.append((activity, line))
        self._remember([activity for activity, _ in fresh])
        return fresh, len(page.activities) - len(fresh)

    def _unique(self, page: Page) -> list[tuple[dict[str, Any], str]]:
        pairs, repeated = page.unique()
        if repeated:
            self.log.warning("the API returned the same activity more than once in one page; each is emitted once",
                             repeated=repeated, request_id=page.request_id)
        return pairs

    def _publish(self, fresh: list[tuple[dict[str, Any], str]]) -> None:
        """Stages the state, writes the page whole, commits the state: see the module's docstring."""
        if self.state_dir.verify_lock():
            self.log.warning("the lock file had been deleted; it is re-created and held again",
                             state_dir=str(self.state_dir.path))
        staged = self._stage()
        try:
            with self.shutdown.critical():
                self.output.write_page([line for _, line in fresh], [activity for activity, _ in fresh])
                staged.commit()
        finally:
            staged.abort()

    def _stage(self) -> StagedWrite:
        waiting_since: float | None = None
        last_said = 0.0
        while True:
            try:
                staged = self.state_dir.stage_feed(self.state)
            except StateWriteError as error:
                if not (error.no_space and self.options.wait_for_disk):
                    raise StateWriteError(f"{error}; nothing was emitted past the last saved position: free "
                                          "space and run again", error.no_space) from None
                now = time.monotonic()
                if waiting_since is None or now - last_said >= DISK_LOG_EVERY_SECONDS:
                    waiting_since = waiting_since or now
                    last_said = now
                    self.log.error(f"{error}; waiting for space: nothing more is emitted until the position can be "
                                   "saved", waited_seconds=round(now - waiting_since))
                self.shutdown.sleep(DISK_RETRY_SECONDS)
                continue
            if waiting_since is not None:
                self.log.info("the state can be saved again; continuing",
                              waited_seconds=round(time.monotonic() - waiting_since))
            return staged

    # -- remembered ids ----------------------------------------------------------------------

    def _remember(self, activities: list[dict[str, Any]]) -> None:
        now = self.clock.now()
        keep_from_second = _utc(self.repoll.oldest_kept(now)).strftime("%Y-%m-%dT%H:%M:%S")
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
            elif self.repoll.keeps(created, now):
                recent[activity_id] = created

    def _prune_recent(self) -> None:
        now = self.clock.now()
        keeps = self.repoll.keeps
        self.state.recent = {key: ts for key, ts in self.state.recent.items() if keeps(ts, now)}


def _created_at(activity: dict[str, Any]) -> str | None:
    value = activity.get("created_at")
    return value if isinstance(value, str) else None


def _is_older_utc_second(text: Any, second: str) -> bool:
    """True if `text` is a `...Z` timestamp in a whole second before `second` (same layout)."""
    return (isinstance(text, str) and len(text) >= 20 and text[-1] == "Z" and text[10] == "T"
            and text[19] in ".Z" and text[:19] < second)


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)
