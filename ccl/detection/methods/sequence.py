"""sequence: per group, steps in order, each within `after_previous` of the one before; the last raises.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from ccl.detection.rules import Rule
from ccl.detection.signals import OpenSignals, Signal, group_key


class SequenceDetector:
    """Steps in order, per group: each holds over its own window, within `after_previous` of the last."""

    def __init__(self, rule: Rule, out: list[Signal]):
        self.rule = rule
        self.signals = OpenSignals(rule, out)
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
