"""`ccl render`: exact Datadog payloads, deterministic, and parseable by Datadog's own client models."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from datadog_api_client import Configuration
from datadog_api_client.model_utils import (
    ModelComposed,
    ModelNormal,
    OpenApiModel,
    UnparsedObject,
    validate_and_convert_types,
)
from datadog_api_client.v1.model.dashboard import Dashboard
from datadog_api_client.v1.model.logs_pipeline import LogsPipeline
from datadog_api_client.v1.model.monitor import Monitor
from datadog_api_client.v2.model.security_monitoring_rule_create_payload import SecurityMonitoringRuleCreatePayload
from datadog_api_client.v2.model.security_monitoring_rule_update_payload import SecurityMonitoringRuleUpdatePayload

from ccl.datadog.fake import FakeDatadog
from ccl.datadog.render import rule_update_payload
from tests.conftest import CCL, ROOT

MODELS = {"rules": SecurityMonitoringRuleCreatePayload, "dashboards": Dashboard, "monitors": Monitor,
          "pipelines": LogsPipeline, "rule updates": SecurityMonitoringRuleUpdatePayload}


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


def undeclared_keys(value, path="$") -> list[str]:
    """Keys no model declares: the client keeps them, under their own name, beside the declared ones."""
    found = []
    if isinstance(value, ModelComposed):
        for instance in vars(value).get("_composed_instances") or []:
            found += undeclared_keys(instance, path)
    elif isinstance(value, ModelNormal):
        declared = type(value).attribute_map
        for key, item in value._data_store.items():
            if key not in declared:
                found.append(f"{path}.{key}")
            found += undeclared_keys(item, f"{path}.{declared.get(key, key)}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += undeclared_keys(item, f"{path}[{index}]")
    return found


def strict_problems(kind: str, payload: dict) -> list[str]:
    model = parse_model(kind, payload)
    return [f"unparsed {p}" for p in unparsed_parts(model)] + [f"undeclared {p}" for p in undeclared_keys(model)]


def parse_model(kind: str, payload: dict):
    return validate_and_convert_types(payload, (MODELS[kind],), ["payload"], True, True, Configuration())


def test_every_payload_parses_into_the_official_models_with_no_key_they_do_not_declare(rendered):
    files = sorted(rendered.rglob("*.json"))
    kinds = {path.parent.name for path in files}
    assert {"rules", "dashboards", "monitors", "pipelines"} <= kinds
    problems = []
    for path in files:
        payload = json.loads(path.read_text())
        problems += [f"{path.relative_to(rendered)}: {p}" for p in strict_problems(path.parent.name, payload)]
        if path.parent.name == "rules":  # `ccl deploy` PUTs the update payload
            problems += [f"{path.relative_to(rendered)} (update): {p}"
                         for p in strict_problems("rule updates", rule_update_payload(payload))]
    assert problems == []


def test_the_strict_walk_catches_a_key_no_model_declares(rendered):
    payload = json.loads((rendered / "rules" / "sso-disabled.json").read_text())
    payload["queries"][0]["distinctField"] = "@id"
    payload["bogus"] = True
    assert strict_problems("rules", payload) == ["undeclared $.bogus", "undeclared $.queries[0].distinctField"]
    assert strict_problems("rule updates", json.loads((rendered / "rules" / "sso-disabled.json").read_text())) == [
        "undeclared $.type"]  # the update payload model has no `type`


def test_rules_have_the_shapes_datadogs_accepted_examples_have(rendered):
    travel = json.loads((rendered / "rules" / "impossible-travel-sign-in.json").read_text())
    assert travel["queries"][0]["aggregation"] == "geo_data"
    assert travel["queries"][0]["metrics"] == ["@network.client.geoip"]
    sequence = json.loads((rendered / "rules" / "sso-disabled-then-non-sso-sign-in.json").read_text())
    assert sequence["options"]["evaluationWindow"] == 0
    assert [case["condition"] for case in sequence["cases"]] == ["signed_in_without_sso > 0"]
    for path in (rendered / "rules").glob("*.json"):
        for query in json.loads(path.read_text())["queries"]:
            if query["aggregation"] == "cardinality":
                assert len(query["distinctFields"]) == 1, path.name


def test_the_fake_datadog_accepts_every_rendered_rule_and_refuses_the_old_shapes(rendered):
    fake = FakeDatadog("k" * 32, "a" * 40)
    headers = {"DD-API-KEY": "k" * 32, "DD-APPLICATION-KEY": "a" * 40}

    def validation(payload):
        return fake.answer("POST", "/api/v2/security_monitoring/rules/validation", headers,
                           json.dumps(payload).encode())

    for path in (rendered / "rules").glob("*.json"):
        assert validation(json.loads(path.read_text()))[0] == 204, path.name
    old_shapes = []
    bulk = json.loads((rendered / "rules" / "bulk-chat-access.json").read_text())
    bulk["queries"][0]["distinctFields"] = ["@claude_chat_id", "@claude_file_id"]
    old_shapes.append(bulk)
    travel = json.loads((rendered / "rules" / "impossible-travel-sign-in.json").read_text())
    del travel["queries"][0]["metrics"]
    old_shapes.append(travel)
    sequence = json.loads((rendered / "rules" / "sso-disabled-then-non-sso-sign-in.json").read_text())
    old_shapes.append({**sequence, "cases": [{**sequence["cases"][0], "condition": ""}]})
    old_shapes.append({**sequence, "options": {**sequence["options"], "evaluationWindow": 300}})
    for payload in old_shapes:
        status, body, _ = validation(payload)
        assert status == 400 and body["errors"][0] == "Invalid rule configuration", body
    created = fake.answer("POST", "/api/v2/security_monitoring/rules", headers,
                          (rendered / "rules" / "sso-disabled.json").read_bytes())[1]
    with_type = json.loads((rendered / "rules" / "sso-disabled.json").read_text())
    put = fake.answer("PUT", f"/api/v2/security_monitoring/rules/{created['id']}", headers,
                      json.dumps(with_type).encode())
    assert put[0] == 400
    without_type = fake.answer("PUT", f"/api/v2/security_monitoring/rules/{created['id']}", headers,
                               json.dumps(rule_update_payload(with_type)).encode())
    assert without_type[0] == 200


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
