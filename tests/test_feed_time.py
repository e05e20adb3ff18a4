"""The re-poll windows across pauses and clock steps: nothing indexed late is lost, nothing repeats.

Hours of a collector's life are played in seconds: the simulator and the collector's feed run in
this process on one fake time that the test moves forward. The collector talks to the simulator
over HTTP as it always does; only its wall clock and monotonic clock are the test's, so that the
host clock can be made to lie (one hour slow, one hour fast) while the API's clock, which stamps
`created_at` and the `Date` of each answer, stays right.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from ccl.simulator import Simulator
from collector.api import ComplianceClient
from collector.budget import RequestBudget
from collector.clock import FeedClock
from collector.feed import Feed, FeedOptions
from collector.log import JsonLog
from collector.output import NdjsonOutput
from collector.shutdown import Shutdown
from collector.state import FeedState, StateDir
from collector.timeparse import parse_created_at
from tests.conftest import TEST_KEY

START = 1_800_000_000.0  # 2027-01-15: the fake time everything starts at
STEP = 15.0  # seconds between polls, the collector's default --interval


class FakeTime:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


class Collector:
    """One collector process: its own clocks, client and feed, over the state dir it shares with the next."""

    def __init__(self, simulator: Simulator, state_dir: Path, time: FakeTime, wall_error: Callable[[], float],
                 since: float, out: io.BytesIO, log_stream: io.StringIO):
        log = JsonLog(log_stream)
        self.time = time
        directory = StateDir(state_dir)
        directory.create()
        state = directory.load_feed() or FeedState()
        client = ComplianceClient(simulator.url, key_source=lambda: TEST_KEY, budget=RequestBudget(0), log=log,
                                  sleep=lambda _seconds: None, timeout=10)
        # A new process: a monotonic clock with its own origin; the wall clock is the fake time plus its error.
        origin = time.now
        clock = FeedClock(log, wall=lambda: time.now + wall_error(), steady=lambda: time.now - origin + 12.5)
        self.feed = Feed(client, directory, state, NdjsonOutput(out), Shutdown(), log,
                         FeedOptions(since=datetime.fromtimestamp(since, UTC), wait_for_disk=True), clock)

    def follow(self, polls: int) -> None:
        for _ in range(polls):
            self.time.now += STEP
            self.feed.run_cycle(force_reconcile=False)

    def once(self) -> None:
        self.feed.run_cycle(force_reconcile=True)


class Timeline:
    def __init__(self, tmp_path: Path, seed: int):
        self.time = FakeTime()
        # A few rows in three are indexed 8 to 50 seconds late: the cursor has passed them by then.
        self.simulator = Simulator(seed=seed, rate=2.0, history=1800, late_fraction=0.3, clock=self.time).start()
        self.since = START - 1200
        self.state_dir = tmp_path / "state"
        self.out = io.BytesIO()
        self.logs = io.StringIO()

    def collector(self, wall_error: Callable[[], float] = lambda: 0.0) -> Collector:
        return Collector(self.simulator, self.state_dir, self.time, wall_error, self.since, self.out, self.logs)

    def verdict(self) -> tuple[int, int]:
        """(lost, repeated): lost counts rows created since `since`, at least a minute old, queryable now."""
        emitted = Counter(json.loads(line)["id"] for line in self.out.getvalue().splitlines())
        now = self.time.now
        expected = {activity["id"] for activity in self.simulator.store.visible_activities(now)
                    if self.since <= parse_created_at(activity["created_at"]) < now - 60}
        return len(expected - set(emitted)), sum(count - 1 for count in emitted.values())

    def warnings(self) -> list[str]:
        return [entry["message"] for entry in map(json.loads, self.logs.getvalue().splitlines())
                if entry["level"] == "WARNING"]

    def close(self) -> None:
        self.simulator.stop()


def test_a_pause_longer_than_the_overlap_loses_no_row_indexed_late(tmp_path):
    timeline = Timeline(tmp_path, seed=40)
    try:
        timeline.collector().follow(40)
        timeline.time.now += 20 * 60  # the host is down 20 minutes; the overlap is 15
        timeline.collector().follow(40)
        timeline.time.now += 120
        timeline.collector().once()
        assert timeline.verdict() == (0, 0)
    finally:
        timeline.close()


def test_the_repoll_after_a_pause_reads_the_span_before_it_and_not_the_whole_pause(tmp_path):
    timeline = Timeline(tmp_path, seed=41)
    try:
        timeline.collector().follow(8)
        stopped = timeline.time.now
        timeline.time.now += 3 * 3600
        state = StateDir(timeline.state_dir).load_feed()
        assert state is not None and state.repoll_spans
        assert max(end for _, end in state.repoll_spans) >= stopped - 2  # recorded up to the last poll
        requests = []
        timeline.simulator.api.on_answered = lambda *args: requests.append(args[3])
        timeline.collector().follow(1)
        windows = [target for target in requests if "created_at.lt" in target]
        assert len(windows) == 2  # the span before the pause and the usual overlap window, not 3 hours
        assert timeline.verdict() == (0, 0)
    finally:
        timeline.close()


def test_a_clock_stepping_back_an_hour_neither_rereads_the_past_nor_skips_the_present(tmp_path):
    timeline = Timeline(tmp_path, seed=42)
    error = {"seconds": 0.0}
    try:
        collector = timeline.collector(lambda: error["seconds"])
        collector.follow(20)
        error["seconds"] = -3600.0  # someone sets the clock an hour back
        collector.follow(80)
        timeline.time.now += 120
        collector.once()
        assert timeline.verdict() == (0, 0)
        assert any("the system clock jumped" in message for message in timeline.warnings())
    finally:
        timeline.close()


def test_a_clock_an_hour_fast_then_corrected_does_not_suspend_the_repoll(tmp_path):
    timeline = Timeline(tmp_path, seed=43)
    try:
        timeline.collector(lambda: 3600.0).follow(20)  # started with a clock one hour fast
        restarted = timeline.collector()  # NTP fixed it; Vector respawned the collector
        restarts_at = timeline.time.now
        restarted.follow(100)  # 25 minutes, more than the overlap
        timeline.time.now += 120
        restarted.once()
        assert timeline.verdict() == (0, 0)
        state = StateDir(timeline.state_dir).load_feed()
        assert state is not None and state.last_reconcile_at is not None
        assert restarts_at < state.last_reconcile_at <= timeline.time.now + 2  # on the API's clock
        assert any("differs from the API's" in message for message in timeline.warnings())
    finally:
        timeline.close()


def test_a_restart_with_a_clock_an_hour_fast_repeats_nothing(tmp_path):
    # A new process knows only the host's clock until the API first answers: remembered ids must not
    # be pruned on that clock (an hour fast, it dropped every one, and the re-poll sent them again).
    timeline = Timeline(tmp_path, seed=44)
    try:
        timeline.collector(lambda: 3600.0).follow(20)
        timeline.collector(lambda: 3600.0).follow(20)  # Vector respawned it; the clock is still an hour fast
        timeline.time.now += 120
        timeline.collector(lambda: 3600.0).once()
        assert timeline.verdict() == (0, 0)
    finally:
        timeline.close()
