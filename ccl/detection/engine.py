"""The offline detection engine: Datadog's detection methods, on event time, over normalized events.

Semantics (docs.datadoghq.com/security/cloud_siem/detection_rules/):
- threshold: per group (the queries' group_by values; an event missing one is not counted), each
  query aggregates (count, cardinality of its one `distinct` field, which an event without it does
  not add to, sum or max of `metric`) the matching events of
  the last `evaluation_window` (inclusive: an event exactly one window old still counts). Cases are
  evaluated in order and the first that holds sets the severity.
- a signal stays open while its case keeps holding: an event within `keep_alive` of the signal's last
  event, and within `max_signal_duration` of its first, joins it; otherwise a new signal starts.
- new_value: values of `metric` are learned per group, each group for `learning_duration` from its
  own first value; afterwards a value never seen (or not seen for `forget_after`) raises a signal.
  With a learning duration of 0, each group's first value is learned silently. See NewValueDetector.
- sequence: per group, steps in order; each step's condition holds over its own window, and a
  step must complete within its `after_previous` of the previous one, else the sequence starts
  over; the last step raises the signal with the events of every step.
- impossible_travel: per user (group_by), two consecutive located events more than 500 km apart at
  more than 1,000 km/h raise a signal. With `baseline_user_locations`, a user's first 24 hours (or
  `baseline_duration`, Datadog's baselineUserLocationsDuration: "the duration in days during which
  Datadog learns the user's regular access locations") only teach locations, and hops between
  locations known from that baseline are not signalled.
Events are processed in time order (the engine sorts them), never by wall clock. A streaming run
(ccl/detection/stream/detect.py) feeds them already sorted and calls `forget_before(t)` now and then: each
detector drops what no event at t or later can reach, so memory follows the rules, not the input.
"""

from __future__ import annotations

import gc
import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ccl.detection.query.match import values_at
from ccl.detection.rules import SEVERITIES, Rule, RuleCase

TRAVEL_MIN_KM = 500.0
TRAVEL_MIN_KMH = 1000.0
# Beyond this gap even two antipodal places (half the Earth's circumference) are slower than the
# minimum speed, so a user's last location can be forgotten.
TRAVEL_REACH_SECONDS = math.pi * 6371.0 / TRAVEL_MIN_KMH * 3600.0 + 1.0


@dataclass
class Signal:
    rule: str
    severity: str
    group: dict[str, Any]
    first_seen: float
    last_seen: float
    activity_ids: list[str] = field(default_factory=list)
    # Set once no later event can extend the signal: then it is final and can be written out.
    closed: bool = field(default=False, repr=False, compare=False)

    @property
    def count(self) -> int:
        return len(self.activity_ids)

    def to_json(self) -> dict[str, Any]:
        return {"rule": self.rule, "severity": self.severity, "group": self.group,
                "first_seen": _iso(self.first_seen), "last_seen": _iso(self.last_seen), "count": self.count,
                "activity_ids": self.activity_ids}


def event_time(event: dict[str, Any]) -> float | None:
    for key in ("timestamp", "created_at"):
        value = event.get(key)
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value).timestamp()
            except ValueError:
                continue
        if isinstance(value, int | float) and not isinstance(value, bool):
            return value / 1000.0 if value > 1e11 else float(value)
    return None


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def group_key(event: dict[str, Any], group_by: list[str]) -> tuple[Any, ...] | None:
    """The event's values of the group-by attributes; None when one is missing (Datadog skips those)."""
    values = tuple(_field_value(event, attribute) for attribute in group_by)
    return None if any(value is None for value in values) else values


def _field_value(event: dict[str, Any], attribute: str) -> Any:
    values = values_at(event, attribute.removeprefix("@").split("."))
    if not values:
        return None
    return values[0] if len(values) == 1 else tuple(str(v) for v in values)


