"""`ccl render`: exact Datadog payloads, deterministic, and parseable by Datadog's own client models."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from datadog_api_client import Configuration
from datadog_api_client.model_utils import OpenApiModel, UnparsedObject, validate_and_convert_types
from datadog_api_client.v1.model.dashboard import Dashboard
from datadog_api_client.v1.model.logs_pipeline import LogsPipeline
from datadog_api_client.v1.model.monitor import Monitor
from datadog_api_client.v2.model.security_monitoring_rule_create_payload import SecurityMonitoringRuleCreatePayload

from tests.conftest import CCL, ROOT

MODELS = {"rules": SecurityMonitoringRuleCreatePayload, "dashboards": Dashboard, "monitors": Monitor,
          "pipelines": LogsPipeline}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("render")
    done = subprocess.run([*CCL, "render", "--out", str(out)], cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return out


def unparsed_parts(value, path="$") -> list[str]:
    """Paths the models could not parse (an invalid enum or shape becomes an UnparsedObject)."""
    if isinstance(value, UnparsedObject):
        return [path]
    found = []
    if isinstance(value, OpenApiModel) and vars(value).get("_unparsed"):
        found.append(path)
    if isinstance(value, OpenApiModel):
        for key, item in value._data_store.items():
            found += unparsed_parts(item, f"{path}.{key}")
        for instance in vars(value).get("_composed_instances") or []:
            found += unparsed_parts(instance, path)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += unparsed_parts(item, f"{path}[{index}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            found += unparsed_parts(item, f"{path}.{key}")
    return found


def parse_model(kind: str, payload: dict):
    return validate_and_convert_types(payload, (MODELS[kind],), ["payload"], True, True, Configuration())


def test_every_payload_parses_into_the_official_models(rendered):
    files = sorted(rendered.rglob("*.json"))
    kinds = {path.parent.name for path in files}
    assert {"rules", "dashboards", "monitors"} <= kinds
    for path in files:
        model = parse_model(path.parent.name, json.loads(path.read_text()))
        assert unparsed_parts(model) == [], f"{path.relative_to(rendered)}: {unparsed_parts(model)}"


def test_the_model_check_catches_an_invalid_enum(rendered):
    payload = json.loads(next((rendered / "rules").glob("*.json")).read_text())
    payload["cases"][0]["status"] = "urgent"
    assert unparsed_parts(parse_model("rules", payload))


def test_rendering_is_deterministic_byte_for_byte(rendered, tmp_path):
    again = tmp_path / "again"
    subprocess.run([*CCL, "render", "--out", str(again)], cwd=ROOT, capture_output=True, check=True)
    first = {p.relative_to(rendered): p.read_bytes() for p in rendered.rglob("*.json")}
    second = {p.relative_to(again): p.read_bytes() for p in again.rglob("*.json")}
    assert first == second


def test_payloads_carry_their_scope_and_ownership_key(rendered):
    for path in (rendered / "rules").glob("*.json"):
        rule = json.loads(path.read_text())
        assert f"ccl:{path.stem}" in rule["tags"] and "source:claude-compliance-logs" in rule["tags"]
        assert all(q["query"].startswith("source:claude-compliance-logs") for q in rule["queries"])
    for path in (rendered / "dashboards").glob("*.json"):
        dashboard = json.loads(path.read_text())
        assert dashboard["description"].endswith(f"[managed by ccl: {path.stem}]")
        assert [v["name"] for v in dashboard["template_variables"]] == ["org", "actor_type", "event_name"]
    for path in (rendered / "monitors").glob("*.json"):
        monitor = json.loads(path.read_text())
        assert f"ccl:{path.stem}" in monitor["tags"] and monitor["query"].startswith('logs("')
    for path in (rendered / "pipelines").glob("*.json"):
        pipeline = json.loads(path.read_text())

        def enabled(processors):
            return all(p["is_enabled"] is True and enabled(p.get("processors", [])) for p in processors)

        assert enabled(pipeline["processors"])


def test_the_no_data_monitor_matches_datadogs_own(rendered):
    monitor = json.loads((rendered / "monitors" / "no-data.json").read_text())
    assert monitor["query"] == 'logs("source:claude-compliance-logs").index("*").rollup("count").last("1h") < 1'
    assert monitor["type"] == "log alert"
