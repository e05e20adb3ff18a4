"""impossible_travel: per user, two consecutive located events too far apart for the time between them.
"""

from __future__ import annotations

import math
from typing import Any

from ccl.detection.rules import Rule
from ccl.detection.signals import OpenSignals, Signal, field_value

TRAVEL_MIN_KM = 500.0
TRAVEL_MIN_KMH = 1000.0
# Beyond this gap even two antipodal places (half the Earth's circumference) are slower than the
# minimum speed, so a user's last location can be forgotten.
TRAVEL_REACH_SECONDS = math.pi * 6371.0 / TRAVEL_MIN_KMH * 3600.0 + 1.0


class ImpossibleTravelDetector:
    def __init__(self, rule: Rule, out: list[Signal]):
        self.rule = rule
        self.signals = OpenSignals(rule, out)
        self.last: dict[Any, tuple[float, float, float, tuple[Any, Any], dict[str, Any]]] = {}
        self.first_seen: dict[Any, float] = {}
        self.baseline: dict[Any, set[tuple[Any, Any]]] = {}

    def feed(self, moment: float, event: dict[str, Any], matched: list[int]) -> None:
        query = self.rule.queries[matched[0]]
        group_values = [field_value(event, attribute) for attribute in query.group_by]
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
        distance = haversine_km(lat0, lon0, float(latitude), float(longitude))
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


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(a))
