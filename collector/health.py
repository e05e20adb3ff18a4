"""`status --check`: is this collector healthy, in one line and an exit code, for probes and cron.

Unhealthy, in the order checked: the state dir is missing or unusable; no collector holds its
lock (unless it runs with --once on a schedule: --allow-not-running); the last error is newer
than the last success; no cycle has completed yet; or the last time the collector caught up with
the feed is longer ago than --max-lag. The lag is measured from that moment, not from the newest
activity: a quiet feed (a filter on rare activity types, a small org at night) has old activities
and a healthy collector, while a collector stuck behind a full disk, an API outage or a reader
that stopped reading never completes a cycle and its lag grows.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from collector.errors import EXIT_USAGE, CollectorError
from collector.redact import Redactor
from collector.settings import KEY_ENV
from collector.timeparse import format_ago, format_duration, format_rfc3339

DEFAULT_MAX_LAG = 600.0
EXIT_HEALTHY = 0
EXIT_UNHEALTHY = 1


@dataclass
class Verdict:
    healthy: bool
    reason: str  # one line
    lag_seconds: float | None = None

    @property
    def exit_code(self) -> int:
        return EXIT_HEALTHY if self.healthy else EXIT_UNHEALTHY

    def line(self) -> str:
        return f"{'healthy' if self.healthy else 'unhealthy'}: {self.reason}"

    def as_json(self, max_lag: float) -> dict[str, Any]:
        return {"healthy": self.healthy, "reason": self.reason, "lag_seconds": self.lag_seconds,
                "max_lag_seconds": max_lag}


def unusable(problem: str) -> Verdict:
    """The verdict on a state dir that cannot be read (missing, corrupt, from a newer collector)."""
    return Verdict(False, _one_line(problem))


def judge(report: dict[str, Any], max_lag: float = DEFAULT_MAX_LAG, allow_not_running: bool = False,
          now: float | None = None) -> Verdict:
    """The health of the collector `report` (collector.status.describe) describes."""
    now = time.time() if now is None else now
    success = report.get("last_success_at")
    error = report.get("last_error") or {}
    lag = round(max(0.0, now - success), 1) if isinstance(success, int | float) else None
    pid = report.get("running_pid")
    if not pid and not allow_not_running:
        return Verdict(False, "no collector is running on this state directory (no process holds its lock); "
                              "pass --allow-not-running for a collector run with --once on a schedule", lag)
    error_at = error.get("at")
    if isinstance(error_at, int | float) and (lag is None or error_at >= success):
        return Verdict(False, f"the last error ({format_ago(now - error_at)}) is newer than the last success "
                              f"({format_ago(lag) if lag is not None else 'none yet'}): [{error.get('cause')}] "
                              f"{_one_line(str(error.get('message')), 300)}", lag)
    if lag is None:
        first = (f"; the first run is reading back to {report.get('first_run_since')}"
                 if report.get("first_run_in_progress") else "")
        return Verdict(False, f"no cycle has completed yet{first}", None)
    if lag > max_lag:
        return Verdict(False, f"the collector last caught up with the feed {format_ago(lag)}, more than --max-lag "
                              f"{format_duration(max_lag)}: it is stuck (API unreachable, disk full, reader not "
                              "reading) or far behind", lag)
    running = f"running (pid {pid})" if pid and pid > 0 else ("running" if pid else "not running")
    return Verdict(True, f"{running}, caught up with the feed {format_ago(lag)}, no error since", lag)


def rfc3339(epoch: Any) -> Any:
    """An epoch number as RFC 3339 (UTC, microseconds, Z); anything else as it is."""
    if isinstance(epoch, bool) or not isinstance(epoch, int | float):
        return epoch
    try:
        return format_rfc3339(datetime.fromtimestamp(epoch, UTC))
    except (OverflowError, OSError, ValueError):
        return None


def json_report(report: dict[str, Any], now: float) -> dict[str, Any]:
    """`report` with every time as RFC 3339 (epoch numbers are kept only in status.json)."""
    shown = dict(report)
    shown["checked_at"] = rfc3339(now)
    for key in ("last_success_at", "last_reconcile_at"):
        shown[key] = rfc3339(shown.get(key))
    if isinstance(shown.get("last_error"), dict):
        shown["last_error"] = {**shown["last_error"], "at": rfc3339(shown["last_error"].get("at"))}
    if isinstance(shown.get("backfill"), dict):
        shown["backfill"] = {**shown["backfill"], "started_at": rfc3339(shown["backfill"].get("started_at"))}
    return shown


def run_status(state_dir: Path, as_json: bool, check: bool, max_lag: float, allow_not_running: bool) -> int:
    """`status`: the report in words or JSON; with `check`, the verdict and its exit code."""
    from collector.status import describe, render_text

    redactor = Redactor()
    redactor.add(os.environ.get(KEY_ENV, "").strip())
    now = time.time()
    try:
        report = describe(state_dir, now=now, redactor=redactor)
    except CollectorError as error:
        problem = redactor.text(str(error))
        if not check:
            print(f"error: {problem}", file=sys.stderr)
            return error.exit_code or EXIT_USAGE
        verdict = unusable(problem)
        print(json.dumps({"state_dir": str(state_dir), "checked_at": rfc3339(now),
                          "health": verdict.as_json(max_lag)}, indent=2) if as_json else verdict.line())
        return verdict.exit_code
    verdict = judge(report, max_lag, allow_not_running, now) if check else None
    if as_json:
        shown = json_report(report, now)
        if verdict is not None:
            shown["health"] = verdict.as_json(max_lag)
        print(json.dumps(shown, indent=2, default=str))
    else:
        print(verdict.line() if verdict is not None else render_text(report, now))
    return verdict.exit_code if verdict is not None else 0


def _one_line(text: str, limit: int = 500) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
