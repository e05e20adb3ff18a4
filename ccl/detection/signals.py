"""Signals, and what every detection method shares: an event's time, its group, its field values.

A signal stays open while its case keeps holding: an event within `keep_alive` of the signal's last event,
and within `max_signal_duration` of its first, joins it; otherwise a new signal starts (OpenSignals).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ccl.detection.query.match import THROUGH_ARRAYS, plain_value_at, values_at
from ccl.detection.rules import SEVERITIES, Rule


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
    if len(group_by) == 1:  # the usual case, for every event a rule counts
        value = field_value(event, group_by[0])
        return None if value is None else (value,)
    values = tuple([field_value(event, attribute) for attribute in group_by])
    return None if None in values else values


# Attribute -> its path; the attributes are the rules' own (group by, distinct, metric): a few dozen.
_PATHS: dict[str, list[str]] = {}


def field_value(event: dict[str, Any], attribute: str) -> Any:
    """The one value at `attribute` (`@a.b`), a tuple of texts if several (arrays), None if none."""
    path = _PATHS.get(attribute)
    if path is None:
        path = _PATHS[attribute] = attribute.removeprefix("@").split(".")
    node = plain_value_at(event, path)
    if node is not THROUGH_ARRAYS:
        return node
    values = values_at(event, path)
    if not values:
        return None
    return values[0] if len(values) == 1 else tuple(str(v) for v in values)


class OpenSignals:
    """Open signals per group, extended within keep-alive and max signal duration."""

    def __init__(self, rule: Rule, out: list[Signal]):
        self.rule, self.out = rule, out
        self.open: dict[Any, Signal] = {}

    def extendable(self, key: Any, now: float) -> Signal | None:
        """The group's open signal if an event at `now` would extend it (else one would be raised)."""
        signal = self.open.get(key)
        if signal is not None and now - signal.last_seen <= self.rule.keep_alive \
                and now - signal.first_seen <= self.rule.max_signal_duration:
            return signal
        return None

    def raise_or_extend(self, key: Any, group: dict[str, Any], severity: str, now: float,
                        events: Iterable[tuple[float, dict[str, Any]]]) -> Signal:
        """Extend the group's signal with `events` (ids it holds already are skipped), or raise one."""
        signal = self.extendable(key, now)
        if signal is not None:
            if SEVERITIES.index(severity) > SEVERITIES.index(signal.severity):
                signal.severity = severity
        else:
            if key in self.open:
                _close(self.open[key])
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
        return signal

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
