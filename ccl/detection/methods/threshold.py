"""threshold: per group, each query aggregates the matching events of the last evaluation window;
the first case whose condition holds raises (or extends) a signal with its severity.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from ccl.detection.rules import Rule
from ccl.detection.signals import OpenSignals, Signal, field_value, group_key


class ThresholdDetector:
    def __init__(self, rule: Rule, out: list[Signal]):
        self.rule = rule
        self.signals = OpenSignals(rule, out)
        self.queries = rule.queries  # names are unique (validate), so a query's position stands for it
        self.group_by = rule.queries[0].group_by
        # Per group, per query position: the window's (time, event, sequence number), oldest first.
        self.windows: dict[Any, list[deque[tuple[float, dict[str, Any], int]]]] = {}
        self.sequence = 0  # numbers what enters a window, so that a window's newer part is its end
        # Per group, the signal its windows were last handed to and the last number handed: an
        # extended signal is handed only what entered since, not every event of the window again.
        self.handed: dict[Any, tuple[Signal, int]] = {}
        # Per group and query, how many events in the window carry each distinct value, so that a
        # cardinality is kept up to date instead of recounted for every event. Datadog's cardinality
        # counts exactly one field (distinctFields holds one entry); an event without it adds no
        # value. Counting @id makes a count replay-proof: a replayed activity has the id it had.
        self.distinct: dict[Any, list[dict[Any, int]]] = {}
        self._distinct_field = [query.distinct[0] if query.aggregation == "cardinality" and query.distinct else None
                                for query in self.queries]
        # Per query, what `feed` evaluates for every event the rule counts: its position, its name and
        # how it aggregates (the common count and cardinality are a length; sum and max read the window).
        self._plan = [(index, query.name, query.aggregation if query.aggregation in ("count", "cardinality")
                       else None) for index, query in enumerate(self.queries)]

    def feed(self, moment: float, event: dict[str, Any], matched: list[int]) -> None:
        key = group_key(event, self.group_by)
        if key is None:
            return
        windows = self.windows.get(key)
        if windows is None:
            windows = self.windows[key] = [deque() for _ in self.queries]
            distinct = self.distinct[key] = [{} for _ in self.queries]
        else:
            distinct = self.distinct[key]
        distinct_field = self._distinct_field
        for index in matched:
            self.sequence += 1
            windows[index].append((moment, event, self.sequence))
            if distinct_field[index] is not None:
                value = field_value(event, distinct_field[index])
                if value is not None:
                    counts = distinct[index]
                    counts[value] = counts.get(value, 0) + 1
        horizon = moment - self.rule.evaluation_window
        values = {}
        for index, name, length_of in self._plan:
            window = windows[index]
            if window and window[0][0] < horizon:
                self._expire(window, horizon, distinct_field[index], distinct[index])
            if length_of == "count":
                values[name] = float(len(window))
            elif length_of == "cardinality":
                values[name] = float(len(distinct[index]))
            else:
                values[name] = self._aggregate(self.queries[index], window)
        for case in self.rule.cases:  # the first that holds sets the severity
            if case.holds is None or case.holds(values):
                break
        else:
            return
        group = dict(zip(self.group_by, key, strict=True))
        handed = self.handed.get(key)
        if handed is not None and handed[0] is self.signals.extendable(key, moment):
            in_window = _entered_since(windows, handed[1])
        else:
            in_window = [(when, item) for window in windows for when, item, _ in window]
        signal = self.signals.raise_or_extend(key, group, case.severity, moment, in_window)
        self.handed[key] = (signal, self.sequence)

    @staticmethod
    def _expire(window: deque[tuple[float, dict[str, Any], int]], horizon: float, distinct_field: str | None,
                counts: dict[Any, int]) -> None:
        while window and window[0][0] < horizon:
            _, old, _ = window.popleft()
            if distinct_field is not None:
                value = field_value(old, distinct_field)
                if value is not None:
                    counts[value] -= 1
                    if not counts[value]:
                        del counts[value]

    @staticmethod
    def _aggregate(query: Any, window: deque[tuple[float, dict[str, Any], int]]) -> float:
        if query.aggregation in ("sum", "max"):
            numbers = [float(v) for _, e, _ in window
                       if isinstance(v := field_value(e, query.metric or ""), int | float)]
            if not numbers:
                return 0.0
            return float(sum(numbers) if query.aggregation == "sum" else max(numbers))
        return float(len(window))

    def forget_before(self, moment: float) -> None:
        """Drop the groups none of whose events is in the window of an event at `moment` or later."""
        horizon = moment - self.rule.evaluation_window
        for key in [key for key, windows in self.windows.items()
                    if all(not window or window[-1][0] < horizon for window in windows)]:
            del self.windows[key]
            self.distinct.pop(key, None)
            self.handed.pop(key, None)


def _entered_since(windows: list[deque[tuple[float, dict[str, Any], int]]],
                   since: int) -> list[tuple[float, dict[str, Any]]]:
    """What entered the windows after number `since`, window by window, oldest first: each window's end."""
    entered: list[tuple[float, dict[str, Any]]] = []
    for window in windows:
        newer = []
        for when, item, number in reversed(window):
            if number <= since:
                break
            newer.append((when, item))
        entered.extend(reversed(newer))
    return entered
