"""What every processor family shares: attribute paths on an event, the emulator a handler runs in, the refusal."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from ccl.vector.geoip import GeoIpTable

MISSING = object()


class UnsupportedProcessor(Exception):
    pass


class Emulator(Protocol):
    """What a processor's handler may use of the emulator running it."""

    geoip: GeoIpTable | None
    normalize: Any  # the production normalize.vrl, compiled
    geoip_map: Any  # the production geoip.vrl, compiled

    def matches(self, query: str, event: dict[str, Any]) -> bool: ...


# A processor's handler: (the emulator, the processor's JSON, the event it changes in place).
Handler = Callable[[Emulator, dict[str, Any], dict[str, Any]], None]


def get(event: dict[str, Any], path: str) -> Any:
    node: Any = event
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return MISSING
        node = node[part]
    return node


def put(event: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    node = event
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[parts[-1]] = value


def delete(event: dict[str, Any], path: str) -> None:
    parts = path.split(".")
    node: Any = event
    for part in parts[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict):
        node.pop(parts[-1], None)
