"""threshold: per group, each query aggregates the matching events of the last evaluation window;
the first case whose condition holds raises (or extends) a signal with its severity.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from ccl.detection.rules import Rule, RuleCase
from ccl.detection.signals import OpenSignals, Signal, field_value, group_key


class ThresholdDetector:
    def __init__(self, rule: Rule, out: list[Signal]):
        self.rule = rule
        self.signals = OpenSignals(rule, out)
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
        return field_value(event, query.distinct[0]) if query.distinct else None

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
        case = first_case(self.rule.cases, values)
        if case is None:
            return
        group = dict(zip(self.group_by, group_values, strict=True))
        in_window = [item for window in windows.values() for item in window]
        self.signals.raise_or_extend(key, group, case.severity, moment, in_window)

    @staticmethod
    def _aggregate(query: Any, window: deque[tuple[float, dict[str, Any]]]) -> float:
        if query.aggregation in ("sum", "max"):
            numbers = [float(v) for _, e in window if isinstance(v := field_value(e, query.metric or ""), int | float)]
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


def first_case(cases: list[RuleCase], values: dict[str, float]) -> RuleCase | None:
    for case in cases:
        if case.holds is None or case.holds(values):
            return case
    return None
