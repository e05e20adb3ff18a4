"""Each page of a traversal must move forward; an API that loops is stopped, not followed forever.

A broken or hostile API can answer the same page again, hand back the cursor it was given, or
return pages in the wrong order; followed blindly, each of those repeats rows without end. The
checks are cheap (the first and last row of each page, and the previous page's ids):
- a page is newest first (its first row is not older than its last);
- walking older (`after_id`), a page is not newer than the one before; walking newer
  (`before_id`), not older;
- with `has_more`, the cursor to continue from is not the one just used, and the page brings
  at least one id the previous page did not have;
- empty pages with `has_more` do not go on for ever.
"""

from __future__ import annotations

from typing import Any

from collector.api import Page
from collector.errors import ApiFailure
from collector.timeparse import parse_created_at

MAX_EMPTY_PAGES = 50
OLDER, NEWER = "older", "newer"


class PageProgress:
    def __init__(self, direction: str):
        self.direction = direction
        self._previous_ids: set[str] = set()
        self._previous_span: tuple[float | None, float | None] = (None, None)  # (newest, oldest)
        self._empty_in_a_row = 0

    def check(self, page: Page, cursor: str | None) -> None:
        """Raises ApiFailure when `page`, fetched from `cursor`, does not move the traversal forward."""
        newest = _created(page.activities[0]) if page.activities else None
        oldest = _created(page.activities[-1]) if page.activities else None
        if newest is not None and oldest is not None and newest < oldest:
            self._fail("a page is not in newest-first order", page)
        before_newest, before_oldest = self._previous_span
        if self.direction == OLDER and newest is not None and before_oldest is not None and newest > before_oldest:
            self._fail("walking toward older activities, a page came back newer than the one before", page)
        if self.direction == NEWER and oldest is not None and before_newest is not None and oldest < before_newest:
            self._fail("walking toward newer activities, a page came back older than the one before", page)
        ids = {activity_id for activity in page.activities if isinstance(activity_id := activity.get("id"), str)}
        if page.has_more:
            following = page.last_id if self.direction == OLDER else page.first_id
            if cursor is not None and following == cursor:
                self._fail("has_more with the same cursor as the request", page)
            if ids and ids <= self._previous_ids:
                self._fail("has_more with a page that brings no new activity", page)
            self._empty_in_a_row = 0 if page.activities else self._empty_in_a_row + 1
            if self._empty_in_a_row >= MAX_EMPTY_PAGES:
                self._fail(f"has_more with {MAX_EMPTY_PAGES} empty pages in a row", page)
        self._previous_ids = ids
        if page.activities:
            self._previous_span = (newest, oldest)

    @staticmethod
    def _fail(why: str, page: Page) -> None:
        raise ApiFailure(f"the API keeps answering without moving forward ({why}); stopping here, the saved "
                         "position is kept and nothing of that page was emitted", request_id=page.request_id)


def _created(activity: Any) -> float | None:
    return parse_created_at(activity.get("created_at")) if isinstance(activity, dict) else None
