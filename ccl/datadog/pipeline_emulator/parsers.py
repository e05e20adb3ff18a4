"""Parsing processors: dates (the date remapper, the grok parser's `%{date(...)}` rules), GeoIP, user agents."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from ccl.datadog.pipeline_emulator.fields import MISSING, Emulator, Handler, UnsupportedProcessor, get, put


def date_remapper(emulator: Emulator, processor: dict[str, Any], event: dict[str, Any]) -> None:
    for source in processor["sources"]:
        value = get(event, source)
        if isinstance(value, str):
            try:
                moment = datetime.fromisoformat(value)
            except ValueError:
                continue
            event["timestamp"] = int(moment.timestamp() * 1000)
            return


def grok_parser(emulator: Emulator, processor: dict[str, Any], event: dict[str, Any]) -> None:
    value = get(event, processor["source"])
    if not isinstance(value, str):
        return
    for line in processor["grok"]["match_rules"].splitlines():
        if not line.strip():
            continue
        match = re.fullmatch(r'\s*\S+\s+%\{date\("([^"]+)"\):([A-Za-z0-9_.]+)\}\s*', line)
        if match is None:
            raise UnsupportedProcessor(f"grok rule {line.strip()!r}: only %{{date(...)}} rules are emulated")
        moment = _parse_java_date(value, match.group(1))
        if moment is not None:
            put(event, match.group(2), moment)
            return


def geo_ip_parser(emulator: Emulator, processor: dict[str, Any], event: dict[str, Any]) -> None:
    target = processor.get("target", "network.client.geoip")
    for source in processor["sources"]:
        ip = get(event, source)
        if not isinstance(ip, str):
            continue
        record = emulator.geoip.lookup(ip) if emulator.geoip else None
        if record is not None:
            mapped = emulator.geoip_map.run({"ccl_geoip_lookup": record})
            put(event, target, ((mapped.get("network") or {}).get("client") or {}).get("geoip", {}))
        elif get(event, target) is MISSING:
            put(event, target, {})  # what Datadog writes for an address it cannot place
        return


def user_agent_parser(emulator: Emulator, processor: dict[str, Any], event: dict[str, Any]) -> None:
    for source in processor["sources"]:
        agent = get(event, source)
        if isinstance(agent, str) and agent:
            parsed = emulator.normalize.run({"actor": {"user_agent": agent}})
            details = (parsed.get("http") or {}).get("useragent_details")
            if details is not None:
                put(event, processor.get("target", "http.useragent_details"), details)
            return


JAVA_DATE = [("yyyy", r"(?P<Y>\d{4})"), ("MM", r"(?P<m>\d{2})"), ("dd", r"(?P<d>\d{2})"), ("HH", r"(?P<H>\d{2})"),
             ("mm", r"(?P<M>\d{2})"), ("ss", r"(?P<S>\d{2})"), ("SSSSSS", r"(?P<f>\d{6})"), ("SSS", r"(?P<f>\d{3})")]


def _parse_java_date(text: str, pattern: str) -> int | None:
    regex, i = "", 0
    while i < len(pattern):
        if pattern[i] == "'":
            end = pattern.index("'", i + 1)
            regex += re.escape(pattern[i + 1:end])
            i = end + 1
            continue
        for token, group in JAVA_DATE:
            if pattern.startswith(token, i):
                regex += group
                i += len(token)
                break
        else:
            regex += re.escape(pattern[i])
            i += 1
    match = re.fullmatch(regex, text)
    if match is None:
        return None
    parts = match.groupdict()
    fraction = (parts.get("f") or "0").ljust(6, "0")
    moment = datetime(int(parts["Y"]), int(parts["m"]), int(parts["d"]), int(parts["H"]), int(parts["M"]),
                      int(parts["S"]), int(fraction), tzinfo=UTC)
    return int(moment.timestamp() * 1000)


PARSERS: dict[str, Handler] = {"date-remapper": date_remapper, "grok-parser": grok_parser,
                                "geo-ip-parser": geo_ip_parser, "user-agent-parser": user_agent_parser}
