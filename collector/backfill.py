"""`backfill`: walks older activities between two instants, resumably, to stdout."""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from collector.api import PAGE_LIMIT
from collector.errors import EXIT_OK, CollectorError, ShutdownRequested, UsageError
from collector.files import stage_write
from collector.log import JsonLog
from collector.output import NdjsonOutput
from collector.progress import OLDER, PageProgress
from collector.runner import Session
from collector.settings import Settings
from collector.state import STATE_VERSION, WRITTEN_BY, check_format
from collector.timeparse import format_rfc3339, parse_created_at

BACKFILL_FILE = "backfill.json"


def run_backfill(settings: Settings, log: JsonLog, stdout: BinaryIO | None = None,
                 progress_stream: TextIO | None = None) -> int:
    session: Session | None = None
    try:
        session = Session(settings, log, "backfill.lock")
        session.shutdown.install()
        return _backfill(session, stdout or sys.stdout.buffer, progress_stream or sys.stderr)
    except ShutdownRequested as stop:
        log.info("backfill stopped by signal; run the same command to resume", signal=str(stop))
        return EXIT_OK
    except CollectorError as error:
        log.error(str(error), request_id=getattr(error, "request_id", None))
        return error.exit_code
    finally:
        if session is not None:
            session.close()


def _backfill(session: Session, stdout: BinaryIO, progress_stream: TextIO) -> int:
    settings, log = session.settings, session.log
    job_path = settings.state_dir / BACKFILL_FILE
    job = _load_or_start(session, job_path)
    if job["done"]:
        log.info("this backfill is already complete; pass --restart to run it again",
                 since=job["since"], until=job["until"], emitted=job["emitted"])
        return EXIT_OK
    # Pin the window (a default --until is "now" only once) so that the same command resumes it.
    session.state_dir.write_json(job_path, job)
    output = NdjsonOutput(stdout, log, settings.max_line_bytes)
    progress = Progress(progress_stream, job)
    walk = PageProgress(OLDER)
    base = [*settings.filters, ("created_at.gte", job["since"]), ("created_at.lt", job["until"]),
            ("limit", str(PAGE_LIMIT))]
    while not job["done"]:
        params = base + ([("after_id", job["after_id"])] if job["after_id"] else [])
        page = session.client.list_activities(params, settings.max_retry_time)
        walk.check(page, job["after_id"])
        pairs, repeated = page.unique()
        if repeated:
            log.warning("the API returned the same activity more than once in one page; each is emitted once",
                        repeated=repeated, request_id=page.request_id)
        job["emitted"] += len(pairs)
        job["pages"] += 1
        if page.activities:
            job["reached"] = page.activities[-1].get("created_at") or job.get("reached")
        job["after_id"] = page.last_id if page.has_more else job["after_id"]
        job["done"] = not page.has_more
        if session.state_dir.verify_lock():
            log.warning("the lock file had been deleted; it is re-created and held again")
        # As in the feed: the job record is on disk before the page goes out, in effect after it.
        staged = stage_write(job_path, json.dumps(job, separators=(",", ":"), sort_keys=True).encode())
        try:
            with session.shutdown.critical():
                output.write_page([line for _, line in pairs], [activity for activity, _ in pairs])
                staged.commit()
        finally:
            staged.abort()
        progress.update(job)
    progress.finish()
    log.info("backfill complete", since=job["since"], until=job["until"], emitted=job["emitted"],
             pages=job["pages"], requests=session.client.requests_sent, request_id=session.client.last_request_id)
    return EXIT_OK


def _load_or_start(session: Session, job_path: Path) -> dict[str, Any]:
    settings = session.settings
    wanted = {"since_arg": settings.since_text, "until_arg": settings.until_text,
              "filters": [list(item) for item in settings.filters]}
    job = session.state_dir.read_json(job_path)
    if isinstance(job, dict) and not settings.restart:
        check_format(job, job_path)  # --restart replaces even a newer format: it says to discard it
    if job is not None and not settings.restart:
        if not _is_job(job):
            raise UsageError(f"{job_path} is not a backfill record; move it aside or pass --restart")
        if {key: job.get(key) for key in wanted} != wanted:
            raise UsageError(
                f"{job_path} holds another backfill ({job.get('since_arg')} .. {job.get('until_arg') or 'start'}, "
                f"{'complete' if job['done'] else 'unfinished'}, {job['emitted']} emitted): run that same command "
                "to resume it, or pass --restart to discard it"
            )
        if not job["done"]:
            session.log.info("resuming backfill", since=job["since"], until=job["until"], emitted=job["emitted"])
        return {**job, "version": STATE_VERSION, "written_by": WRITTEN_BY}  # what it is now saved as
    until = settings.until or datetime.now(UTC)
    return {**wanted, "version": STATE_VERSION, "written_by": WRITTEN_BY,
            "since": format_rfc3339(settings.since), "until": format_rfc3339(until),
            "after_id": None, "done": False, "emitted": 0, "pages": 0, "reached": None,
            "started_at": time.time()}


def _is_job(job: Any) -> bool:
    return (isinstance(job, dict) and isinstance(job.get("since"), str) and isinstance(job.get("until"), str)
            and (job.get("after_id") is None or isinstance(job.get("after_id"), str))
            and isinstance(job.get("done"), bool) and type(job.get("emitted")) is int
            and type(job.get("pages", 0)) is int
            and (job.get("reached") is None or isinstance(job.get("reached"), str)))


class Progress:
    """One self-rewriting line on a terminal; nothing when stderr is not one (logs say enough)."""

    def __init__(self, stream: TextIO, job: dict[str, Any]):
        self._stream = stream
        self._enabled = getattr(stream, "isatty", lambda: False)()
        self._since = parse_created_at(job["since"]) or 0.0
        self._until = parse_created_at(job["until"]) or 0.0

    def update(self, job: dict[str, Any]) -> None:
        if not self._enabled:
            return
        reached = parse_created_at(job.get("reached")) if job.get("reached") else None
        share = ""
        if job.get("done"):
            share = " 100.0%"  # the window is walked to its start, even if no activity is that old
        elif reached is not None and self._until > self._since:
            share = f" {min(100.0, 100 * (self._until - reached) / (self._until - self._since)):5.1f}%"
        pages = "page" if job["pages"] == 1 else "pages"
        self._stream.write(f"\rbackfill:{share}  {job['emitted']:,} activities, {job['pages']:,} {pages}, "
                           f"reached {job.get('reached') or '-'}   ")
        self._stream.flush()

    def finish(self) -> None:
        if self._enabled:
            self._stream.write("\n")
            self._stream.flush()
