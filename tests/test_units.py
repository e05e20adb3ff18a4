"""Small pieces with sharp edges: durations, the request budget, atomic state, page parsing."""

from __future__ import annotations

import fcntl
import io
import json
import os

import pytest

from collector.api import TransientError, _parse_page
from collector.budget import RequestBudget
from collector.errors import StateError
from collector.log import JsonLog
from collector.state import FeedState, StateDir
from collector.timeparse import TimeFormatError, format_ago, format_duration, parse_duration, parse_instant


@pytest.mark.parametrize(("text", "seconds"), [
    ("90", 90), ("90s", 90), ("15m", 900), ("2h", 7200), ("1h30m", 5400), ("7d", 604800), ("500ms", 0.5),
])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "5q", "1h 30m", "-5", "m15"])
def test_unreadable_durations_say_what_is_accepted(text):
    with pytest.raises(TimeFormatError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize(("seconds", "text"), [
    (-3, "0s"), (45.9, "45s"), (89, "89s"), (125, "2m 5s"), (900, "15m"), (5399, "89m 59s"), (12000, "3h 20m"),
    (172799, "47h 59m"), (352800, "4d 2h"),
])
def test_durations_in_messages_keep_the_precision_that_matters(seconds, text):
    assert format_duration(seconds) == text
    assert format_ago(seconds) == f"{text} ago"


def test_an_age_that_is_no_number_is_unknown():  # a status file written by an older collector, or damaged
    assert format_ago(None) == format_ago("12") == format_ago(True) == "unknown"


def test_instants_accept_rfc3339_and_durations_ago_but_not_naive_times():
    assert parse_instant("2026-04-01T00:00:00Z").isoformat() == "2026-04-01T00:00:00+00:00"
    assert parse_instant("2026-04-01T02:00:00+02:00").isoformat() == "2026-04-01T00:00:00+00:00"
    with pytest.raises(TimeFormatError, match="no timezone"):
        parse_instant("2026-04-01T00:00:00")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_budget_allows_max_rpm_in_any_sliding_minute():
    clock = FakeClock()
    budget = RequestBudget(3, clock=clock, wall_clock=clock)
    for _ in range(3):
        assert budget.delay_before_next() == 0
        budget.record_request()
        clock.now += 1
    assert budget.delay_before_next() == pytest.approx(57)  # the first request leaves the window at 1060
    clock.now = 1060
    assert budget.delay_before_next() == 0


def test_budget_zero_means_unlimited():
    budget = RequestBudget(0, clock=FakeClock())
    for _ in range(1000):
        budget.record_request()
    assert budget.delay_before_next() == 0


def test_budget_spreads_the_remaining_org_requests_until_reset():
    clock = FakeClock()
    budget = RequestBudget(60, clock=clock, wall_clock=lambda: 1_800_000_000.0)
    headers = {"anthropic-ratelimit-requests-remaining": "5",
               "anthropic-ratelimit-requests-reset": "2027-01-15T08:00:30Z"}  # 30 s after wall_clock
    assert budget.observe_headers(headers) == pytest.approx(6)
    assert budget.delay_before_next() == pytest.approx(6)
    assert budget.observe_headers({"anthropic-ratelimit-requests-remaining": "400"}) == 0


def test_state_round_trip_and_atomic_replace(tmp_path):
    directory = StateDir(tmp_path / "state")
    directory.create()
    state = FeedState(cursor="opaque-cursor", cursor_created_at="2026-01-01T00:00:00Z",
                      recent={"activity_a": 1.5}, last_reconcile_at=10.0)
    directory.save_feed(state)
    assert directory.load_feed() == state
    assert [p.name for p in directory.path.iterdir()] == ["state.json"]  # no temp file left behind
    assert oct(directory.state_file.stat().st_mode & 0o777) == "0o600"


def test_missing_state_is_a_first_run_and_corrupt_state_is_an_error(tmp_path):
    directory = StateDir(tmp_path)
    assert directory.load_feed() is None
    directory.state_file.write_text("{not json")
    with pytest.raises(StateError, match="corrupt"):
        directory.load_feed()
    directory.state_file.write_text(json.dumps({"version": 99}))
    with pytest.raises(StateError, match="has state format 99, written by a newer collector"):
        directory.load_feed()


def test_lock_is_exclusive(tmp_path):
    first = StateDir(tmp_path)
    first.lock(wait_seconds=0)
    # flock locks belong to the open file: a second descriptor is refused, as another process would be.
    fd = os.open(tmp_path / "collector.lock", os.O_RDWR)
    with pytest.raises(OSError):
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.close(fd)
    with pytest.raises(StateError, match=f"in use by another collector \\(pid {os.getpid()}\\)"):
        StateDir(tmp_path).lock(wait_seconds=0)
    first.unlock()
    StateDir(tmp_path).lock(wait_seconds=0)


@pytest.mark.parametrize(("body", "message"), [
    (b"<html>", "not JSON"),
    (b'[{"id": "a"}]', "not JSON"),
    (b'{"data": [{"id": "a"}]} trailing', "not JSON"),
    (b'{"data": [{"id": "a"}', "not JSON"),
    (b'{"data": [{"id": "a"}]}\xff', "not JSON"),
    (b'{"data": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "not JSON"),
    (b'{"items": []}', "without a `data` list"),
    (b'{"data": [1, 2]}', "non-objects"),
    (b'{"data": [], "has_more": "yes"}', "malformed has_more"),
    (b'{"data": [{"id": "a"}], "has_more": true, "first_id": "a", "last_id": null}', "no cursor"),
])
def test_hostile_pages_are_rejected_with_a_reason(body, message):
    with pytest.raises(TransientError, match=message):
        _parse_page(body, "req_1")


def test_each_line_is_the_api_text_of_one_activity_whatever_the_formatting():
    compact = r'{"id":"a","n":1.50,"who":"Zo\u00eb \ud83d\ude00"}'
    pretty = '{\n  "id": "b",\n  "tags": ["x",\n "y"]\n}'
    body = f'{{ "has_more" : false, "data" : [ {compact} ,\r\n {pretty}, {{"id":"c","name":"Renée"}} ] }}'
    page = _parse_page(body.encode(), "req_1")
    assert [a["id"] for a in page.activities] == ["a", "b", "c"]
    assert page.lines[0] == compact  # byte for byte: 1.50 stays 1.50, escapes stay escapes
    assert page.lines[1] == '{"id":"b","tags":["x","y"]}'  # a line break inside an object is re-encoded
    assert page.lines[2] == '{"id":"c","name":"Renée"}'
    assert [json.loads(line) for line in page.lines] == page.activities


def test_log_redacts_registered_secrets_everywhere(tmp_path):
    path = tmp_path / "log"
    with path.open("w") as stream:
        log = JsonLog(stream)
        secret = "sk-ant-api01-" + "abcdefghijklmnopqrstuvwxyz"
        log.redact(secret)
        log.error(f"failed with {secret}", detail={"key": secret})
    text = path.read_text()
    assert secret not in text and text.count("[REDACTED]") == 2


def test_repoll_spans_cover_the_time_before_a_pause_but_not_the_pause():
    from collector.repoll import Repoll

    state = FeedState()
    repoll = Repoll(state, overlap=900)
    for moment in range(10_000, 10_600, 15):  # following: a catch-up every 15 s
        repoll.passed(moment)
    repoll.completed(10_300)  # a re-poll at 10,300 read everything before 10,240
    # (spans end 2 s late: our idea of the API's clock is good to about a second)
    assert state.reconciled_until == 10_240 and state.repoll_spans == [(10_240, 10_587)]
    # Down for three hours; on the way back the catch-up reaches the present at 21,400.
    repoll.passed(21_400, newest_read=21_399.5)
    assert repoll.windows(21_400) == [(21_400 - 900, 21_340), (10_240, 10_587)]
    assert repoll.keeps(10_500, 21_400) and not repoll.keeps(15_000, 21_400) and repoll.keeps(21_000, 21_400)
    repoll.completed(21_400)
    assert state.repoll_spans == [(21_340, 21_402)]
    assert not repoll.keeps(10_500, 21_400)


def test_feed_clock_follows_the_api_date_and_ignores_wall_clock_jumps():
    from collector.clock import FeedClock

    wall, steady = FakeClock(), FakeClock()
    wall.now, steady.now = 1_800_000_000.0, 50.0
    stream = io.StringIO()
    clock = FeedClock(JsonLog(stream), wall=wall, steady=steady)
    assert clock.now() == 1_800_000_000.0
    wall.now += 10 - 3600  # ten seconds later, someone sets the clock an hour back
    steady.now += 10
    assert clock.now() == 1_800_000_010.0
    assert "the system clock jumped" in stream.getvalue() and '"jump_seconds": -3600.0' in stream.getvalue()
    clock.observe_api_date("Fri, 15 Jan 2027 08:00:40 GMT")  # 1,800,000,040: the API says
    assert clock.now() == pytest.approx(1_800_000_040.5)
    clock.observe_api_date("Fri, 15 Jan 2027 08:00:41 GMT")  # within the header's resolution: no change
    assert clock.now() == pytest.approx(1_800_000_040.5)
    clock.observe_api_date("Sat, 15 Jan 20 bad date")
    clock.observe_api_date("Mon, 15 Jan 2035 08:00:40 GMT")  # years away: a broken proxy, not the time
    assert clock.now() == pytest.approx(1_800_000_040.5)


def test_status_json_is_written_redacted(tmp_path):
    from collector.status import StatusRecorder

    directory = StateDir(tmp_path)
    log = JsonLog(io.StringIO())
    secret = "sk-ant-api01-" + "status-secret-value-1234"
    log.redact(secret)
    StatusRecorder(directory, log.redactor).record_error(f"HTTP 401: key {secret} is invalid", "auth")
    text = directory.status_file.read_text()
    assert secret not in text and "key [REDACTED] is invalid" in text