class _Signals:
    """Open signals per group, extended within keep-alive and max signal duration."""

    def __init__(self, rule: Rule, out: list[Signal]):
        self.rule, self.out = rule, out
        self.open: dict[Any, Signal] = {}

    def raise_or_extend(self, key: Any, group: dict[str, Any], severity: str, now: float,
                        events: Iterable[tuple[float, dict[str, Any]]]) -> None:
        signal = self.open.get(key)
        if signal is not None and now - signal.last_seen <= self.rule.keep_alive \
                and now - signal.first_seen <= self.rule.max_signal_duration:
            if SEVERITIES.index(severity) > SEVERITIES.index(signal.severity):
                signal.severity = severity
        else:
            if signal is not None:
                _close(signal)
            signal = Signal(self.rule.id, severity, group, now, now)
            self.open[key] = signal
            self.out.append(signal)
            signal._ids = set()  # type: ignore[attr-defined]
        for moment, event in events:
            activity_id = str(event.get("id"))
            if activity_id not in signal._ids:  # type: ignore[attr-defined]
                signal._ids.add(activity_id)  # type: ignore[attr-defined]
                signal.activity_ids.append(activity_id)
                signal.first_seen = min(signal.first_seen, moment)
        signal.last_seen = max(signal.last_seen, now)

    def close_unreachable(self, moment: float) -> None:
        """Close the open signals that no event at `moment` or later can extend."""
        for key, signal in list(self.open.items()):
            if moment - signal.last_seen > self.rule.keep_alive \
                    or moment - signal.first_seen > self.rule.max_signal_duration:
                del self.open[key]
                _close(signal)


def _close(signal: Signal) -> None:
    signal.closed = True
    signal.__dict__.pop("_ids", None)  # only an open signal needs to know which ids it holds


class ThresholdDetector:
    def __init__(self, rule: Rule, out: list[Signal]):
        self.rule = rule
        self.signals = _Signals(rule, out)
        self.windows: dict[Any, dict[str, deque[tuple[float, dict[str, Any]]]]] = {}
        self.group_by = rule.queries[0].group_by
        # Per group and query, how many events in the window carry each distinct value, so that a
        # cardinality is kept up to date instead of recounted for every event.
        self.distinct: dict[Any, dict[str, dict[Any, int]]] = {}

    @staticmethod
    def _distinct_value(query: Any, event: dict[str, Any]) -> Any:
        # Datadog's cardinality counts exactly one field (distinctFields holds one entry); an event
        # without it adds no value. Counting @id makes a count replay-proof: a replayed activity
        # has the id it had the first time.
        return _field_value(event, query.distinct[0]) if query.distinct else None

    def feed(self, moment: float, event: dict[str, Any], matched: list[int]) -> None:
        key = group_key(event, self.group_by)
        if key is None:
            return
        group_values = list(key)
        windows = self.windows.setdefault(key, {query.name: deque() for query in self.rule.queries})
        distinct = self.distinct.setdefault(key, {query.name: {} for query in self.rule.queries})
        for index in matched:
            query = self.rule.queries[index]
            windows[query.name].append((moment, event))
            if query.aggregation == "cardinality":
                value = self._distinct_value(query, event)
                if value is not None:
                    distinct[query.name][value] = distinct[query.name].get(value, 0) + 1
        horizon = moment - self.rule.evaluation_window
        for query in self.rule.queries:
            window, counts = windows[query.name], distinct[query.name]
            while window and window[0][0] < horizon:
                _, old = window.popleft()
                if query.aggregation == "cardinality":
                    value = self._distinct_value(query, old)
                    if value is not None:
                        counts[value] -= 1
                        if not counts[value]:
                            del counts[value]
        values = {query.name: float(len(distinct[query.name])) if query.aggregation == "cardinality"
                  else self._aggregate(query, windows[query.name]) for query in self.rule.queries}
        case = _first_case(self.rule.cases, values)
        if case is None:
            return
        group = dict(zip(self.group_by, group_values, strict=True))
        in_window = [item for window in windows.values() for item in window]
        self.signals.raise_or_extend(key, group, case.severity, moment, in_window)

    @staticmethod
    def _aggregate(query: Any, window: deque[tuple[float, dict[str, Any]]]) -> float:
        if query.aggregation in ("sum", "max"):
            numbers = [float(v) for _, e in window if isinstance(v := _field_value(e, query.metric or ""), int | float)]
            if not numbers:
                return 0.0
            return float(sum(numbers) if query.aggregation == "sum" else max(numbers))
        return float(len(window))

    def forget_before(self, moment: float) -> None:
        """Drop the groups none of whose events is in the window of an event at `moment` or later."""
        horizon = moment - self.rule.evaluation_window
        for key in [key for key, windows in self.windows.items()
                    if all(not window or window[-1][0] < horizon for window in windows.values())]:
            del self.windows[key]
            self.distinct.pop(key, None)


