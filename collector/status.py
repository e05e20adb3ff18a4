"""Health of a collector, kept beside its state: last success, last error, running counts.

`status.json` is written at the end of each cycle and on each error. It is informational: the
cursor lives in `state.json` and never depends on it. `describe()` turns both into what
`ccl status` prints.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path
from typing import Any

from collector.errors import StateError
from collector.state import LOCK_FILE, StateDir
from collector.timeparse import parse_created_at

COUNTERS = ("emitted", "pages", "requests", "late_found", "cycles")


class StatusRecorder:
    def __init__(self, state_dir: StateDir):
        self._state_dir = state_dir
        try:
            existing = state_dir.read_json(state_dir.status_file)
        except StateError:
            existing = None  # health data is disposable; the cursor is not
        self.data: dict[str, Any] = existing if isinstance(existing, dict) else {}
        counts = self.data.get("counts")
        if not isinstance(counts, dict):
            counts = {}
        self.data["counts"] = {name: int(counts.get(name, 0) or 0) for name in COUNTERS}

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
        # A full disk shows up on the next state save, which does fail loudly.
        with contextlib.suppress(StateError):
            self._state_dir.write_json(self._state_dir.status_file, self.data)


def describe(state_dir: Path, now: float | None = None) -> dict[str, Any]:
    """Everything `ccl status` reports, as data."""
    now = time.time() if now is None else now
    directory = StateDir(state_dir)
    if not state_dir.is_dir():
        raise StateError(f"no state directory at {state_dir}; has a collector run with this --state-dir?")
    feed = directory.load_feed()
    health = directory.read_json(directory.status_file) or {}
    backfill = directory.read_json(state_dir / "backfill.json")
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
    report["backfill"] = backfill
    report["running_pid"] = _lock_holder(state_dir / LOCK_FILE)
    return report


def _lock_holder(path: Path) -> int | None:
    """The pid holding the collector lock, or None when no collector runs."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            content = path.read_text().strip()
            return int(content) if content.isdigit() else -1
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
                         f"({_ago(report.get('cursor_age_seconds'))})")
        else:
            lines.append("Newest activity:  none read yet")
        if report.get("first_run_in_progress"):
            lines.append(f"First run:        in progress (reading back to {report.get('first_run_since')})")
        lines.append(f"Overlap re-poll:  {_when(report.get('last_reconcile_at'), now)}; "
                     f"{report.get('remembered_ids', 0)} recent ids remembered")
    lines.append(f"Last success:     {_when(report.get('last_success_at'), now)}")
    error = report.get("last_error")
    if error:
        lines.append(f"Last error:       {_when(error.get('at'), now)} [{error.get('cause')}] {error.get('message')}")
    else:
        lines.append("Last error:       none")
    counts = report.get("counts") or {}
    if counts:
        lines.append(
            f"Counts:           {counts.get('emitted', 0):,} activities emitted, {counts.get('pages', 0):,} pages, "
            f"{counts.get('requests', 0):,} requests, {counts.get('late_found', 0):,} found late by re-poll, "
            f"{counts.get('cycles', 0):,} cycles"
        )
    cycle = report.get("last_cycle")
    if cycle and cycle.get("lag_seconds") is not None:
        lines.append(f"Lag at last poll: {_duration(cycle['lag_seconds'])}")
    backfill = report.get("backfill")
    if isinstance(backfill, dict):
        state = "complete" if backfill.get("done") else "unfinished (run the same command to resume)"
        lines.append(f"Backfill:         {state}: {backfill.get('since')} .. {backfill.get('until')}, "
                     f"{backfill.get('emitted', 0):,} emitted")
    return "\n".join(lines)


def _when(epoch: Any, now: float) -> str:
    if not isinstance(epoch, int | float):
        return "never"
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
    return f"{stamp} ({_ago(now - epoch)})"


def _ago(seconds: Any) -> str:
    if not isinstance(seconds, int | float):
        return "unknown"
    return f"{_duration(seconds)} ago"


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 90:
        return f"{seconds}s"
    if seconds < 5400:
        return f"{seconds // 60}m {seconds % 60}s"
    if seconds < 172800:
        return f"{seconds // 3600}h {seconds % 3600 // 60}m"
    return f"{seconds // 86400}d {seconds % 86400 // 3600}h"
