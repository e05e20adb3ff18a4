"""A detection rule as the engine, the renderer and the tests use it (from detections/*.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ccl.content.assets import Asset
from ccl.detection.conditions import compile_condition
from ccl.detection.query import Node, parse, required_event_names
from ccl.detection.query.match import Predicate, compile_query
from collector.timeparse import parse_duration

SEVERITIES = ["info", "low", "medium", "high", "critical"]
# The only values Datadog accepts for evaluationWindow, keepAlive and maxSignalDuration (seconds).
WINDOW_VALUES = (0, 60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
DEFAULTS = {"evaluation_window": "5m", "keep_alive": "1h", "max_signal_duration": "1d"}


@dataclass
class RuleQuery:
    name: str
    text: str
    node: Node
    matches: Predicate
    group_by: list[str]
    aggregation: str
    distinct: list[str]
    metric: str | None


@dataclass
class RuleCase:
    name: str
    severity: str
    condition_text: str | None
    holds: Any  # Callable[[dict[str, float]], bool] | None
    notify: list[str] = field(default_factory=list)


@dataclass
class SequenceStep:
    name: str
    condition_text: str
    holds: Any  # Callable[[dict[str, float]], bool]
    within: float
    after_previous: float  # 0 for the first step


@dataclass
class Rule:
    id: str
    name: str
    method: str
    queries: list[RuleQuery]
    cases: list[RuleCase]
    evaluation_window: float
    keep_alive: float
    max_signal_duration: float
    message: str
    tags: list[str]
    enabled: bool
    learning_duration: float = 0.0
    forget_after: float = 28 * 86400.0
    baseline_user_locations: bool = False
    baseline_duration: float = 86400.0  # seconds each user's locations are learned (with baseline_user_locations)
    instantaneous_baseline: bool = False
    deployed_at: float | None = None  # when a new_value rule starts (None: with the first event); set by tests
    overlaps_default: list[str] = field(default_factory=list)
    excludes_actors: dict[str, str] = field(default_factory=dict)  # actor kind -> why the rule ignores it
    description: str = ""
    severity_reason: str = ""  # why this severity (for people and docs/rules.md)
    nearest: str = "none"  # the nearest Datadog or Panther rule and its severity
    tests: list[dict[str, Any]] = field(default_factory=list)
    steps: list[SequenceStep] = field(default_factory=list)
    source: Asset | None = None

    def event_names(self) -> set[str] | None:
        """Event names any query can match (None: any event), to dispatch events to rules."""
        names: set[str] = set()
        for query in self.queries:
            found = required_event_names(query.node)
            if found is None:
                return None
            names |= found
        return names


def build_rule(asset: Asset) -> Rule:
    """Assumes the asset validated; raises ValueError otherwise."""
    data = asset.data
    queries = []
    for entry in data["queries"]:
        node = parse(entry["query"])
        queries.append(RuleQuery(entry["name"], entry["query"], node, compile_query(node), entry.get("group_by", []),
                                 entry.get("aggregation", _default_aggregation(data["method"])),
                                 entry.get("distinct", []), entry.get("metric") or _default_metric(data["method"])))
    names = {query.name for query in queries}
    cases = []
    for entry in data["cases"]:
        text = entry.get("condition")
        holds = compile_condition(text, names)[0] if text else None
        cases.append(RuleCase(entry.get("name", ""), entry["severity"], text, holds, entry.get("notify", [])))
    windows = {key: parse_duration(str(data.get(key, default))) for key, default in DEFAULTS.items()}
    new_value = data.get("new_value") or {}
    return Rule(
        id=data["id"], name=data["name"], method=data["method"], queries=queries, cases=cases,
        evaluation_window=windows["evaluation_window"], keep_alive=windows["keep_alive"],
        max_signal_duration=windows["max_signal_duration"], message=data["message"], tags=data.get("tags", []),
        enabled=data.get("enabled", True),
        learning_duration=parse_duration(str(new_value.get("learning_duration", "7d"))) if new_value or
        data["method"] == "new_value" else 0.0,
        forget_after=parse_duration(str(new_value.get("forget_after", "28d"))),
        instantaneous_baseline=bool(new_value.get("instantaneous_baseline", False)),
        baseline_user_locations=bool((data.get("impossible_travel") or {}).get("baseline_user_locations", False)),
        baseline_duration=parse_duration(str((data.get("impossible_travel") or {}).get("baseline_duration", "1d"))),
        overlaps_default=data.get("overlaps_default", []),
        excludes_actors={entry["actor"]: entry["reason"] for entry in data.get("excludes_actors", [])},
        description=str(data.get("description", "")), severity_reason=str(data.get("severity_reason", "")),
        nearest=str(data.get("nearest", "none")),
        tests=data.get("tests", []), source=asset,
        steps=[SequenceStep(step["name"], step["condition"], compile_condition(step["condition"], names)[0],
                            parse_duration(str(step["within"])),
                            parse_duration(str(step.get("after_previous", 0))) if position else 0.0)
               for position, step in enumerate((data.get("sequence") or {}).get("steps", []))],
    )


def _default_metric(method: str) -> str | None:
    return "@network.client.geoip" if method == "impossible_travel" else None  # what geo_data aggregates


def _default_aggregation(method: str) -> str:
    return {"new_value": "new_value", "impossible_travel": "geo_data"}.get(method, "count")
