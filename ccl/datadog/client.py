"""A small Datadog API client: keys from the environment, site mapping, retries, clear errors.

Keys never appear in errors or output: messages name the endpoint and Datadog's own message only.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from typing import Any

import httpx

SITES = {
    "datadoghq.com": "https://api.datadoghq.com",
    "us3.datadoghq.com": "https://api.us3.datadoghq.com",
    "us5.datadoghq.com": "https://api.us5.datadoghq.com",
    "datadoghq.eu": "https://api.datadoghq.eu",
    "ap1.datadoghq.com": "https://api.ap1.datadoghq.com",
    "ap2.datadoghq.com": "https://api.ap2.datadoghq.com",
    "ddog-gov.com": "https://api.ddog-gov.com",
}
# What a 403 on each API family most likely lacks (docs.datadoghq.com/account_management/rbac/permissions).
PERMISSIONS = [
    ("/api/v2/security_monitoring/rules", "GET", "security_monitoring_rules_read"),
    ("/api/v2/security_monitoring/rules", "", "security_monitoring_rules_write"),
    ("/api/v1/logs/config/pipeline", "GET", "logs_read_config"),
    ("/api/v1/logs/config/pipeline", "", "logs_write_pipelines"),
    ("/api/v1/dashboard", "GET", "dashboards_read"),
    ("/api/v1/dashboard", "", "dashboards_write"),
    ("/api/v1/monitor", "GET", "monitors_read"),
    ("/api/v1/monitor", "", "monitors_write"),
]
RETRYABLE = {429, 500, 502, 503, 504}


class DatadogError(Exception):
    """A call failed for good; `status` is the HTTP status (0 for a network failure)."""

    def __init__(self, message: str, status: int = 0, body: Any = None):
        super().__init__(message)
        self.status = status
        self.body = body


class ConfigError(Exception):
    """Missing keys or an unknown site: nothing was sent."""


def api_url(site: str | None) -> str:
    override = os.environ.get("DD_API_URL")
    if override:
        return _usable_url(override.rstrip("/"))
    chosen = site or os.environ.get("DD_SITE") or "datadoghq.com"
    if chosen not in SITES:
        raise ConfigError(f"unknown Datadog site {chosen!r}; one of: {', '.join(SITES)}")
    return SITES[chosen]


def _usable_url(text: str) -> str:
    """DD_API_URL if httpx can use it; a ConfigError that says why otherwise (never a traceback)."""
    advice = "set DD_API_URL to an API root such as https://api.datadoghq.eu, or unset it and use DD_SITE"
    if any(ord(char) < 32 or ord(char) == 127 for char in text):
        raise ConfigError(f"DD_API_URL holds a control character; {advice}")
    try:
        url = httpx.URL(text)
    except (httpx.InvalidURL, ValueError) as error:
        raise ConfigError(f"DD_API_URL is not a URL ({error}); {advice}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigError(f"DD_API_URL must start with https:// (or http://) and name a host; {advice}")
    return text


def keys_from_environment() -> tuple[str, str]:
    api_key = os.environ.get("DD_API_KEY", "").strip()
    app_key = (os.environ.get("DD_APP_KEY") or os.environ.get("DD_APPLICATION_KEY") or "").strip()
    missing = [name for name, value in (("DD_API_KEY", api_key), ("DD_APP_KEY", app_key)) if not value]
    if missing:
        raise ConfigError(f"set {' and '.join(missing)} in the environment (never as an argument); "
                          "the application key needs the permissions listed in the README")
    return api_key, app_key


def missing_permission(method: str, path: str) -> str:
    for prefix, verb, permission in PERMISSIONS:
        if path.startswith(prefix) and (verb == "" or verb == method):
            return permission
    return "the permission for this endpoint"


class DatadogClient:
    """One run's connection to Datadog. Retries are bounded twice: each request gives up after
    `max_retry_seconds` of failing, and the whole run after `retry_budget_seconds` spent waiting
    to retry, so a Datadog that fails everything ends a deploy in minutes, not hours."""

    def __init__(self, base_url: str, api_key: str, app_key: str, *, max_retry_seconds: float = 120.0,
                 retry_budget_seconds: float = 300.0, sleep: Callable[[float], None] | None = None,
                 on_retry: Callable[[str], None] | None = None):
        self.base_url = base_url
        self._http = httpx.Client(base_url=base_url, timeout=60.0, headers={
            "DD-API-KEY": api_key, "DD-APPLICATION-KEY": app_key, "Accept": "application/json",
            "User-Agent": "claude-compliance-logs/ccl"})
        self._secrets = [api_key, app_key]
        self.max_retry_seconds = max_retry_seconds
        self.retry_budget_seconds = retry_budget_seconds
        self.retry_seconds_spent = 0.0
        self.sleep = sleep or time.sleep
        self.on_retry = on_retry or (lambda message: None)
        self.calls = 0

    def close(self) -> None:
        self._http.close()

    def request(self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None) -> Any:
        started, attempt = time.monotonic(), 0
        while True:
            attempt += 1
            self.calls += 1
            try:
                response = self._http.request(method, path, json=body, params=params)
            except httpx.HTTPError as error:
                delay = float(min(2 ** attempt, 30))
                if not self._may_wait(started, delay):
                    raise DatadogError(f"{method} {path}: cannot reach Datadog ({type(error).__name__})"
                                       f"{self._gave_up(started, delay)}") from None
                self._wait(delay, f"{method} {path}: {type(error).__name__}, retrying")
                continue
            if response.status_code in RETRYABLE:
                delay = _retry_delay(response, attempt)
                if self._may_wait(started, delay):
                    self._wait(delay, f"{method} {path}: HTTP {response.status_code}, retrying in {delay:.0f} s")
                    continue
                return self._result(method, path, response, self._gave_up(started, delay))
            return self._result(method, path, response)

    def _may_wait(self, started: float, delay: float) -> bool:
        """Whether a retry after `delay` stays within this request's and this run's bounds."""
        return (time.monotonic() - started + delay <= self.max_retry_seconds
                and self.retry_seconds_spent + delay <= self.retry_budget_seconds)

    def _gave_up(self, started: float, delay: float) -> str:
        if self.retry_seconds_spent + delay > self.retry_budget_seconds:
            return f"; still failing after {self.retry_seconds_spent:.0f} s of retries in this run, giving up"
        return f"; still failing after {time.monotonic() - started:.0f} s of retries, giving up"

    def _wait(self, seconds: float, message: str) -> None:
        self.on_retry(message)
        self.retry_seconds_spent += seconds
        self.sleep(seconds)

    def _result(self, method: str, path: str, response: httpx.Response, gave_up: str = "") -> Any:
        try:
            body = response.json() if response.content else None
        except ValueError:
            body = None
        if response.is_success:
            if response.content and body is None:
                raise DatadogError(f"{method} {path}: the answer is not JSON "
                                   f"({response.headers.get('content-type', 'no content type')}); is DD_API_URL "
                                   f"or DD_SITE pointing at Datadog's API?", response.status_code)
            return body
        detail = self._scrub(_errors(body) or response.text[:300].strip() or response.reason_phrase)
        if response.status_code == 403:
            # Datadog answers 403 both to a missing permission and to keys it does not know.
            raise DatadogError(f"{method} {path}: 403 Forbidden: the application key lacks "
                               f"{missing_permission(method, path)}, or DD_API_KEY/DD_APP_KEY are not valid for "
                               f"{self.base_url} ({detail})", 403, body)
        if response.status_code == 401:
            raise DatadogError(f"{method} {path}: 401: DD_API_KEY or DD_APP_KEY is not valid for this site "
                               f"({self.base_url})", 401, body)
        raise DatadogError(f"{method} {path}: HTTP {response.status_code}: {detail}{gave_up}", response.status_code,
                           body)

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            if secret:
                text = text.replace(secret, "[REDACTED]")
                # A cut excerpt may end with the start of a key.
                for length in range(len(secret) - 1, 7, -1):
                    if text.endswith(secret[:length]):
                        text = text[: -length] + "[REDACTED]"
                        break
        return text


def _retry_delay(response: httpx.Response, attempt: int) -> float:
    reset = response.headers.get("X-RateLimit-Reset")
    if reset:
        try:
            seconds = float(reset)
        except ValueError:
            seconds = float("nan")
        if math.isfinite(seconds):
            return min(max(seconds, 0.5), 300.0)  # never wait longer than the retry budget allows
    return float(min(2 ** attempt, 30))


def _errors(body: Any) -> str:
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        return "; ".join(str(error if not isinstance(error, dict) else error.get("detail", error))
                         for error in body["errors"])
    return ""
