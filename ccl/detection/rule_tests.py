"""`ccl test`: each rule's embedded tests, through the normalizer and the engine.

A test is a timeline of raw activities at offsets from a fixed start. Activities get what the API
would send and the test did not write: an id, created_at, the organization (null for the types the
API sends without one: sign-in, sign-out, Compliance API calls) and an actor the catalog allows for
the type (a signed-in user where allowed). `actor: api_actor` names a kind and gets a realistic
actor of that kind; a partial actor (`actor: {type: ..., ip_address: ...}`) is completed from one.
`add` merges the attributes only Datadog or GeoIP provide (threat intel, network.client.geoip) after
normalization, so every rule is testable offline.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ccl.content.actors import actor_for
from ccl.content.catalog import organization_is_null
from ccl.detection.engine import Engine
from ccl.detection.rules import Rule
from ccl.detection.signals import Signal
from ccl.vector.normalize import Normalizer
from collector.timeparse import parse_duration

TEST_START = datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC).timestamp()
TEST_ORG = {"organization_id": "org_01TESTORG000000000000000",
            "organization_uuid": "5d1c6f5e-0000-4000-8000-000000000001"}
NO_ORG = {"organization_id": None, "organization_uuid": None}


@dataclass
class TestOutcome:
    rule: str
    name: str
    passed: bool
    detail: str
    signals: list[Signal] = field(default_factory=list)
    fired_types: set[str] = field(default_factory=set)  # activity types carried by the signals


def build_events(rule_id: str, test: dict[str, Any], normalizer: Normalizer) -> list[dict[str, Any]]:
    events = []
    for position, spec in enumerate(test["events"]):
        offset = parse_duration(str(spec.get("at", "0s")))
        every = parse_duration(str(spec.get("every", "1s")))
        for repeat in range(int(spec.get("repeat", 1))):
            moment = TEST_START + offset + repeat * every
            activity = test_activity(_numbered(spec["activity"], repeat), moment,
                                     f"activity_test_{rule_id}_{position}_{repeat}")
            event = normalizer.normalize(activity)
            merge(event, spec.get("add") or {})
            events.append(event)
    return events


def test_activity(spec: dict[str, Any], moment: float, activity_id: str) -> dict[str, Any]:
    """The raw activity the API would send for a test's `activity`, shaped by the catalog."""
    activity_type = str(spec.get("type", ""))
    organization = NO_ORG if organization_is_null(activity_type) else TEST_ORG
    written = {key: value for key, value in spec.items() if key != "actor"}
    return {"id": activity_id, "created_at": datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            **organization, "actor": actor_for(activity_type, spec.get("actor")), **written}


test_activity.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def _numbered(value: Any, number: int) -> Any:
    """A copy of `value` where "{n}" in strings is the repetition's number (distinct ids in a burst)."""
    if isinstance(value, str):
        return value.replace("{n}", str(number))
    if isinstance(value, dict):
        return {key: _numbered(item, number) for key, item in value.items()}
    if isinstance(value, list):
        return [_numbered(item, number) for item in value]
    return value


def merge(target: dict[str, Any], extra: dict[str, Any]) -> None:
    """Deep-merge `extra` into `target`; dotted keys (`a.b.c`) address nested attributes."""
    for key, value in extra.items():
        node = target
        parts = key.split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        if isinstance(value, dict) and isinstance(node.get(parts[-1]), dict):
            merge(node[parts[-1]], value)
        else:
            node[parts[-1]] = copy.deepcopy(value)


def run_rule_tests(rule: Rule, normalizer: Normalizer) -> list[TestOutcome]:
    outcomes = []
    for test in rule.tests:
        events = build_events(rule.id, test, normalizer)
        signals = Engine([rule_under_test(rule, test)]).run(events)
        outcome = _judge(rule, test, signals)
        outcome.fired_types = _types_in(signals, events)
        outcomes.append(outcome)
    return outcomes


def rule_under_test(rule: Rule, test: dict[str, Any]) -> Rule:
    """The rule as `test` runs it: enabled, and deployed when the test says (new value learning)."""
    tested = enabled_copy(rule)
    if "deployed_at" in test:
        tested.deployed_at = TEST_START + parse_duration(str(test["deployed_at"]))
    return tested


def _types_in(signals: list[Signal], events: list[dict[str, Any]]) -> set[str]:
    """The activity types of the events the signals carry (what a firing test really exercised)."""
    carried = {activity_id for signal in signals for activity_id in signal.activity_ids}
    return {str((event.get("evt") or {}).get("name")) for event in events if str(event.get("id")) in carried}


def enabled_copy(rule: Rule) -> Rule:
    clone = copy.copy(rule)
    clone.enabled = True  # a disabled rule is still tested
    return clone


def _judge(rule: Rule, test: dict[str, Any], signals: list[Signal]) -> TestOutcome:
    expect = test["expect"]
    problems = []
    if len(signals) != expect["signals"]:
        problems.append(f"expected {expect['signals']} signal(s), got {len(signals)}")
    severity = expect.get("severity")
    if severity and signals and any(signal.severity != severity for signal in signals):
        problems.append(f"expected severity {severity}, got {', '.join(s.severity for s in signals)}")
    group = expect.get("group")
    if group and signals and not any(_group_matches(signal.group, group) for signal in signals):
        problems.append(f"no signal has group {group}; groups: {[s.group for s in signals]}")
    return TestOutcome(rule.id, test["name"], not problems, "; ".join(problems) or f"{len(signals)} signal(s)",
                       signals)


def _group_matches(actual: dict[str, Any], expected: dict[str, Any]) -> bool:
    for key, value in expected.items():
        have = actual.get(key if key.startswith("@") else "@" + key)
        if have != value:
            return False
    return True
