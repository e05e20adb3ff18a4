"""HTTP calls to `GET /v1/compliance/activities`: errors classified, retries, the request budget.

Match on status and `error.type`, not on message wording (the docs say wording changes); the
one exception is the 400 "not enabled", which has no type of its own.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from collector import __version__
from collector.budget import RequestBudget
from collector.errors import ApiFailure, BadRequestError, RefusedError
from collector.log import JsonLog
from collector.pagejson import read_page

ACTIVITIES_PATH = "/v1/compliance/activities"
PAGE_LIMIT = 5000
BACKOFF_START = 1.0
BACKOFF_MAX = 60.0

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


class TransientError(Exception):
    """Worth retrying: 429, 5xx, timeouts, dropped connections, a garbled page."""

    def __init__(self, message: str, retry_after: float | None = None, request_id: str | None = None):
        super().__init__(message)
        self.retry_after = retry_after
        self.request_id = request_id


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
    ):
        self._key_source = key_source
        self._budget = budget
        self._log = log
        self._sleep = sleep
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
        self.requests_sent = 0
        self.last_request_id: str | None = None

    def close(self) -> None:
        self._http.close()

    def list_activities(self, params: list[tuple[str, str]], give_up_after: float | None) -> Page:
        """One page, retried through transient failures until `give_up_after` seconds have passed."""
        started = time.monotonic()
        backoff = BACKOFF_START
        while True:
            wait = self._budget.delay_before_next()
            if wait > 0:
                self._sleep(wait)
            try:
                return self._request_once(params)
            except TransientError as failure:
                delay = failure.retry_after if failure.retry_after is not None else backoff
                backoff = min(BACKOFF_MAX, backoff * 2)
                elapsed = time.monotonic() - started
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

    def _request_once(self, params: list[tuple[str, str]]) -> Page:
        self._budget.record_request()
        self.requests_sent += 1
        try:
            response = self._http.get(ACTIVITIES_PATH, params=params, headers={"x-api-key": self._key_source()})
        except httpx.TimeoutException as exc:
            raise TransientError(f"timed out ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            raise TransientError(f"connection failed ({type(exc).__name__}: {exc})") from None
        request_id = response.headers.get("request-id")
        self.last_request_id = request_id
        slowdown = self._budget.observe_headers(response.headers)
        if slowdown >= 1:
            self._log.info("the organization's request budget runs low; slowing down",
                           remaining=response.headers.get("anthropic-ratelimit-requests-remaining"),
                           seconds_between_requests=round(slowdown, 1))
        if response.status_code == 200:
            return _parse_page(response.content, request_id)
        raise _classify_failure(response, request_id)


def _classify_failure(response: httpx.Response, request_id: str | None) -> Exception:
    status = response.status_code
    error_type, message = _error_fields(response)
    detail = f"HTTP {status} {error_type or ''}: {message}".replace("  ", " ")
    if status == 429:
        return TransientError(detail, _retry_after(response), request_id)
    if status == 400 and "not enabled" in message.lower():
        return RefusedError("not_enabled", f"{REFUSAL_ADVICE['not_enabled']} ({detail})", request_id)
    if status == 400:
        return BadRequestError(f"the API rejected the request: {detail}", request_id)
    refusal = {401: "auth", 403: "permission", 404: "not_found"}.get(status)
    if refusal:
        return RefusedError(refusal, f"{REFUSAL_ADVICE[refusal]} ({detail})", request_id)
    if status >= 500 and response.headers.get("x-should-retry", "").lower() == "false":
        return ApiFailure(f"the API reports a deterministic failure, not retried: {detail}", request_id)
    if status >= 500 or status == 408:
        return TransientError(detail, None, request_id)
    return ApiFailure(f"unexpected answer from the API: {detail}", request_id)


def _error_fields(response: httpx.Response) -> tuple[str | None, str]:
    try:
        body = response.json()
    except ValueError:
        return None, _snippet(response.text)
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None, _snippet(response.text)
    return (
        str(error.get("type")) if error.get("type") is not None else None,
        str(error.get("message", "")),
    )


def _snippet(text: str) -> str:
    text = " ".join(text.split())
    return text[:200] + ("..." if len(text) > 200 else "")


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return None
    return min(seconds, 3600.0)


def _parse_page(content: bytes, request_id: str | None) -> Page:
    try:
        body, lines = read_page(content.decode("utf-8"))
    except ValueError:  # NotAPage, or bytes that are not UTF-8
        text = _snippet(content[:300].decode("utf-8", "replace"))
        raise TransientError(f"the API returned a page that is not JSON: {text}", request_id=request_id) from None
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise TransientError("the API returned a page without a `data` list", request_id=request_id)
    activities = body["data"]
    if not all(isinstance(item, dict) for item in activities):
        raise TransientError("the API returned a page whose `data` holds non-objects", request_id=request_id)
    has_more = body.get("has_more", False)
    first_id, last_id = body.get("first_id"), body.get("last_id")
    if not isinstance(has_more, bool) or not all(c is None or isinstance(c, str) for c in (first_id, last_id)):
        raise TransientError("the API returned a page with malformed has_more/first_id/last_id",
                             request_id=request_id)
    if has_more and not (first_id and last_id):
        raise TransientError("the API says has_more but gives no cursor to continue from", request_id=request_id)
    return Page(activities, lines, has_more, first_id, last_id, request_id)
