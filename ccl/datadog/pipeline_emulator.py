"""A small offline emulation of the Datadog log pipeline processors our pipeline uses.

Enough to prove, without a Datadog org, that pipelines/claude-compliance-logs.yaml produces
Datadog's attributes on raw activities and leaves already-normalized events unchanged. Semantics
follow docs.datadoghq.com/logs/log_configuration/processors and the API reference:
- attribute and schema remappers take the first source that exists; `preserve_source` keeps it,
  `override_on_conflict` lets them replace an existing target; `target_format` converts;
- a category processor (and a schema category mapper) applies the first category whose query
  matches; a schema category mapper whose match is its fallback ("Other") takes the name from the
  fallback's source attribute, which is what Datadog's expected output shows;
- a string builder writes its template; with a missing attribute it is skipped unless
  `is_replace_missing`;
- the date remapper sets the official date (epoch ms) from the first parsable source; the grok
  parser supports the `%{date("...")}` rules the pipeline uses;
- the GeoIP parser writes Datadog's geoip attributes (an empty object when nothing is found); the
  user-agent parser writes Datadog's useragent_details (via the production VRL);
- a nested pipeline runs its processors when its filter matches.
Any other processor type is refused, never silently skipped.
"""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime
from typing import Any

from ccl.detection.query.match import compile_query
from ccl.vector.geoip import GeoIpTable
from ccl.vector.normalize import _program

CATEGORY_NAMES = {1: "System Activity", 2: "Findings", 3: "Identity & Access Management", 4: "Network Activity",
                  5: "Discovery", 6: "Application Activity"}
MISSING = object()


class UnsupportedProcessor(Exception):
    pass


