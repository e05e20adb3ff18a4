"""Detection methods on timelines: windows, keep-alive, max duration, learning, travel."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from ruamel.yaml import YAML

from ccl.content.assets import Asset, plain
from ccl.detection.engine import Engine
from ccl.detection.rules import build_rule
from ccl.detection.signals import event_time

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC).timestamp()


def rule(text: str):
    data = plain(YAML(typ="rt").load(text))
    base = {"id": "r", "name": "r", "message": "m", "tags": [], "tests": [], "cases": [{"severity": "high"}]}
    return build_rule(Asset("rule", None, {**base, **data}))  # type: ignore[arg-type]


def event(seconds: float, name: str, n: int | str = 0, **fields) -> dict:
    stamp = datetime.fromtimestamp(T0 + seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {"id": f"a{n}-{seconds}", "timestamp": stamp, "evt": {"name": name}, **fields}


FAILURES = """
method: threshold
queries:
  - {name: failures, query: "@evt.name:sso_login_failed", group_by: ["@ip"]}
cases: [{condition: failures >= 3, severity: medium}]
evaluation_window: 5m
keep_alive: 10m
max_signal_duration: 30m
"""


def test_an_event_exactly_one_window_old_still_counts():
    events = [event(0, "sso_login_failed", ip="x"), event(150, "sso_login_failed", ip="x"),
              event(300, "sso_login_failed", ip="x")]
    assert len(Engine([rule(FAILURES)]).run(events)) == 1
    late = [*events[:2], event(300.001, "sso_login_failed", ip="x")]
    assert Engine([rule(FAILURES)]).run(late) == []


def test_out_of_order_events_give_the_same_signals_as_sorted_ones():
    events = [event(i * 20, "sso_login_failed", n=i, ip="x") for i in range(6)]
    shuffled = events[:]
    random.Random(4).shuffle(shuffled)
    sorted_signals = [s.to_json() for s in Engine([rule(FAILURES)]).run(events)]
    assert sorted_signals and [s.to_json() for s in Engine([rule(FAILURES)]).run(shuffled)] == sorted_signals


def test_keep_alive_extends_an_open_signal_and_a_gap_starts_a_new_one():
    burst = [event(i * 10, "sso_login_failed", n=i, ip="x") for i in range(3)]
    extension = [event(300 + i * 10, "sso_login_failed", n=10 + i, ip="x") for i in range(3)]  # within 10m
    after_gap = [event(3000 + i * 10, "sso_login_failed", n=20 + i, ip="x") for i in range(3)]  # 45m later
    signals = Engine([rule(FAILURES)]).run(burst + extension + after_gap)
    assert [s.count for s in signals] == [6, 3]
    assert signals[0].last_seen - signals[0].first_seen == 320


def test_max_signal_duration_closes_a_signal_that_keeps_being_extended():
    steady = [event(i * 60, "sso_login_failed", n=i, ip="x") for i in range(45)]  # one a minute for 45m
    signals = Engine([rule(FAILURES)]).run(steady)
    assert len(signals) == 2
    assert signals[0].last_seen - signals[0].first_seen <= 30 * 60


def test_groups_are_separate_and_events_missing_a_group_value_are_not_counted():
    events = [event(i, "sso_login_failed", n=i, ip="a" if i % 2 else "b") for i in range(4)]
    events += [event(10 + i, "sso_login_failed", n=100 + i) for i in range(5)]
    assert Engine([rule(FAILURES)]).run(events) == []


def test_cases_are_evaluated_in_order_and_the_first_that_holds_wins():
    two_cases = rule("""
method: threshold
queries:
  - {name: f, query: "@evt.name:sso_login_failed", group_by: ["@ip"]}
  - {name: s, query: "@evt.name:sso_login_succeeded", group_by: ["@ip"]}
cases:
  - {condition: f >= 2 && s > 0, severity: high}
  - {condition: f >= 2, severity: low}
evaluation_window: 5m
keep_alive: 1h
""")
    only_failures = [event(0, "sso_login_failed", n=1, ip="x"), event(1, "sso_login_failed", n=2, ip="x")]
    assert [s.severity for s in Engine([two_cases]).run(only_failures)] == ["low"]
    with_success = [*only_failures, event(2, "sso_login_succeeded", n=3, ip="x")]
    signals = Engine([two_cases]).run(with_success)
    assert [s.severity for s in signals] == ["high"] and signals[0].count == 3  # upgraded, same signal


def test_cardinality_counts_distinct_values():
    distinct = rule("""
