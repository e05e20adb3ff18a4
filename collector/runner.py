"""The collect command: `--once`, or follow forever inside Vector's exec source."""

from __future__ import annotations

import sys
import time
from typing import BinaryIO

from collector.api import MIN_RESPONSE_CAP, ComplianceClient
from collector.budget import RequestBudget
from collector.clock import FeedClock
from collector.errors import (
    EXIT_OK,
    ApiFailure,
    BadRequestError,
    CollectorError,
    OutputClosed,
    RefusedError,
    ShutdownRequested,
)
from collector.feed import Feed, FeedOptions
from collector.log import JsonLog
from collector.output import NdjsonOutput
from collector.settings import Settings
from collector.shutdown import Shutdown
from collector.state import FeedState, StateDir
from collector.status import StatusRecorder
from collector.timeparse import parse_created_at


class Session:
    """What one collector process holds open: log, key, lock, client."""

    def __init__(self, settings: Settings, log: JsonLog, lock_name: str):
        self.settings = settings
        self.log = log
        self.shutdown = Shutdown()
        key = settings.read_key()
        log.redact(key)
        for warning in settings.key_warnings(key):
            log.warning(warning)
        self.state_dir = StateDir(settings.state_dir)
        self.state_dir.create()
        self.state_dir.lock(lock_name)
        self.client = ComplianceClient(
            settings.api_url,
            key_source=self._key_source,
            budget=RequestBudget(settings.max_rpm),
            log=log,
            sleep=self.shutdown.sleep,
            timeout=settings.request_timeout,
            max_response_bytes=max(MIN_RESPONSE_CAP, settings.max_line_bytes + (1 << 20)),
        )

    def _key_source(self) -> str:
        key = self.settings.read_key()
        self.log.redact(key)
        return key

    def pause(self, seconds: float) -> None:
        """Sleeps, checking every second that this process still holds the state dir's lock."""
        deadline = time.monotonic() + seconds
        while True:
            if self.state_dir.verify_lock():
                self.log.warning("the lock file had been deleted; it is re-created and held again",
                                 state_dir=str(self.settings.state_dir))
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self.shutdown.sleep(min(1.0, left))

    def close(self) -> None:
        self.client.close()
        self.state_dir.unlock()


def run_collect(settings: Settings, log: JsonLog, stdout: BinaryIO | None = None) -> int:
    session: Session | None = None
    try:
        session = Session(settings, log, "collector.lock")
        session.shutdown.install()
        return _collect(session, stdout or sys.stdout.buffer)
    except ShutdownRequested as stop:
        log.info("stopped by signal; state is saved", signal=str(stop))
        return EXIT_OK
    except CollectorError as error:
        log.error(str(error), cause=_cause(error), request_id=getattr(error, "request_id", None))
        return error.exit_code
    finally:
        if session is not None:
            session.close()


def _collect(session: Session, stdout: BinaryIO) -> int:
    settings, log = session.settings, session.log
    state = session.state_dir.load_feed()
    if state is None:
        state = FeedState(filters=_filters_dict(settings))
        log.info("no state yet: first run", since=settings.since_text, state_dir=str(settings.state_dir))
    elif state.filters != _filters_dict(settings):
        log.warning("filters differ from the ones this state was collected with; continuing from the cursor",
                    saved=state.filters, now=_filters_dict(settings))
        state.filters = _filters_dict(settings)
    status = StatusRecorder(session.state_dir, log.redactor)
    feed = Feed(
        session.client, session.state_dir, state, NdjsonOutput(stdout, log, settings.max_line_bytes),
        session.shutdown, log,
        FeedOptions(
            since=settings.since, overlap=settings.overlap, reconcile_every=settings.reconcile_every,
            filters=settings.filters, give_up_after=settings.max_retry_time if settings.once else None,
            wait_for_disk=not settings.once,
        ),
        FeedClock(log),
    )
    if settings.replay_on_start:
        feed.replay(settings.replay_on_start)
    if settings.once:
        _cycle(feed, session, status, force_reconcile=True)
        return EXIT_OK
    log.info("following the feed", interval_seconds=settings.interval,
             reconcile_every_seconds=settings.reconcile_every, overlap_seconds=settings.overlap)
    while True:
        try:
            _cycle(feed, session, status, force_reconcile=False)
            pause = settings.interval
        except (RefusedError, BadRequestError, ApiFailure) as error:
            # Exiting would make Vector respawn us every few seconds; a refusal ("not enabled"
            # above all) is a security event that must stay visible, so log it and retry slowly.
            log.error(str(error), cause=_cause(error), request_id=error.request_id,
                      retry_in_seconds=settings.refused_retry)
            pause = settings.refused_retry
        session.pause(pause)


def _cycle(feed: Feed, session: Session, status: StatusRecorder, force_reconcile: bool) -> None:
    requests_before = session.client.requests_sent
    try:
        report = feed.run_cycle(force_reconcile)
    except OutputClosed as error:
        status.record_error(str(error), "OutputClosed", session.client.requests_sent - requests_before)
        raise
    except CollectorError as error:
        status.record_error(str(error), _cause(error), session.client.requests_sent - requests_before)
        raise
    requests = session.client.requests_sent - requests_before
    newest = parse_created_at(feed.state.cursor_created_at) if feed.state.cursor_created_at else None
    lag = round(max(0.0, feed.clock.now() - newest), 3) if newest else None
    status.record_cycle(report.emitted, report.pages, requests, report.late_found, lag)
    session.log.info(
        "caught up", emitted=report.emitted, pages=report.pages, requests=requests,
        late_found=report.late_found, skipped_already_emitted=report.skipped_seen, lag_seconds=lag,
        request_id=session.client.last_request_id, reconciled=report.reconciled,
    )


def _filters_dict(settings: Settings) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for name, value in settings.filters:
        grouped.setdefault(name, []).append(value)
    return grouped


def _cause(error: BaseException) -> str:
    if isinstance(error, RefusedError):
        return error.cause
    return type(error).__name__