class NewValueDetector:
    """New values of `metric`, learned per group, as Datadog documents newValueOptions.

    Datadog's new value page (docs.datadoghq.com/security/cloud_siem/detect_and_monitor/
    custom_detection_rules/new_value): "The group by field defines the scope within which new values
    are evaluated, such as per account", a rule "Triggers a signal when a value appears that has not
    been observed within the current scope", and with a learning duration of 7 days "the rule learns
    the values for the first seven days and then triggers on any new values after the seven days".
    The API reference (SecurityMonitoringRuleNewValueOptions in datadog-api-client): learningDuration
    is "The duration in days during which values are learned, and after which signals will be
    generated for values that weren't learned. If set to 0, a signal will be generated for all new
    values after the first value is learned"; forgetAfter is "The duration in days after which a
    learned value is forgotten"; with instantaneousBaseline "Datadog uses previous values that fall
    within the defined learning window to construct the baseline ... rather than relying solely on
    gradual learning over time".

    So learning is per scope: a group's learning period starts with its own first value (a new
    hire's first week teaches their countries, instead of being "new" against everyone else's).
    Events older than the rule (`Rule.deployed_at`; by default the rule starts with the first event)
    are ignored, except that an instantaneous baseline learns those within the learning duration
    before the deployment, and the groups it saw then alert from the deployment on.
    """

    def __init__(self, rule: Rule, out: list[Signal]):
        self.rule = rule
        self.signals = _Signals(rule, out)
        self.deployed_at = rule.deployed_at
        self.learning_since: dict[Any, float] = {}
        self.known: dict[Any, dict[Any, float]] = {}

    def feed(self, moment: float, event: dict[str, Any], matched: list[int]) -> None:
        query = self.rule.queries[matched[0]]
        group_values = [_field_value(event, attribute) for attribute in query.group_by]
        value = _field_value(event, query.metric or "")
        if value is None or any(v is None for v in group_values):
            return
        if self.deployed_at is None:
            self.deployed_at = moment
        key = tuple(group_values)
        known = self.known.setdefault(key, {})
        learning_duration = self.rule.learning_duration
        if moment < self.deployed_at:
            if self.rule.instantaneous_baseline and moment >= self.deployed_at - learning_duration:
                known[value] = moment
                self.learning_since[key] = self.deployed_at - learning_duration
            return
        since = self.learning_since.setdefault(key, moment)
        learning = moment - since < learning_duration
        seen_at = known.get(value)
        is_new = seen_at is None or moment - seen_at > self.rule.forget_after
        first_of_group = not known  # with no learning duration, the group's first value is learned
        known[value] = moment
        if learning or not is_new or first_of_group:
            return
        group = {**dict(zip(query.group_by, group_values, strict=True)), query.metric: value}
        self.signals.raise_or_extend((key, value), group, self.rule.cases[0].severity, moment, [(moment, event)])

    def forget_before(self, moment: float) -> None:
        """Drop values that an event at `moment` or later would find forgotten anyway (forget_after).

        Each group keeps one entry, so that a group that was seen stays different from one never seen.
        """
        horizon = moment - self.rule.forget_after
        for known in self.known.values():
            stale = [value for value, seen_at in known.items() if seen_at < horizon]
            for value in stale[1:] if len(stale) == len(known) else stale:
                del known[value]


