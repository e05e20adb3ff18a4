"""`ccl render`: YAML assets -> the exact Datadog API payloads, deterministic byte for byte.

pipelines/*.json (v1 logs pipeline, snake_case, every processor is_enabled), dashboards/*.json
(v1), rules/*.json (v2 flat security monitoring rule), monitors/*.json (v1 log alert). Each
payload carries the stable key of its file, which is how `ccl plan` recognizes what it owns:
rules and monitors the tags `ccl:<id>` and `managed-by:ccl`, pipelines and dashboards a marker
as the last line of the description.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ccl.content.assets import Asset
from ccl.detection.rules import build_rule
from collector.timeparse import parse_duration

SOURCE = "claude-compliance-logs"
ACTIVITIES = f"source:{SOURCE}"
COLLECTOR = "service:claude-compliance-collector"
TEMPLATE_VARIABLES = [
    {"name": "org", "prefix": "@organization_id", "available_values": [], "defaults": ["*"]},
    {"name": "actor_type", "prefix": "@actor.type", "available_values": [], "defaults": ["*"]},
    {"name": "event_name", "prefix": "@evt.name", "available_values": [], "defaults": ["*"]},
]
KIND_DIRECTORY = {"pipeline": "pipelines", "dashboard": "dashboards", "rule": "rules", "monitor": "monitors"}


# Ownership (ccl/datadog/ownership.py): the key of the file, and a fixed marker that says ccl made it.
OWNERSHIP_TAG_PREFIX = "ccl:"
MANAGED_TAG = "managed-by:ccl"


def marker(asset_id: str) -> str:
    return f"[managed by ccl: {asset_id}]"


def ownership_tag(asset_id: str) -> str:
    return f"{OWNERSHIP_TAG_PREFIX}{asset_id}"


def render(asset: Asset) -> dict[str, Any]:
    return {"rule": render_rule, "dashboard": render_dashboard, "monitor": render_monitor,
            "pipeline": render_pipeline}[asset.kind](asset)


def dump(payload: dict[str, Any]) -> str:
    return json.dumps(payload, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_all(assets: list[Asset], out: Path) -> list[Path]:
    written = []
    for asset in sorted(assets, key=lambda a: (a.kind, a.id)):
        target = out / KIND_DIRECTORY[asset.kind] / f"{asset.id}.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        text = dump(render(asset))
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")
        written.append(target)
    return written


def scoped(query: str, scope: str = ACTIVITIES) -> str:
    query = query.strip()
    return scope if query in ("", "*") else f"{scope} ({query})"


# -- rules ----------------------------------------------------------------------------------------

def render_rule(asset: Asset) -> dict[str, Any]:
    rule = build_rule(asset)
    queries = []
    for query in rule.queries:
        entry: dict[str, Any] = {
            "name": query.name, "query": scoped(query.text), "dataSource": "logs",
            "aggregation": query.aggregation, "groupByFields": list(query.group_by),
            "distinctFields": list(query.distinct), "hasOptionalGroupByFields": False,
        }
        if query.metric:
            # `metrics` (the model marks `metric` deprecated); geo_data takes @network.client.geoip, as in
            # the impossible travel cassettes of datadog-api-client and terraform-provider-datadog.
            entry["metrics"] = [query.metric]
        queries.append(entry)
    cases = []
    for case in rule.cases:
        entry = {"name": case.name, "status": case.severity, "notifications": list(case.notify)}
        if case.condition_text:
            entry["condition"] = case.condition_text
        if rule.method == "sequence":
            # A sequence_detection case names its last step ("step_b > 0" in the accepted payloads of
            # datadog-api-client's and terraform-provider-datadog's sequence detection cassettes).
            entry["condition"] = f"{rule.steps[-1].name} > 0"
        cases.append(entry)
    options: dict[str, Any] = {
        "detectionMethod": rule.method,
        # Sequences evaluate per step: the same cassettes send a top-level evaluationWindow of 0.
        "evaluationWindow": 0 if rule.method == "sequence" else int(rule.evaluation_window),
        "keepAlive": int(rule.keep_alive),
        "maxSignalDuration": int(rule.max_signal_duration),
        "decreaseCriticalityBasedOnEnv": False,
    }
    if rule.method == "new_value":
        options["newValueOptions"] = {"forgetAfter": int(rule.forget_after // 86400),
                                      "instantaneousBaseline": rule.instantaneous_baseline,
                                      "learningDuration": int(rule.learning_duration // 86400),
                                      "learningMethod": "duration", "learningThreshold": 0}
    if rule.method == "impossible_travel":
        options["impossibleTravelOptions"] = {"baselineUserLocations": rule.baseline_user_locations}
        if rule.baseline_user_locations and rule.baseline_duration != 86400:
            # As in datadog-api-client's accepted impossible travel payload with baselineUserLocationsDuration.
            options["impossibleTravelOptions"]["baselineUserLocationsDuration"] = int(rule.baseline_duration // 86400)
    if rule.method == "sequence":
        options["detectionMethod"] = "sequence_detection"
        options["sequenceDetectionOptions"] = {
            "steps": [{"name": step.name, "condition": step.condition_text, "evaluationWindow": int(step.within)}
                      for step in rule.steps],
            "stepTransitions": [{"parent": parent.name, "child": child.name,
                                 "evaluationWindow": int(child.after_previous)}
                                for parent, child in zip(rule.steps, rule.steps[1:], strict=False)],
        }
    # Datadog's own default rules with the same strategy: `ccl plan` reports the overlap.
    overlaps = {f"ccl-overlaps:{default_id}" for default_id in rule.overlaps_default}
    tags = sorted({*rule.tags, ACTIVITIES, ownership_tag(rule.id), MANAGED_TAG, *overlaps})
    return {"name": rule.name, "type": "log_detection", "isEnabled": rule.enabled, "message": rule.message.strip(),
            "tags": tags, "hasExtendedTitle": True, "queries": queries, "cases": cases, "options": options}


def rule_update_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """The PUT body of a rule: the create payload without `type`, which SecurityMonitoringRuleUpdatePayload
    does not have (terraform-provider-datadog's cassettes PUT rules without it)."""
    return {key: value for key, value in payload.items() if key != "type"}


# -- monitors -------------------------------------------------------------------------------------

def render_monitor(asset: Asset) -> dict[str, Any]:
    data = asset.data
    scope = ACTIVITIES if data["logs"] == "activities" else COLLECTOR
    search = scoped(data["query"], scope).replace('"', '\\"')
    rollup = f'"{data["rollup"]}"' + (f', "{data["measure"]}"' if data.get("measure") else "")
    by = "".join(f'.by("{field}")' for field in data.get("group_by", []))
    comparator = ">" if data["alert_when"] == "above" else "<"
    window = _monitor_window(parse_duration(data["window"]))
    threshold = _number(data["critical"])
    query = f'logs("{search}").index("*").rollup({rollup}){by}.last("{window}") {comparator} {threshold}'
    thresholds: dict[str, Any] = {"critical": data["critical"]}
    if "warning" in data:
        thresholds["warning"] = data["warning"]
    payload: dict[str, Any] = {
        "name": data["name"], "type": "log alert", "query": query, "message": data["message"].strip(),
        "tags": sorted({*data.get("tags", []), f"source:{SOURCE}", ownership_tag(asset.id), MANAGED_TAG}),
        "options": {"thresholds": thresholds, "notify_no_data": bool(data.get("notify_no_data", False)),
                    "enable_logs_sample": True, "include_tags": True, "notify_audit": False,
                    "on_missing_data": "default"},
    }
    if "priority" in data:
        payload["priority"] = data["priority"]
    return payload


def _monitor_window(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


# -- dashboards -----------------------------------------------------------------------------------

def render_dashboard(asset: Asset) -> dict[str, Any]:
    data = asset.data
    description = (data.get("description", "").strip() + "\n\n" + marker(asset.id)).strip()
    return {"title": data["title"], "description": description, "layout_type": "ordered", "reflow_type": "auto",
            "template_variables": TEMPLATE_VARIABLES, "notify_list": [], "tags": [],
            "widgets": [_widget(widget) for widget in data["widgets"]]}


def _widget(widget: dict[str, Any]) -> dict[str, Any]:
    (kind, body), = widget.items()
    if kind == "group":
        definition = {"type": "group", "title": body["title"], "layout_type": "ordered",
                      "widgets": [_widget(item) for item in body["widgets"]]}
    elif kind == "note":
        definition = {"type": "note", "content": body["content"], "background_color": "white", "font_size": "14",
                      "text_align": "left", "show_tick": False, "tick_edge": "left", "tick_pos": "50%"}
    elif kind == "list_stream":
        definition = {"type": "list_stream", "title": body["title"], "requests": [{
            "response_format": "event_list",
            "query": {"data_source": "logs_stream", "query_string": _dashboard_query(body), "indexes": ["*"],
                      "storage": "hot", "sort": {"order": "desc", "column": "timestamp"}},
            "columns": [{"field": column, "width": "auto"} for column in ["status_line", "timestamp",
                                                                          *body["columns"]]]}]}
    else:
        definition = _chart(kind, body)
    return {"definition": definition}


def _dashboard_query(body: dict[str, Any]) -> str:
    if body.get("logs", "activities") == "collector":
        return scoped(body["query"], COLLECTOR)
    return scoped(body["query"], f"{ACTIVITIES} $org $actor_type $event_name")


def _chart(kind: str, body: dict[str, Any]) -> dict[str, Any]:
    compute: dict[str, Any] = {"aggregation": body.get("aggregation", "count")}
    if body.get("measure"):
        compute["metric"] = body["measure"]
    limit = body.get("limit", 10)
    query = {"name": "query1", "data_source": "logs", "search": {"query": _dashboard_query(body)}, "indexes": ["*"],
             "compute": compute, "storage": "hot",
             "group_by": [{"facet": facet, "limit": limit, "sort": {"aggregation": "count", "order": "desc"}}
                          for facet in body.get("group_by", [])]}
    request: dict[str, Any] = {"queries": [query], "formulas": [{"formula": "query1"}],
                               "response_format": "timeseries" if kind == "timeseries" else "scalar"}
    definition: dict[str, Any] = {"type": kind, "title": body["title"], "requests": [request]}
    if kind == "timeseries":
        request["display_type"] = body.get("display", "bars")
        definition["show_legend"] = True
    elif kind == "query_value":
        definition.update({"autoscale": True, "precision": 0})
        if body.get("compare"):
            request["comparison"] = {"type": "absolute", "duration": {"type": body["compare"]},
                                     "directionality": "neutral"}
    elif kind == "geomap":
        definition.update({"style": {"palette": "hostmap_blues", "palette_flip": False}, "view": {"focus": "WORLD"}})
    elif kind == "query_table":
        request["formulas"] = [{"formula": "query1", "cell_display_mode": "bar"}]
        definition["has_search_bar"] = "auto"
    elif kind == "sunburst":
        definition["legend"] = {"type": "automatic"}
    return definition


# -- pipelines ------------------------------------------------------------------------------------

def render_pipeline(asset: Asset) -> dict[str, Any]:
    data = asset.data
    description = (data.get("description", "").strip() + "\n\n" + marker(asset.id)).strip()
    return {"name": data["name"], "is_enabled": True, "filter": {"query": data["filter"]["query"]},
            "description": description, "tags": sorted(data.get("tags", [])),
            "processors": [_processor(processor) for processor in data["processors"]]}


def _processor(processor: dict[str, Any]) -> dict[str, Any]:
    rendered = {key: value for key, value in processor.items() if key not in ("processors",)}
    rendered["is_enabled"] = True
    if processor["type"] == "pipeline":
        rendered["processors"] = [_processor(item) for item in processor.get("processors", [])]
        rendered.setdefault("filter", {"query": "*"})
    return rendered