method: threshold
queries:
  - {name: chats, query: "@evt.name:claude_chat_viewed", group_by: ["@user"], aggregation: cardinality,
     distinct: ["@chat"]}
cases: [{condition: chats > 3, severity: medium}]
evaluation_window: 10m
""")
    same_chat = [event(i, "claude_chat_viewed", n=i, user="u", chat="c1") for i in range(10)]
    assert Engine([distinct]).run(same_chat) == []
    many = [event(i, "claude_chat_viewed", n=i, user="u", chat=f"c{i}") for i in range(4)]
    assert len(Engine([distinct]).run(many)) == 1
    without = [event(i, "claude_chat_viewed", n=i, user="u") for i in range(10)]  # no @chat: no value
    assert Engine([distinct]).run(without) == []


def test_cardinality_of_ids_ignores_a_replayed_activity():
    distinct_ids = rule(FAILURES.replace('group_by: ["@ip"]}', 'group_by: ["@ip"], aggregation: cardinality, '
                                         'distinct: ["@id"]}'))
    once = [event(i, "sso_login_failed", n=i, ip="x") for i in range(2)]
    assert Engine([distinct_ids]).run(once + [dict(e) for e in once]) == []  # replayed: still 2 distinct ids
    assert len(Engine([rule(FAILURES)]).run(once + [dict(e) for e in once])) == 1  # a count says 4


NEW_VALUE = """
method: new_value
queries: [{name: q, query: "@evt.name:admin_api_key_created", metric: "@who", group_by: ["@org"]}]
new_value: {learning_duration: 1d, forget_after: 2d}
"""
DAY = 86400


def test_new_value_learns_then_alerts_and_forgets_after():
    events = [event(0, "admin_api_key_created", n=1, who="ana", org="o"),
              event(DAY / 2, "admin_api_key_created", n=2, who="bob", org="o"),  # learned
              event(DAY + 1, "admin_api_key_created", n=3, who="bob", org="o"),  # known
              event(DAY + 2, "admin_api_key_created", n=4, who="eve", org="o"),  # new: signal
              event(5 * DAY, "admin_api_key_created", n=5, who="ana", org="o")]  # forgotten after 2d: signal
    signals = Engine([rule(NEW_VALUE)]).run(events)
    assert [s.group["@who"] for s in signals] == ["eve", "ana"]
    assert signals[0].group["@org"] == "o"


def test_new_value_with_no_learning_learns_each_groups_first_value_silently():
    zero = rule(NEW_VALUE.replace("learning_duration: 1d", "learning_duration: 0d"))
    events = [event(0, "admin_api_key_created", n=1, who="ana", org="o"),
              event(1, "admin_api_key_created", n=2, who="bob", org="o"),
              event(2, "admin_api_key_created", n=3, who="zed", org="p")]
    assert [s.group["@who"] for s in Engine([zero]).run(events)] == ["bob"]


def test_new_value_learns_each_group_from_its_own_first_value():
    # A new hire (group "new") first seen after the rule's first week: their first week is learned,
    # not signalled as new against everyone else's history.
    week = rule(NEW_VALUE.replace("learning_duration: 1d", "learning_duration: 7d")
                .replace("forget_after: 2d", "forget_after: 30d"))
    events = [event(0, "admin_api_key_created", n=1, who="GB", org="old"),
              event(10 * DAY, "admin_api_key_created", n=2, who="FR", org="new"),  # the group's first value
              event(11 * DAY, "admin_api_key_created", n=3, who="DE", org="new"),  # still in its own week
              event(12 * DAY, "admin_api_key_created", n=4, who="US", org="old"),  # old group, after learning
              event(18 * DAY, "admin_api_key_created", n=5, who="JP", org="new")]  # new group, after its week
    assert [(s.group["@org"], s.group["@who"]) for s in Engine([week]).run(events)] == [("old", "US"),
                                                                                         ("new", "JP")]


def test_events_before_the_rule_is_deployed_are_ignored_unless_the_baseline_is_instantaneous():
    history = [event(0, "admin_api_key_created", n=1, who="ana", org="o"),
               event(DAY / 2, "admin_api_key_created", n=2, who="bob", org="o")]
    after = [event(2 * DAY, "admin_api_key_created", n=3, who="eve", org="o"),     # first value after deploying
             event(2 * DAY + 60, "admin_api_key_created", n=4, who="bob", org="o")]
    gradual = rule(NEW_VALUE)
    gradual.deployed_at = T0 + DAY
    # Deployed at day 1, the rule never saw ana or bob: it learns from day 2 for a day, silently.
    assert Engine([gradual]).run(history + after) == []
    instantaneous = rule(NEW_VALUE.replace("forget_after: 2d", "forget_after: 2d, instantaneous_baseline: true"))
    instantaneous.deployed_at = T0 + DAY
    # Its baseline is the learning duration before deployment (ana, bob): eve is new at once, bob is not.
    assert [s.group["@who"] for s in Engine([instantaneous]).run(history + after)] == ["eve"]


TRAVEL = """
method: impossible_travel
queries: [{name: q, query: "@evt.name:sso_login_succeeded", group_by: ["@usr.id"]}]
impossible_travel: {baseline_user_locations: BASELINE}
"""
LONDON = {"country": {"iso_code": "GB"}, "city": {"name": "London"},
          "location": {"latitude": 51.51, "longitude": -0.09}}
CHANGCHUN = {"country": {"iso_code": "CN"}, "city": {"name": "Changchun"},
             "location": {"latitude": 43.88, "longitude": 125.32}}


def login(seconds: float, n: int, place: dict | None) -> dict:
    extra = {"network": {"client": {"geoip": place}}} if place else {}
    return event(seconds, "sso_login_succeeded", n=n, usr={"id": "u1"}, **extra)


def test_impossible_travel_needs_distance_and_speed_and_ignores_unlocated_events():
    travel = rule(TRAVEL.replace("BASELINE", "false"))
    assert len(Engine([travel]).run([login(0, 1, LONDON), login(1200, 2, CHANGCHUN)])) == 1
    assert Engine([travel]).run([login(0, 1, LONDON), login(2 * DAY, 2, CHANGCHUN)]) == []
    assert Engine([travel]).run([login(0, 1, LONDON), login(600, 2, None), login(700, 3, LONDON)]) == []


def test_impossible_travel_baseline_learns_a_day_then_suppresses_known_hops():
    travel = rule(TRAVEL.replace("BASELINE", "true"))
    baseline = [login(0, 1, LONDON), login(3600, 2, CHANGCHUN)]  # a known pattern, learned
    assert Engine([travel]).run(baseline) == []
    later = [*baseline, login(DAY + 10, 3, LONDON), login(DAY + 1200, 4, CHANGCHUN)]
    assert Engine([travel]).run(later) == []
    elsewhere = {"country": {"iso_code": "US"}, "city": {"name": "Milton"},
                 "location": {"latitude": 47.25, "longitude": -122.31}}
    assert len(Engine([travel]).run([*baseline, login(DAY + 10, 3, LONDON), login(DAY + 900, 4, elsewhere)])) == 1


def test_events_are_dispatched_only_to_rules_that_can_match_their_name():
    sso = rule(FAILURES)
    engine = Engine([sso])
    assert engine._by_name == {"sso_login_failed": [sso]} and engine._any_name == []


SEQUENCE = """
method: sequence
queries:
  - {name: f, query: "@evt.name:sso_login_failed", group_by: ["@ip"]}
  - {name: s, query: "@evt.name:sso_login_succeeded", group_by: ["@ip"]}
