"""HTTP calls to `GET /v1/compliance/activities`: errors classified, retries, the request budget.

Match on status and `error.type`, not on message wording (the docs say wording changes); the
one exception is the 400 "not enabled", which has no type of its own.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from collector import __version__
from collector.budget import RequestBudget
from collector.deadline import Deadline, DeadlineExceeded
from collector.errors import ApiFailure, BadRequestError, RefusedError
from collector.log import JsonLog
from collector.pagejson import constants_seen, make_strict, read_page

ACTIVITIES_PATH = "/v1/compliance/activities"
PAGE_LIMIT = 5000
BACKOFF_START = 1.0
BACKOFF_MAX = 60.0
# --once and backfill: when the very first request of a run cannot connect at all (refused, no such
# host), the URL is most likely wrong or nothing serves it: give up after this many attempts
# (about 3 s) instead of --max-retry-time. Timeouts and 5xx still retry for --max-retry-time.
UNREACHABLE_ATTEMPTS = 3
# A page is parsed in memory (about 8 times its size at the peak): answers larger than this are
# cut off and asked for again in smaller pages. At least one activity of --max-line-bytes must fit.
MIN_RESPONSE_CAP = 32 << 20
ERROR_BODY_CAP = 64 << 10
API_URL_HINT = "CCL_API_URL"

REFUSAL_ADVICE = {
    "auth": "the key is invalid, deactivated or expired: create a new key and restart the collector",
    "permission": (
        "the key lacks the scope read:compliance_activities (or read:org_audit); an Admin key also gets "
        "403 when it was created before the Compliance API was enabled: create a new key"
    ),
    "not_found": (
        "the API answered 404 Not found, which is what it says to a request with no key or a key of the "
        "wrong type (a Claude API key sk-ant-api03- does not work): use a Compliance Access Key "
        "(sk-ant-api01-) or an Admin key (sk-ant-admin01-), and check --api-url"
    ),
    "not_enabled": (
        "the Compliance API is not enabled for this organization, and nothing is recorded while it is "
        "off: the primary owner enables it in claude.ai > Organization settings > API (Console orgs: "
        "Settings > Security)"
    ),
}


@dataclass
class Page:
    activities: list[dict[str, Any]]
    lines: list[str]  # each activity as the API wrote it, one line of JSON, aligned with `activities`
    has_more: bool
    first_id: str | None
    last_id: str | None
    request_id: str | None
    date: str | None = None  # the answer's Date header: the API's clock (collector/clock.py)

    def unique(self) -> tuple[list[tuple[dict[str, Any], str]], int]:
        """(activity, line) pairs with an id repeated inside the page kept once, and how many went."""
        pairs = list(zip(self.activities, self.lines, strict=True))
        ids = [activity_id if isinstance(activity_id := activity.get("id"), str) else None
               for activity in self.activities]
        named = [activity_id for activity_id in ids if activity_id is not None]
        if len(set(named)) == len(named):
            return pairs, 0
        seen: set[str] = set()
        unique = []
        for pair, activity_id in zip(pairs, ids, strict=True):
            if activity_id is not None:
                if activity_id in seen:
                    continue
                seen.add(activity_id)
            unique.append(pair)
        return unique, len(pairs) - len(unique)


class TransientError(Exception):
    """Worth retrying: 429, 5xx, timeouts, dropped connections, a garbled page.

    `unreachable`: no connection could be made at all (refused, unknown host, no route), as
    opposed to a timeout or a connection that broke.
    """

    def __init__(self, message: str, retry_after: float | None = None, request_id: str | None = None,
                 unreachable: bool = False):
        super().__init__(message)
        self.retry_after = retry_after
        self.request_id = request_id
        self.unreachable = unreachable


class ResponseTooLarge(Exception):
    """The answer grew past the cap before it ended."""


class ComplianceClient:
    def __init__(
        self,
        api_url: str,
        key_source: Callable[[], str],
        budget: RequestBudget,
        log: JsonLog,
        sleep: Callable[[float], None] = time.sleep,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
        max_response_bytes: int = MIN_RESPONSE_CAP,
    ):
        self._key_source = key_source
        self._budget = budget
        self._log = log
        self._sleep = sleep
        self._timeout = timeout
        self.max_response_bytes = max_response_bytes
        self._page_limit = PAGE_LIMIT  # lowered for the rest of the run when a page is too large
        self._http = httpx.Client(
            base_url=api_url.rstrip("/"),
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            headers={
                "anthropic-version": "2023-06-01",
                "user-agent": f"claude-compliance-logs/{__version__}",
                "accept": "application/json",
            },
            transport=transport,
        )
        self.url = f"{api_url.rstrip('/')}{ACTIVITIES_PATH}"
        self.requests_sent = 0
        self.answers_received = 0
        self.last_request_id: str | None = None

    def close(self) -> None:
        self._http.close()

    def list_activities(self, params: list[tuple[str, str]], give_up_after: float | None) -> Page:
        """One page, retried through transient failures until `give_up_after` seconds have passed."""
        started = time.monotonic()
        backoff = BACKOFF_START
        attempts = 0
        while True:
            wait = self._budget.delay_before_next()
            if wait > 0:
                self._sleep(wait)
            query = _with_limit(params, self._page_limit)
            attempts += 1
            try:
                return self._request_once(query)
            except ResponseTooLarge:
                self._shrink_pages(query)
                continue
            except TransientError as failure:
                delay = failure.retry_after if failure.retry_after is not None else backoff
                backoff = min(BACKOFF_MAX, backoff * 2)
                elapsed = time.monotonic() - started
                never_reached = failure.unreachable and self.answers_received == 0
                if give_up_after is not None and never_reached and attempts >= UNREACHABLE_ATTEMPTS:
                    raise ApiFailure(f"{failure}; is --api-url (or {API_URL_HINT}) right, and is the API reachable "
                                     "from this host?") from None
                if give_up_after is not None and elapsed + delay > give_up_after:
                    raise ApiFailure(
                        f"gave up after {elapsed:.0f}s of retries: {failure}", failure.request_id
                    ) from None
                self._log.warning(
                    "request failed, will retry", error=str(failure), retry_in_seconds=round(delay, 2),
                    request_id=failure.request_id,
                )
                if failure.retry_after is not None:
                    self._budget.hold_off(delay)
                else:
                    self._sleep(delay)

    def _shrink_pages(self, query: list[tuple[str, str]]) -> None:
        limit = _limit_of(query)
        if limit is None or limit <= 1:
            raise ApiFailure(f"the API's answer is larger than {self.max_response_bytes:,} bytes even for a single "
                             "activity; raise --max-line-bytes if activities that large are expected")
        self._page_limit = max(1, limit // 2)
        self._log.warning("the API's answer is larger than the collector reads at once; asking for smaller pages",
                          max_response_bytes=self.max_response_bytes, limit=self._page_limit)

    def _request_once(self, params: list[tuple[str, str]]) -> Page:
        self._budget.record_request()
        self.requests_sent += 1
        try:
            # httpx's timeout applies to each read, which a server dripping a byte at a time never
            # trips: the deadline bounds the whole exchange.
            with Deadline(self._timeout):
                status, headers, content = self._get(params)
        except (httpx.TimeoutException, DeadlineExceeded) as exc:
            raise TransientError(f"{self.url}: timed out, no complete answer within {self._timeout:g}s "
                                 f"({type(exc).__name__})") from None
        except httpx.ConnectError as exc:
            raise TransientError(f"cannot connect to {self.url} ({_reason(exc)})", unreachable=True) from None
        except httpx.TransportError as exc:
            raise TransientError(f"{self.url}: the connection failed ({_reason(exc)})") from None
        self.answers_received += 1
        request_id = headers.get("request-id")
        self.last_request_id = request_id
        slowdown = self._budget.observe_headers(headers)
        if slowdown >= 1:
            self._log.info("the organization's request budget runs low; slowing down",
                           remaining=headers.get("anthropic-ratelimit-requests-remaining"),
                           seconds_between_requests=round(slowdown, 1))
        if status == 200:
            page = _parse_page(content, request_id, self._log)
            page.date = headers.get("date")
            return page
        raise _classify_failure(status, headers, content, request_id)

    def _get(self, params: list[tuple[str, str]]) -> tuple[int, httpx.Headers, bytearray]:
        headers = {"x-api-key": self._key_source()}
        with self._http.stream("GET", ACTIVITIES_PATH, params=params, headers=headers) as response:
            cap = self.max_response_bytes if response.status_code == 200 else ERROR_BODY_CAP
            body = bytearray()
            for chunk in response.iter_bytes():  # decompressed: the cap holds against a gzip bomb too
                body += chunk
                if len(body) > cap:
                    if response.status_code != 200:
                        break  # an error body is only read for its message
                    raise ResponseTooLarge()
            return response.status_code, response.headers, body  # bytearray: no copy of a large page


def _reason(exc: Exception) -> str:
    """What went wrong with a connection, in words: `ConnectError: [Errno 111] Connection refused`."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _limit_of(params: list[tuple[str, str]]) -> int | None:
    for name, value in params:
        if name == "limit" and value.isdigit():
            return int(value)
    return None