class ImpossibleTravelDetector:
    def __init__(self, rule: Rule, out: list[Signal]):
        self.rule = rule
        self.signals = _Signals(rule, out)
        self.last: dict[Any, tuple[float, float, float, tuple[Any, Any], dict[str, Any]]] = {}
        self.first_seen: dict[Any, float] = {}
        self.baseline: dict[Any, set[tuple[Any, Any]]] = {}

    def feed(self, moment: float, event: dict[str, Any], matched: list[int]) -> None:
        query = self.rule.queries[matched[0]]
        group_values = [_field_value(event, attribute) for attribute in query.group_by]
        geo = ((event.get("network") or {}).get("client") or {}).get("geoip") or {}
        location = geo.get("location") or {}
        latitude, longitude = location.get("latitude"), location.get("longitude")
        if any(v is None for v in group_values) or not isinstance(latitude, int | float) \
                or not isinstance(longitude, int | float):
            return
        key = tuple(group_values)
        place = ((geo.get("country") or {}).get("iso_code"), (geo.get("city") or {}).get("name"))
        self.first_seen.setdefault(key, moment)
        in_baseline = self.rule.baseline_user_locations and moment - self.first_seen[key] < self.rule.baseline_duration
        previous = self.last.get(key)
        self.last[key] = (moment, float(latitude), float(longitude), place, event)
        if in_baseline:
            self.baseline.setdefault(key, set()).add(place)
            return
        if previous is None:
            return
        before, lat0, lon0, place0, event0 = previous
        if self.rule.baseline_user_locations and {place0, place} <= self.baseline.get(key, set()):
            return
        distance = _haversine_km(lat0, lon0, float(latitude), float(longitude))
        hours = max(moment - before, 1.0) / 3600.0
        if distance > TRAVEL_MIN_KM and distance / hours > TRAVEL_MIN_KMH:
            group = dict(zip(query.group_by, group_values, strict=True))
            self.signals.raise_or_extend(key, group, self.rule.cases[0].severity, moment,
                                         [(before, event0), (moment, event)])

    def forget_before(self, moment: float) -> None:
        """Drop last locations too old for any hop from them to be fast enough (half the Earth at 1,000 km/h)."""
        horizon = moment - TRAVEL_REACH_SECONDS
        for key in [key for key, last in self.last.items() if last[0] < horizon]:
            del self.last[key]


class SequenceDetector:
    """Steps in order, per group: each holds over its own window, within `after_previous` of the last."""

    def __init__(self, rule: Rule, out: list[Signal]):
        self.rule = rule
        self.signals = _Signals(rule, out)
        self.group_by = rule.queries[0].group_by
        self.longest = max(step.within for step in rule.steps)
        self.windows: dict[Any, dict[str, deque[tuple[float, dict[str, Any]]]]] = {}
        self.progress: dict[Any, tuple[int, float, list[tuple[float, dict[str, Any]]]]] = {}

    def feed(self, moment: float, event: dict[str, Any], matched: list[int]) -> None:
        key = group_key(event, self.group_by)
        if key is None:
            return
        group_values = list(key)
        windows = self.windows.setdefault(key, {query.name: deque() for query in self.rule.queries})
        for index in matched:
            windows[self.rule.queries[index].name].append((moment, event))
        for window in windows.values():
            while window and window[0][0] < moment - self.longest:
                window.popleft()
        step_index, completed_at, collected = self.progress.get(key, (0, 0.0, []))
        if step_index and moment - completed_at > self.rule.steps[step_index].after_previous:
            step_index, collected = 0, []  # too late for the next step: the sequence starts over
        step = self.rule.steps[step_index]
        in_step = {name: [item for item in window if item[0] >= moment - step.within]
                   for name, window in windows.items()}
        if not step.holds({name: float(len(items)) for name, items in in_step.items()}):
            self.progress[key] = (step_index, completed_at, collected)
            return
        collected = collected + [item for items in in_step.values() for item in items]
        if step_index + 1 < len(self.rule.steps):
            self.progress[key] = (step_index + 1, moment, collected)
            return
        self.progress[key] = (0, 0.0, [])
        group = dict(zip(self.group_by, group_values, strict=True))
        self.signals.raise_or_extend(key, group, self.rule.cases[0].severity, moment, collected)

    def forget_before(self, moment: float) -> None:
        """Drop groups with no event in any step's window and no sequence an event at `moment` could continue."""
        horizon = moment - self.longest
        for key in list(self.windows):
            if any(window and window[-1][0] >= horizon for window in self.windows[key].values()):
                continue
            step_index, completed_at, _ = self.progress.get(key, (0, 0.0, []))
            if step_index and moment - completed_at <= self.rule.steps[step_index].after_previous:
                continue
            del self.windows[key]
            self.progress.pop(key, None)