sequence:
  steps:
    - {name: failures, condition: f >= 3, within: 5m}
    - {name: success, condition: s > 0, within: 1m, after_previous: 10m}
"""


def test_a_sequence_needs_its_steps_in_order_and_in_time():
    failures = [event(i * 10, "sso_login_failed", n=i, ip="x") for i in range(3)]
    signals = Engine([rule(SEQUENCE)]).run([*failures, event(300, "sso_login_succeeded", n=9, ip="x")])
    assert len(signals) == 1 and signals[0].count == 4 and signals[0].group == {"@ip": "x"}
    success_first = [event(0, "sso_login_succeeded", n=9, ip="x"), *[event(10 + i, "sso_login_failed", n=i, ip="x")
                                                                      for i in range(3)]]
    assert Engine([rule(SEQUENCE)]).run(success_first) == []
    too_late = [*failures, event(20 + 601, "sso_login_succeeded", n=9, ip="x")]
    assert Engine([rule(SEQUENCE)]).run(too_late) == []


def test_a_sequence_that_timed_out_starts_over_with_the_current_event():
    first = [event(i * 10, "sso_login_failed", n=i, ip="x") for i in range(3)]
    again = [event(3600 + i * 10, "sso_login_failed", n=10 + i, ip="x") for i in range(3)]
    signals = Engine([rule(SEQUENCE)]).run([*first, *again, event(3700, "sso_login_succeeded", n=99, ip="x")])
    assert len(signals) == 1 and "a0-0" not in signals[0].activity_ids


def test_forgetting_keeps_state_bounded_and_changes_no_signal():
    """A month with a new address every hour, a new person every day and a new key creator every hour:
    fed in order with forget_before now and then, each detector holds only what its windows can reach
    (not a month's worth), and the signals are those of `run`, handed out as they become final."""
    events = []
    for hour in range(720):
        base, address, n = hour * 3600, f"10.{hour // 256}.{hour % 256}.1", hour * 10
        events += [event(base + second, "sso_login_failed", n=n + k, ip=address) for k, second in enumerate((0, 9, 18))]
        events.append(event(base + 60, "sso_login_succeeded", n=n + 3, ip=address))
        events.append(event(base + 100, "admin_api_key_created", n=n + 4, who=f"p{hour}", org="o"))
        events.append(login(base + 200, n + 5, LONDON if hour % 2 else CHANGCHUN) | {"usr": {"id": f"u{hour // 24}"}})
    rules_text = [FAILURES, SEQUENCE, NEW_VALUE, TRAVEL.replace("BASELINE", "false")]
    expected = [s.to_json() for s in Engine([rule(text) for text in rules_text]).run(events)]
    streaming = Engine([rule(text) for text in rules_text])
    threshold, sequence, new_value, travel = streaming._in_order
    written, largest = [], {"threshold": 0, "sequence": 0, "new_value": 0, "travel": 0}
    for number, item in enumerate(events, start=1):
        streaming.feed(event_time(item), item)
        if number % 50 == 0:
            streaming.forget_before(event_time(item))
            written += [s.to_json() for s in streaming.take_finished()]
            for name, size in (("threshold", len(threshold.windows)), ("sequence", len(sequence.windows)),
                               ("new_value", len(new_value.known.get(("o",), {}))), ("travel", len(travel.last))):
                largest[name] = max(largest[name], size)
    handed_out_early = len(written)
    written += [s.to_json() for s in streaming.finish()]
    assert written == expected and {s["rule"] for s in expected} == {"r"} and len(expected) > 2000
    assert handed_out_early > len(expected) - 100  # only the last day's may still change at the end
    # Without forgetting: 720 addresses, 720 creators, 30 people.
    assert largest["threshold"] <= 3 and largest["sequence"] <= 3 and largest["new_value"] <= 50
    assert largest["travel"] <= 2


CONDITION_CASES = [  # (condition, values, holds) as Datadog reads them: && binds tighter than ||
    ("a > 2 || b > 2 && c > 2", {"a": 3}, True),
    ("a > 2 || b > 2 && c > 2", {"b": 3}, False),
    ("(a > 2 || b > 2) && c > 2", {"a": 3}, False),
    ("(a > 2 || b > 2) && c > 2", {"b": 3, "c": 3}, True),
    ("a >= 2.5 && a <= 2.5 && a == 2.5 && a != 3", {"a": 2.5}, True),
    ("a < 1", {}, True),  # a query with no value counts 0
    ("a == 0 && b != 0", {"b": 0.5}, True),
    ("1 < a", {"a": 2}, True),
    ("a > b", {"a": 2, "b": 2}, False),
    ("((a > 1)) || ((b > 1) && (c > 1 || d > 1))", {"b": 2, "d": 2}, True),
    (" || ".join(["a > 1"] * 150)[:999].rsplit(" ||", 1)[0], {"a": 2}, True),  # long chains compile
    ("(" * 32 + "a > 1" + ")" * 32, {"a": 0}, False),
]


def test_case_conditions_evaluate_as_written():
    from ccl.detection.conditions import compile_condition

    for text, values, expected in CONDITION_CASES:
        holds, names = compile_condition(text, {"a", "b", "c", "d"})
        assert holds({name: float(value) for name, value in values.items()}) is expected, text
        assert names <= {"a", "b", "c", "d"}
