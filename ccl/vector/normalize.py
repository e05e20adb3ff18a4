"""Normalization in Python with the production VRL: vector/normalize.vrl, then GeoIP.

Mirrors the Vector topology (vector.toml): normalize -> [geoip_lookup] -> geoip -> ..., including
what happens when normalize.vrl fails on an event: the activity goes on unnormalized, marked with
the error, instead of being dropped.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from ccl.vector.geoip import GeoIpTable
from ccl.vector.vrl import VrlError, VrlProgram, vrl_time_to_rfc3339

# An activity is a few levels deep; a line nested past what the JSON codecs recurse through is
# hostile or broken, and is skipped like any unreadable line with this reason.
TOO_DEEP = "nested too deeply to be an activity"

SOURCE = "claude-compliance-logs"


def _program(name: str) -> VrlProgram:
    text = resources.files("ccl").joinpath(f"data/{name}").read_text(encoding="utf-8")
    return VrlProgram(text, f"vector/{name}")


class Normalizer:
    def __init__(self, geoip_db: Path | None = None):
        self._normalize = _program("normalize.vrl")
        self._geoip = GeoIpTable(geoip_db) if geoip_db else None
        self._geoip_map = _program("geoip.vrl") if geoip_db else None
        self.events = 0
        self.with_geoip = 0
        self.failed = 0

    def normalize(self, activity: dict[str, Any]) -> dict[str, Any]:
        return self._normalized(activity, self._normalize)

    def _normalized(self, activity: dict[str, Any], program: Any) -> dict[str, Any]:
        """`program` (normalize.vrl or a stand-in with the same `run`) and what follows it in Vector."""
        self.events += 1
        try:
            event = program.run(activity)
        except VrlError as error:
            self.failed += 1
            event = {**activity, "ddsource": SOURCE, "service": SOURCE,
                     "ccl": {"normalize_error": str(error).strip()}}
        if self._geoip is not None and self._geoip_map is not None:
            event = self._add_geoip(event)
        if "timestamp" in event:
            event["timestamp"] = vrl_time_to_rfc3339(event["timestamp"])
        return event

    def _add_geoip(self, event: dict[str, Any]) -> dict[str, Any]:
        ip = ((event.get("network") or {}).get("client") or {}).get("ip")
        # Same guard as vector/geoip_lookup.vrl.
        if not isinstance(ip, str) or ip == "0.0.0.0":
            return event
        record = self._geoip.lookup(ip) if self._geoip else None
        if record is None:
            return event
        event = self._geoip_map.run({**event, "ccl_geoip_lookup": record}) if self._geoip_map else event
        self.with_geoip += 1
        return event