def _with_limit(params: list[tuple[str, str]], most: int) -> list[tuple[str, str]]:
    limit = _limit_of(params)
    if limit is None or limit <= most:
        return params
    return [(name, str(most) if name == "limit" else value) for name, value in params]


def _classify_failure(status: int, headers: httpx.Headers, content: bytes, request_id: str | None) -> Exception:
    error_type, message = _error_fields(content)
    detail = f"HTTP {status} {error_type or ''}: {message}".replace("  ", " ")
    if status == 429:
        return TransientError(detail, _retry_after(headers), request_id)
    if status == 400 and "not enabled" in message.lower():
        return RefusedError("not_enabled", f"{REFUSAL_ADVICE['not_enabled']} ({detail})", request_id)
    if status == 400:
        return BadRequestError(f"the API rejected the request: {detail}", request_id)
    refusal = {401: "auth", 403: "permission", 404: "not_found"}.get(status)
    if refusal:
        return RefusedError(refusal, f"{REFUSAL_ADVICE[refusal]} ({detail})", request_id)
    if status >= 500 and headers.get("x-should-retry", "").lower() == "false":
        return ApiFailure(f"the API reports a deterministic failure, not retried: {detail}", request_id)
    if status >= 500 or status == 408:
        return TransientError(detail, None, request_id)
    return ApiFailure(f"unexpected answer from the API: {detail}", request_id)


