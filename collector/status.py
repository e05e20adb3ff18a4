"""Health of a collector, kept beside its state: last success, last error, running counts.

`status.json` is written at the end of each cycle and on each error. It is advisory: the cursor
lives in `state.json` and never depends on it, so a status.json that is unreadable or of the wrong
shape is set aside (what can be used of it is kept), never a reason to stop. `describe()` turns
both into what `ccl status` prints. Everything written or printed goes through the same redaction
as the logs.
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import stat
import time
from pathlib import Path
from typing import Any

from collector.errors import CollectorError, StateError
from collector.lock import holder_pid
from collector.redact import Redactor
from collector.state import LOCK_FILE, StateDir
from collector.timeparse import format_ago, format_duration, parse_created_at

COUNTERS = ("emitted", "pages", "requests", "late_found", "cycles")
CYCLE_FIELDS = ("emitted", "pages", "requests", "late_found", "lag_seconds")
STATUS_ADVICE = "it only holds health figures (the position is in state.json): the collector rewrites it"


class StatusRecorder:
    def __init__(self, state_dir: StateDir, redactor: Redactor | None = None):
        self._state_dir = state_dir
        self._redactor = redactor or Redactor()
        self.data, _ = read_health(state_dir)

    def record_cycle(self, emitted: int, pages: int, requests: int, late_found: int,
                     lag_seconds: float | None) -> None:
        counts = self.data["counts"]
        counts["emitted"] += emitted
        counts["pages"] += pages
        counts["requests"] += requests
        counts["late_found"] += late_found
        counts["cycles"] += 1
        self.data["last_success_at"] = time.time()
        self.data["last_cycle"] = {"emitted": emitted, "pages": pages, "requests": requests,
                                   "late_found": late_found, "lag_seconds": lag_seconds}
        self._write()

    def record_error(self, message: str, cause: str, requests: int = 0) -> None:
        self.data["counts"]["requests"] += requests
        self.data["last_error"] = {"at": time.time(), "cause": cause, "message": message}
        self._write()

    def _write(self) -> None:
        # A full disk shows up on the next state save, which deals with it; status is advisory.
        with contextlib.suppress(CollectorError):
            self._state_dir.write_json(self._state_dir.status_file, self._redactor.value(self.data))


def read_health(directory: StateDir) -> tuple[dict[str, Any], str | None]:
    """What can be used of status.json, in the shape this code writes, and why the rest was set aside."""
    try:
        raw = directory.read_json(directory.status_file, STATUS_ADVICE)
    except CollectorError as error:
        raw, problem = None, str(error)
    else:
        problem = None if raw is None or isinstance(raw, dict) else f"not a JSON object; {STATUS_ADVICE}"
    raw = raw if isinstance(raw, dict) else {}
    counts = raw.get("counts") if isinstance(raw.get("counts"), dict) else {}
    health: dict[str, Any] = {"counts": {name: _count(counts.get(name)) for name in COUNTERS}}
    if _number(raw.get("last_success_at")) is not None:
        health["last_success_at"] = raw["last_success_at"]
    error = raw.get("last_error")
    if isinstance(error, dict):
        health["last_error"] = {"at": _number(error.get("at")), "cause": _short(error.get("cause")),
                                "message": _short(error.get("message"))}
    cycle = raw.get("last_cycle")
    if isinstance(cycle, dict):
        health["last_cycle"] = {name: _number(cycle.get(name)) for name in CYCLE_FIELDS}
    if problem is None and raw and _reshaped(raw, health):
        problem = f"some fields have an unexpected shape and were ignored; {STATUS_ADVICE}"
    return health, problem


def _reshaped(raw: dict[str, Any], health: dict[str, Any]) -> bool:
    """Whether reading `raw` into the shape this code writes dropped or changed anything."""
    known = {"counts", "last_success_at", "last_error", "last_cycle"}
    return any(key in raw and raw[key] != health.get(key) for key in known) or not set(raw) <= known


def _number(value: Any) -> float | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    return value if ok and abs(value) < 1e15 else None


def _count(value: Any) -> int:
    number = _number(value)
    return int(number) if number is not None and number >= 0 else 0


def _short(value: Any) -> str | None:
    return None if value is None else str(value)[:2000]


def describe(state_dir: Path, now: float | None = None, redactor: Redactor | None = None) -> dict[str, Any]:
    """Everything `ccl status` reports, as data (redacted like the logs)."""
    now = time.time() if now is None else now
    directory = StateDir(state_dir)
    if not state_dir.is_dir():
        raise StateError(f"no state directory at {state_dir}; has a collector run with this --state-dir?")
    feed = directory.load_feed()
    health, health_problem = read_health(directory)
    try:
        backfill = directory.read_json(state_dir / "backfill.json")
    except CollectorError as error:
        backfill, health_problem = None, health_problem or str(error)
    report: dict[str, Any] = {"state_dir": str(state_dir), "has_state": feed is not None}
    if feed is not None:
        newest = parse_created_at(feed.cursor_created_at) if feed.cursor_created_at else None
        report.update({
            "cursor_set": feed.cursor is not None,
            "newest_activity_at": feed.cursor_created_at,
            "cursor_age_seconds": round(now - newest, 1) if newest else None,
            "first_run_in_progress": feed.initial is not None,
            "first_run_since": (feed.initial or {}).get("since"),
            "last_reconcile_at": feed.last_reconcile_at,
            "remembered_ids": len(feed.recent),
            "filters": feed.filters,
        })
    report["last_success_at"] = health.get("last_success_at")
    report["last_error"] = health.get("last_error")
    report["counts"] = health.get("counts", {})
    report["last_cycle"] = health.get("last_cycle")
    report["backfill"] = backfill if isinstance(backfill, dict) else None
    report["status_problem"] = health_problem
    report["running_pid"] = _lock_holder(state_dir / LOCK_FILE)
    return (redactor or Redactor()).value(report)


def _lock_holder(path: Path) -> int | None:
    """The pid holding the collector lock, or None when no collector runs (-1: running, pid unknown)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            pid = holder_pid(path)
            return int(pid) if pid.isdigit() else -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def render_text(report: dict[str, Any], now: float | None = None) -> str:
    now = time.time() if now is None else now
    lines = [f"State directory:  {report['state_dir']}"]
    pid = report.get("running_pid")
    lines.append(f"Collector:        {'running (pid ' + str(pid) + ')' if pid else 'not running'}")
    if not report.get("has_state"):
        lines.append("Feed:             no state yet; the next run starts from --since (default 1 hour ago)")
    else:
        if report.get("newest_activity_at"):
            lines.append(f"Newest activity:  {report['newest_activity_at']} "
                         f"({format_ago(report.get('cursor_age_seconds'))})")
        else:
            lines.append("Newest activity:  none read yet")
        if report.get("first_run_in_progress"):
            lines.append(f"First run:        in progress (reading back to {report.get('first_run_since')})")
        lines.append(f"Overlap re-poll:  {_when(report.get('last_reconcile_at'), now)}; "
                     f"{report.get('remembered_ids', 0)} recent ids remembered")
    lines.append(f"Last success:     {_when(report.get('last_success_at'), now)}")
    if report.get("status_problem"):
        lines.append(f"Status file:      set aside ({report['status_problem']})")
    error = report.get("last_error")
    if error:
        lines.append(f"Last error:       {_when(error.get('at'), now)} [{error.get('cause')}] {error.get('message')}")
    else:
        lines.append("Last error:       none")
    counts = report.get("counts") or {}
    if counts:
        lines.append(
            f"Counts:           {_plural(counts.get('emitted', 0), 'activity', 'activities')} emitted, "
            f"{_plural(counts.get('pages', 0), 'page')}, {_plural(counts.get('requests', 0), 'request')}, "
            f"{counts.get('late_found', 0):,} found late by re-poll, {_plural(counts.get('cycles', 0), 'cycle')}"
        )
    cycle = report.get("last_cycle")
    if cycle and cycle.get("lag_seconds") is not None:
        lines.append(f"Lag at last poll: {format_duration(cycle['lag_seconds'])}")
    backfill = report.get("backfill")
    if isinstance(backfill, dict):
        state = "complete" if backfill.get("done") else "unfinished (run the same command to resume)"
        lines.append(f"Backfill:         {state}: {backfill.get('since')} .. {backfill.get('until')}, "
                     f"{_count(backfill.get('emitted')):,} emitted")
    return "\n".join(lines)


def _plural(count: int, singular: str, plural: str = "") -> str:
    return f"{count:,} {singular if count == 1 else plural or singular + 's'}"


def _when(epoch: Any, now: float) -> str:
    if not isinstance(epoch, int | float):
        return "never"
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
    return f"{stamp} ({format_ago(now - epoch)})"
