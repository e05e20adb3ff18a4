"""The Compliance API contract as the simulator answers it: parameters, errors, rate limit, pages.

Kept apart from the HTTP server so that it can be tested as a function of (request, time).
Wording of errors follows the reference (compliance-errors, newest version).
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from ccl.content.catalog import activity_types
from ccl.simulator.faults import FaultPlan
from ccl.simulator.hostile import PAGE_FAULTS, echo_key_body, page_answer, render
from ccl.simulator.population import random_token
from ccl.simulator.store import ActivityStore, Query, decode_cursor

PATH = "/v1/compliance/activities"
MAX_LIMIT = 5000
LIST_PARAMS = {"activity_types[]", "exclude_activity_types[]", "actor_ids[]", "user_ids[]", "organization_ids[]"}
TIME_PARAMS = {"created_at.gte", "created_at.gt", "created_at.lte", "created_at.lt"}
SCALAR_PARAMS = {"after_id", "before_id", "limit", "order"} | TIME_PARAMS
RATE_LIMIT_MESSAGE = (
    "Compliance API rate limit of {limit} requests per minute per parent organization has been exceeded. Retry "
    "after the time indicated by the retry-after header. Quote the request-id response header when contacting "
    "Anthropic support."
)
COMPLIANCE_PREFIXES = ("sk-ant-api01-", "sk-ant-admin01-")
# Faults after which no compliance_api_accessed is recorded: the request never reached the
# organization's feed, or the feed is off.
UNRECORDED_FAULTS = {"401", "404", "429", "429-no-retry-after", "not-enabled", "drop", "timeout"}


@dataclass
class Answer:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    action: str | None = None  # "drop", "timeout", "drip", "huge": the server misbehaves instead of answering
    rows: list[Any] = field(default_factory=list)  # what a "huge" answer is made of


class ApiError(Exception):
    def __init__(self, status: int, error_type: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.error_type, self.message = status, error_type, message
        self.headers = headers or {}


class ComplianceApi:
    def __init__(self, store: ActivityStore, faults: FaultPlan, rate_limit: int = 600,
                 on_answered: Any = None, rng: random.Random | None = None, rate_window: float = 60.0):
        self.store = store
        self.faults = faults
        self.rate_limit = rate_limit
        self.rate_window = rate_window
        self.on_answered = on_answered  # callback(key, client, request, status, request_id, now)
        self._rng = rng or random.Random(0)
        self._window: deque[float] = deque()
        self.statuses: Counter[int] = Counter()
        self._lock = threading.Lock()
        self.requests_seen = 0
        # Keys deactivated in the Console (the last step of a rotation, compliance-api.md: "create
        # the new key, switch to it, verify, then delete the old one"); and the fingerprint of the
        # key of every request that authenticated, in order, so that a test can tell which key the
        # collector sent when (the last 10,000).
        self.deactivated_keys: set[str] = set()
        self.keys_used: deque[str | None] = deque(maxlen=10_000)

    def answer(self, method: str, target: str, headers: dict[str, str], client: str, now: float) -> Answer:
        answer = self._answer(method, target, headers, client, now)
        self.statuses[answer.status] += 1
        return answer

    def _answer(self, method: str, target: str, headers: dict[str, str], client: str, now: float) -> Answer:
        request_id = "req_01" + random_token(self._rng, 22)
        path, _, query_string = target.partition("?")
        extra: dict[str, str] = {"request-id": request_id}
        try:
            key = self._authenticate(headers)
            if path.rstrip("/") != PATH:
                raise ApiError(404, "not_found_error", "Not found")
            if method != "GET":
                raise ApiError(405, "invalid_request_error", f"Method {method} not allowed")
            with self._lock:
                self.requests_seen += 1
                number = self.requests_seen
                extra.update(self._spend_budget(now))
            fault = self.faults.pick(number)
            if fault == "echo-key":
                return Answer(401, echo_key_body(key, request_id), {**extra, "content-type": "application/json"})
            if fault and fault not in PAGE_FAULTS and fault not in ("drip", "huge"):
                answer = self._fault(fault, extra)
                if fault not in UNRECORDED_FAULTS:
                    self._answered(key, headers, client, target, answer.status, request_id, now)
                return answer
            query = parse_query(query_string)
            page = self.store.query(query, now)
        except ApiError as error:
            extra.update(error.headers)
            answer = error_answer(error.status, error.error_type, error.message, request_id, extra)
            if error.status not in (401, 404, 429):
                # Requests that fail authentication or the limiter never reach an organization's feed.
                self._answered(headers.get("x-api-key"), headers, client, target, error.status, request_id, now)
            return answer
        body = page_answer(fault, page, query) if fault in PAGE_FAULTS else render(page.rows, page.has_more)
        self._answered(key, headers, client, target, 200, request_id, now)
        action = fault if fault in ("drip", "huge") else None
        return Answer(200, body, {**extra, "content-type": "application/json"}, action, page.rows)

    def _authenticate(self, headers: dict[str, str]) -> str:
        key = headers.get("x-api-key") or _bearer(headers.get("authorization"))
        if not key or not key.startswith(COMPLIANCE_PREFIXES):
            # Newest docs: no key, or a key of the wrong type, gets a bare 404.
            raise ApiError(404, "not_found_error", "Not found")
        if len(key) < 24:
            raise ApiError(401, "authentication_error", "API key is invalid.")
        if key in self.deactivated_keys:
            raise ApiError(401, "authentication_error", "API key has been deactivated.")  # the reference's wording
        self.keys_used.append(key_fingerprint(key))
        return key

    def _spend_budget(self, now: float) -> dict[str, str]:
        window = self._window
        while window and window[0] <= now - self.rate_window:
            window.popleft()
        reset = window[0] + self.rate_window if window else now + self.rate_window
        if len(window) >= self.rate_limit:
            retry_after = max(1, int(reset - now + 0.999))
            raise ApiError(429, "rate_limit_error", RATE_LIMIT_MESSAGE.format(limit=self.rate_limit), {
                "retry-after": str(retry_after), **_limit_headers(self.rate_limit, 0, reset)})
        window.append(now)
        return _limit_headers(self.rate_limit, self.rate_limit - len(window), reset)

    def _fault(self, kind: str, extra: dict[str, str]) -> Answer:
        request_id = extra["request-id"]
        if kind in ("drop", "timeout"):
            return Answer(0, action=kind)
        if kind == "garbage":
            return Answer(200, b"<html><body>502 Bad Gateway</body></html>", {**extra, "content-type": "text/html"})
        if kind.startswith("429"):
            headers = dict(extra)
            if kind == "429":
                headers["retry-after"] = "1"
            return error_answer(429, "rate_limit_error", RATE_LIMIT_MESSAGE.format(limit=self.rate_limit),
                                request_id, headers)
        if kind == "500-final":
            return error_answer(500, "api_error", "Internal server error", request_id,
                                {**extra, "x-should-retry": "false"})
        simple = {
            "500": (500, "api_error", "Internal server error"),
            "502": (502, "api_error", "Bad gateway"),
            "503": (503, "api_error", "Service unavailable"),
            "504": (504, "api_error", "Gateway timeout"),
            "529": (529, "overloaded_error", "Overloaded"),
            "401": (401, "authentication_error", "API key has been deactivated."),
            "403": (403, "permission_error", "Missing required scopes. Got: ['api:admin'] Needed one of: "
                    "['read:compliance_activities', 'read:org_audit']"),
            "404": (404, "not_found_error", "Not found"),
            "not-enabled": (400, "invalid_request_error", "Compliance API is not enabled for this organization"),
        }
        status, error_type, message = simple[kind]
        return error_answer(status, error_type, message, request_id, extra)

    def _answered(self, key: str | None, headers: dict[str, str], client: str, target: str, status: int,
                  request_id: str, now: float) -> None:
        if self.on_answered is not None:
            self.on_answered(key_fingerprint(key), headers.get("user-agent"), client, target, status,
                             request_id, now)


def key_fingerprint(key: str | None) -> str | None:
    """A stable id for a key that reveals nothing of it (the real API shows `api_key_id`)."""
    if not key:
        return None
    return "apikey_01" + hashlib.sha256(key.encode()).hexdigest()[:22]


def parse_query(query_string: str) -> Query:
    query = Query()
    seen_scalars: set[str] = set()
    lists: dict[str, list[str]] = {}
    pairs = parse_qsl(query_string, keep_blank_values=True)
    if {"after_id", "before_id"} <= {name for name, _ in pairs}:
        raise bad_request("Only one of after_id and before_id may be provided.")
    for name, value in pairs:
        if name in LIST_PARAMS:
            lists.setdefault(name, []).append(value)
            continue
        if name not in SCALAR_PARAMS:
            hint = ""
            if name.startswith("created_at[") and name.endswith("]"):
                hint = f" Did you mean 'created_at.{name[11:-1]}'?"
            elif name.rstrip("[]") + "[]" in LIST_PARAMS:
                hint = f" Did you mean '{name.rstrip('[]')}[]'?"
            raise bad_request(f"Unknown query parameter: '{name}'.{hint}")
        if name in seen_scalars:
            raise bad_request(f"{name}: may be given only once")
        seen_scalars.add(name)
        _apply_scalar(query, name, value)
    if "activity_types[]" in lists and "exclude_activity_types[]" in lists:
        raise bad_request("activity_types[] and exclude_activity_types[] cannot be used together.")
    catalog = activity_types()
    for name in ("activity_types[]", "exclude_activity_types[]"):
        for index, value in enumerate(lists.get(name, [])):
            if value not in catalog:
                raise bad_request(f"{name}.{index}: Input is not one of the permitted values.")
    if "activity_types[]" in lists:
        query.types = set(lists["activity_types[]"])
    query.excluded_types = set(lists.get("exclude_activity_types[]", []))
    if "organization_ids[]" in lists:
        query.org_ids = set(lists["organization_ids[]"])
    actors = lists.get("actor_ids[]", []) + lists.get("user_ids[]", [])
    if actors:
        for index, value in enumerate(actors):
            if not value.startswith("user_"):
                raise bad_request(f"actor_ids[].{index}: only user_ ids are accepted")
        query.actor_ids = set(actors)
    return query


def _apply_scalar(query: Query, name: str, value: str) -> None:
    if name == "limit":
        try:
            limit = int(value)
        except ValueError:
            raise bad_request("limit: Input should be a valid integer, unable to parse string as an integer") from None
        if limit > MAX_LIMIT:
            raise bad_request(f"limit: Input should be less than or equal to {MAX_LIMIT}")
        if limit < 1:
            raise bad_request("limit: Input should be greater than or equal to 1")
        query.limit = limit
    elif name == "order":
        if value not in ("asc", "desc"):
            raise bad_request("order: Input should be 'asc' or 'desc'")
        query.order = value
    elif name in ("after_id", "before_id"):
        key = decode_cursor(value)
        if key is None:
            raise bad_request(f"Invalid activity_id format: '{value}'")
        setattr(query, name.removesuffix("_id"), key)
    else:
        bound = _parse_bound(name, value)
        if name == "created_at.gte":
            query.lower_us = _max(query.lower_us, bound)
        elif name == "created_at.gt":
            query.lower_us = _max(query.lower_us, bound + 1)
        elif name == "created_at.lt":
            query.upper_us = _min(query.upper_us, bound)
        else:
            query.upper_us = _min(query.upper_us, bound + 1)


def _parse_bound(name: str, value: str) -> int:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise bad_request(f"{name}: Input should be a valid datetime or date, invalid character in year") from None
    if moment.tzinfo is None or len(value) < 11:
        raise bad_request(
            f"The `{name}` parameter contains an invalid timestamp format. Timestamps must be provided in RFC 3339 "
            f'format e.g., "2024-03-01T00:00:00Z". Got "{value}".'
        )
    moment = moment.astimezone(UTC)
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


def _max(a: int | None, b: int) -> int:
    return b if a is None else max(a, b)


def _min(a: int | None, b: int) -> int:
    return b if a is None else min(a, b)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "invalid_request_error", message)


def error_answer(status: int, error_type: str, message: str, request_id: str, headers: dict[str, str]) -> Answer:
    body = json.dumps({"type": "error", "error": {"type": error_type, "message": message},
                       "request_id": request_id}).encode()
    return Answer(status, body, {**headers, "content-type": "application/json"})


def _bearer(value: str | None) -> str | None:
    if value and value.lower().startswith("bearer "):
        return value[7:].strip()
    return None


def _limit_headers(limit: int, remaining: int, reset: float) -> dict[str, str]:
    return {
        "anthropic-ratelimit-requests-limit": str(limit),
        "anthropic-ratelimit-requests-remaining": str(max(0, remaining)),
        "anthropic-ratelimit-requests-reset": datetime.fromtimestamp(reset, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