def _error_fields(content: bytes) -> tuple[str | None, str]:
    text = content.decode("utf-8", "replace")
    try:
        body = json.loads(text)
    except (ValueError, RecursionError):
        return None, _snippet(text)
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None, _snippet(text)
    return (
        _snippet(str(error.get("type"))) if error.get("type") is not None else None,
        _snippet(str(error.get("message", ""))),
    )


def _snippet(text: str) -> str:
    text = " ".join(text.split())
    return text[:200] + ("..." if len(text) > 200 else "")


def _retry_after(headers: httpx.Headers) -> float | None:
    value = headers.get("retry-after")
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return None
    return min(seconds, 3600.0)


def _parse_page(content: bytes, request_id: str | None, log: JsonLog | None = None) -> Page:
    try:
        text = content.decode("utf-8")
        bad_bytes = False
    except UnicodeDecodeError:
        # One bad byte must not make the page unreadable for ever: keep it as a lone surrogate for
        # now, and make_strict turns it into U+FFFD in the one activity that holds it.
        text = content.decode("utf-8", "surrogateescape")
        bad_bytes = True
    constants_before = constants_seen()
    try:
        body, lines = read_page(text)
    except ValueError:  # NotAPage
        snippet = _snippet(content[:300].decode("utf-8", "replace"))
        raise TransientError(f"the API returned a page that is not JSON: {snippet}", request_id=request_id) from None
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise TransientError("the API returned a page without a `data` list", request_id=request_id)
    activities = body["data"]
    if not all(isinstance(item, dict) for item in activities):
        raise TransientError("the API returned a page whose `data` holds non-objects", request_id=request_id)
    has_more = body.get("has_more", False)
    first_id, last_id = body.get("first_id"), body.get("last_id")
    cursors_ok = all(c is None or (isinstance(c, str) and c.isprintable()) for c in (first_id, last_id))
    if not isinstance(has_more, bool) or not cursors_ok:
        raise TransientError("the API returned a page with malformed has_more/first_id/last_id",
                             request_id=request_id)
    if has_more and not (first_id and last_id):
        raise TransientError("the API says has_more but gives no cursor to continue from", request_id=request_id)
    for index, what in make_strict(activities, lines, bad_bytes, constants_seen() != constants_before):
        if log is not None:
            log.warning("an activity held what strict JSON readers refuse; it is emitted with that part replaced",
                        activity_id=str(activities[index].get("id")), replaced=what, request_id=request_id)
    return Page(activities, lines, has_more, first_id, last_id, request_id)