def _haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(a))


def _first_case(cases: list[RuleCase], values: dict[str, float]) -> RuleCase | None:
    for case in cases:
        if case.holds is None or case.holds(values):
            return case
    return None


DETECTORS = {"threshold": ThresholdDetector, "new_value": NewValueDetector,
             "impossible_travel": ImpossibleTravelDetector, "sequence": SequenceDetector}


class Engine:
    """Runs a rule set over events; dispatches each event only to rules that can match its name."""

    def __init__(self, rules: list[Rule]):
        self.rules = [rule for rule in rules if rule.enabled]
        self.signals: list[Signal] = []
        self._in_order = [DETECTORS[rule.method](rule, self.signals) for rule in self.rules]
        self._detectors = {rule.id: detector for rule, detector in zip(self.rules, self._in_order, strict=True)}
        self._position = {id(rule): position for position, rule in enumerate(self.rules)}
        self._by_name: dict[str, list[Rule]] = {}
        self._any_name: list[Rule] = []
        for rule in self.rules:
            names = rule.event_names()
            if names is None:
                self._any_name.append(rule)
            else:
                for name in names:
                    self._by_name.setdefault(name, []).append(rule)

    def event_names(self) -> set[str] | None:
        """Names of the events some rule can match; None when a rule may match any event."""
        return None if self._any_name else set(self._by_name)

    def run(self, events: Iterable[dict[str, Any]]) -> list[Signal]:
        # The windows allocate a tuple per matching event while millions of event dicts are alive:
        # the cyclic collector would walk all of them again and again (nothing here is cyclic).
        collecting = gc.isenabled()
        gc.disable()
        try:
            timed = [(moment, index, event) for index, event in enumerate(events)
                     if (moment := event_time(event)) is not None]
            timed.sort(key=lambda item: (item[0], item[1]))
            for moment, _, event in timed:
                self.feed(moment, event)
        finally:
            if collecting:
                gc.enable()
        return self.signals

    def feed(self, moment: float, event: dict[str, Any]) -> None:
        self.feed_matched(moment, event, self.matches(event))

    def matches(self, event: dict[str, Any]) -> list[tuple[int, list[int]]]:
        """(rule position, indices of its queries the event matches), in the order rules see the event.

        Separate from `feed_matched` so that matching can run in other processes than the detectors.
        """
        name = (event.get("evt") or {}).get("name")
        candidates = self._by_name.get(name, []) if isinstance(name, str) else []
        found = []
        for rule in (*candidates, *self._any_name) if self._any_name else candidates:
            matched = [index for index, query in enumerate(rule.queries) if query.matches(event)]
            if matched:
                found.append((self._position[id(rule)], matched))
        return found

    def feed_matched(self, moment: float, event: dict[str, Any], matches: list[tuple[int, list[int]]]) -> None:
        for position, matched in matches:
            self._in_order[position].feed(moment, event, matched)

    # -- streaming: events arrive already in time order, and memory stays bounded by the rules' state

    def forget_before(self, moment: float) -> None:
        """Drop what no event at `moment` or later can reach; close the signals none can extend.

        Only valid once every event before `moment` has been fed: a streaming run calls it now and
        then with the time of the event it just fed. Signals are the same as without it.
        """
        for detector in self._in_order:
            forget = getattr(detector, "forget_before", None)
            if forget is not None:
                forget(moment)
            detector.signals.close_unreachable(moment)

    def take_finished(self) -> list[Signal]:
        """The signals that can no longer change, in the order they were raised; each is handed out once.

        A signal raised after one still open waits for it, so the order is the same as `run`'s.
        """
        done = 0
        for signal in self.signals:
            if not signal.closed:
                break
            done += 1
        finished = self.signals[:done]
        del self.signals[:done]
        return finished

    def finish(self) -> list[Signal]:
        """Every signal not handed out yet: the input has ended, so none can change any more."""
        remaining = self.signals[:]
        del self.signals[:]
        return remaining
