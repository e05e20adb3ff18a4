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
Each method is a module of ccl/detection/methods/; ccl/detection/signals.py holds what they share.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable
from typing import Any

from ccl.detection.methods import DETECTORS
from ccl.detection.rules import Rule
from ccl.detection.signals import Signal, event_time


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

    def candidates(self, name: Any) -> list[int]:
        """Positions of the rules an event named `name` (an `evt.name`; anything else for none) can match."""
        named = self._by_name.get(name, []) if isinstance(name, str) else []
        return [self._position[id(rule)] for rule in (*named, *self._any_name)]

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