class PipelineEmulator:
    def __init__(self, pipeline: dict[str, Any], geoip: GeoIpTable | None = None):
        self.pipeline = pipeline
        self.geoip = geoip
        self._queries: dict[str, Any] = {}
        self._normalize = _program("normalize.vrl")
        self._geoip_map = _program("geoip.vrl")

    def matches(self, query: str, event: dict[str, Any]) -> bool:
        if query not in self._queries:
            self._queries[query] = compile_query(query)
        return self._queries[query](event)

    def run(self, event: dict[str, Any]) -> dict[str, Any]:
        """The event after the pipeline (a copy), if its filter matches."""
        event = copy.deepcopy(event)
        if self.matches(self.pipeline["filter"]["query"], {**event, "ddsource": event.get("ddsource", "")}):
            self._processors(self.pipeline["processors"], event)
        return event

    def _processors(self, processors: list[dict[str, Any]], event: dict[str, Any]) -> None:
        for processor in processors:
            if processor.get("is_enabled") is False:
                continue
            handler = getattr(self, "_" + processor["type"].replace("-", "_"), None)
            if handler is None:
                raise UnsupportedProcessor(f"the emulator does not run {processor['type']!r} ({processor['name']})")
            handler(processor, event)

    # -- processors ---------------------------------------------------------------------------

    def _pipeline(self, processor: dict[str, Any], event: dict[str, Any]) -> None:
        if self.matches((processor.get("filter") or {}).get("query", "*"), event):
            self._processors(processor.get("processors", []), event)

    def _date_remapper(self, processor: dict[str, Any], event: dict[str, Any]) -> None:
        for source in processor["sources"]:
            value = get(event, source)
            if isinstance(value, str):
                try:
                    moment = datetime.fromisoformat(value)
                except ValueError:
                    continue
                event["timestamp"] = int(moment.timestamp() * 1000)
                return

    def _attribute_remapper(self, processor: dict[str, Any], event: dict[str, Any]) -> None:
        if processor.get("source_type", "attribute") != "attribute" or \
                processor.get("target_type", "attribute") != "attribute":
            raise UnsupportedProcessor("tag remapping is not emulated")
        remap(event, processor)

    def _category_processor(self, processor: dict[str, Any], event: dict[str, Any]) -> None:
        for category in processor["categories"]:
            if self.matches(category["filter"]["query"], event):
                put(event, processor["target"], category["name"])
                return

    def _status_remapper(self, processor: dict[str, Any], event: dict[str, Any]) -> None:
        for source in processor["sources"]:
            value = get(event, source)
            if value is not MISSING and value is not None:
                event["status"] = value
                return

    def _string_builder_processor(self, processor: dict[str, Any], event: dict[str, Any]) -> None:
        missing = False

        def substitute(match: re.Match[str]) -> str:
            nonlocal missing
            value = get(event, match.group(1))
            if value is MISSING or value is None:
                missing = True
                return ""
            return str(value)

        text = re.sub(r"%\{([^}]+)\}", substitute, processor["template"])
        if missing and not processor.get("is_replace_missing", False):
            return
        put(event, processor["target"], text)

    def _grok_parser(self, processor: dict[str, Any], event: dict[str, Any]) -> None:
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

    def _array_processor(self, processor: dict[str, Any], event: dict[str, Any]) -> None:
        operation = processor["operation"]
        if operation["type"] != "append":
            raise UnsupportedProcessor(f"array operation {operation['type']!r} is not emulated")
        value = get(event, operation["source"])
        if value is MISSING:
            return
        target = get(event, operation["target"])
        items = list(target) if isinstance(target, list) else ([] if target is MISSING else [target])
        items.extend(value if isinstance(value, list) else [value])
        put(event, operation["target"], items)
        if not operation.get("preserve_source", True):
            delete(event, operation["source"])

    def _geo_ip_parser(self, processor: dict[str, Any], event: dict[str, Any]) -> None:
        target = processor.get("target", "network.client.geoip")
        for source in processor["sources"]:
            ip = get(event, source)
            if not isinstance(ip, str):
                continue
            record = self.geoip.lookup(ip) if self.geoip else None
            if record is not None:
                mapped = self._geoip_map.run({"ccl_geoip_lookup": record})
                put(event, target, ((mapped.get("network") or {}).get("client") or {}).get("geoip", {}))
            elif get(event, target) is MISSING:
                put(event, target, {})  # what Datadog writes for an address it cannot place
            return

    def _user_agent_parser(self, processor: dict[str, Any], event: dict[str, Any]) -> None:
        for source in processor["sources"]:
            agent = get(event, source)
            if isinstance(agent, str) and agent:
                parsed = self._normalize.run({"actor": {"user_agent": agent}})
                details = (parsed.get("http") or {}).get("useragent_details")
                if details is not None:
                    put(event, processor.get("target", "http.useragent_details"), details)
                return

    def _schema_processor(self, processor: dict[str, Any], event: dict[str, Any]) -> None:
        schema = processor["schema"]
        class_uid = int(schema["class_uid"])
        put(event, "ocsf.class_uid", class_uid)
        put(event, "ocsf.class_name", schema["class_name"])
        put(event, "ocsf.category_uid", class_uid // 1000)
        put(event, "ocsf.category_name", CATEGORY_NAMES.get(class_uid // 1000, "Other"))
        for mapper in processor["mappers"]:
            if mapper["type"] == "schema-remapper":
                remap(event, mapper)
            elif mapper["type"] == "schema-category-mapper":
                self._category_mapper(mapper, event)
            else:
                raise UnsupportedProcessor(f"schema mapper {mapper['type']!r} is not emulated")

    def _category_mapper(self, mapper: dict[str, Any], event: dict[str, Any]) -> None:
        targets = mapper["targets"]
        fallback = mapper.get("fallback") or {}
        for category in mapper["categories"]:
            if not self.matches(category["filter"]["query"], event):
                continue
            name, identifier = category["name"], category["id"]
            values = fallback.get("values") or {}
            if values and name == values.get(targets["name"]) and str(identifier) == str(values.get(targets["id"])):
                for source in (fallback.get("sources") or {}).get(targets["name"], []):
                    value = get(event, source)
                    if value is not MISSING and value is not None:
                        name = value
                        break
            put(event, targets["name"], name)
            put(event, targets["id"], int(identifier))
            return


def remap(event: dict[str, Any], processor: dict[str, Any]) -> None:
    for source in processor["sources"]:
        value = get(event, source)
        if value is MISSING or value is None:
            continue
        target = processor["target"]
        if get(event, target) is not MISSING and not processor.get("override_on_conflict", False) \
                and source != target:
            return
        put(event, target, _convert(value, processor.get("target_format", "auto")))
        if not processor.get("preserve_source", False) and source != target:
            delete(event, source)
        return


def _convert(value: Any, target_format: str) -> Any:
    try:
        if target_format == "integer":
            return int(value)
        if target_format == "double":
            return float(value)
        if target_format == "string":
            return str(value)
    except (TypeError, ValueError):
        return value
    return value


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
