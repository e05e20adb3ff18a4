"""`ccl plan`, `ccl deploy` and `ccl test --remote` against recorded Datadog exchanges.

The cassettes (tests/cassettes/test_deploy/) were recorded against the local fake of the Datadog
API in ccl/datadog/fake.py (what `ccl simulate --datadog` serves), with both keys filtered out:
    .venv/bin/python -m pytest tests/test_deploy.py --record-mode=rewrite
To record against a real org instead, export DD_API_KEY, DD_APP_KEY and DD_API_URL (e.g.
https://api.datadoghq.com) and set CCL_RECORD_REAL_ORG=1; the scenarios that inject faults (429,
403, a refused rule) only make sense against the fake and are skipped then.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import httpx
import pytest
import vcr.matchers
from click.testing import CliRunner
from vcr.errors import CannotOverwriteExistingCassetteException
from vcr.request import Request
from vcr.serialize import deserialize
from vcr.serializers import yamlserializer

from ccl.cli import cli
from ccl.datadog.client import SITES, ConfigError, api_url
from ccl.datadog.fake import FakeDatadog
from tests.conftest import ROOT
from tests.replay_match import parsed_body, parsed_query

API_KEY = "ccltestapikey" + "0" * 19
APP_KEY = "ccltestappkey" + "0" * 27
CASSETTES = ROOT / "tests" / "cassettes" / "test_deploy"
# What a first deploy creates follows the content: one object per YAML file.
RULES = len(list((ROOT / "detections").glob("*.yaml")))
OBJECTS = sum(len(list((ROOT / kind).glob("*.yaml"))) for kind in ("pipelines", "dashboards", "monitors", "detections"))
SSO_DISABLED = next(line.split('"')[1] for line in (ROOT / "detections" / "sso-disabled.yaml").read_text().splitlines()
                    if line.startswith("name:"))


@pytest.fixture
def vcr_config():
    return {
        "filter_headers": [("DD-API-KEY", "REDACTED"), ("DD-APPLICATION-KEY", "REDACTED")],
        # vcrpy's query and body matchers, each request parsed once (tests/replay_match.py says why).
        "match_on": ["method", "path", "parsed_query", "parsed_body"],
        "decode_compressed_response": True,
    }


class Org:
    """The Datadog side of a test: the fake while recording, the cassette on replay."""

    def __init__(self, fake: FakeDatadog | None, workdir: Path):
        self.fake, self.workdir = fake, workdir

    def setup(self, change) -> None:
        """Changes to the org before a step (faults, rejections); recorded in the cassette's answers."""
        if self.fake is not None:
            change(self.fake)

    def ccl(self, *args: str):
        result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
        assert API_KEY not in result.output and APP_KEY not in result.output
        return result


@pytest.fixture
def org(record_mode, vcr_cassette_dir, default_cassette_name, monkeypatch, tmp_path):
    cassette = Path(vcr_cassette_dir) / f"{default_cassette_name}.yaml"
    recording = record_mode in ("rewrite", "all") or (record_mode in ("once", "new_episodes") and not cassette.exists())
    real = recording and os.environ.get("CCL_RECORD_REAL_ORG") == "1"
    fake = FakeDatadog(API_KEY, APP_KEY).start() if recording and not real else None
    if not real:
        monkeypatch.setenv("DD_API_URL", fake.url if fake else "http://127.0.0.1:9")
        monkeypatch.setenv("DD_API_KEY", API_KEY)
        monkeypatch.setenv("DD_APP_KEY", APP_KEY)
    for directory in ("pipelines", "dashboards", "monitors", "detections", "tests/data"):
        shutil.copytree(ROOT / directory, tmp_path / directory)
    monkeypatch.chdir(tmp_path)
    yield Org(fake, tmp_path)
    if fake is not None:
        fake.stop()


def actions(result) -> list[dict]:
    return json.loads(result.output)


@pytest.mark.vcr
def test_first_deploy_creates_everything_and_a_second_plans_only_noop(org):
    first = org.ccl("deploy", "--yes")
    assert first.exit_code == 0, first.output
    assert f"applied ({OBJECTS})" in first.output and "FAILED" not in first.output
    plan = actions(org.ccl("plan", "--json"))
    assert len(plan) == OBJECTS and {item["action"] for item in plan} == {"noop"}
    assert {item["kind"] for item in plan} == {"pipeline", "dashboard", "monitor", "rule"}
    assert all(set(item) == {"kind", "key", "action", "remote_id"} and item["remote_id"] for item in plan)
    again = org.ccl("deploy", "--yes")
    assert again.exit_code == 0 and "nothing to do" in again.output


@pytest.mark.vcr
def test_an_edited_rule_plans_one_update_with_the_right_diff(org):
    assert org.ccl("deploy", "--yes", "--only", "rules").exit_code == 0
    path = org.workdir / "detections" / "sso-disabled.yaml"
    path.write_text(path.read_text().replace("severity: high", "severity: critical"))
    plan = actions(org.ccl("plan", "--json", "--only", "rules"))
    assert [(i["action"], i["key"]) for i in plan if i["action"] != "noop"] == [("update", "sso-disabled")]
    human = org.ccl("plan", "--only", "rules")
    assert '~ update  rule       sso-disabled' in human.output
    assert 'cases[0].status: "high" -> "critical"' in human.output


@pytest.mark.vcr
def test_a_removed_file_is_deleted_only_with_prune(org):
    assert org.ccl("deploy", "--yes", "--only", "monitors").exit_code == 0
    (org.workdir / "monitors" / "ingestion-lag.yaml").unlink()
    without = org.ccl("plan", "--only", "monitors", "--json")
    assert "delete" not in {i["action"] for i in actions(without)}
    assert "--prune deletes them" in org.ccl("plan", "--only", "monitors").output
    pruned = actions(org.ccl("plan", "--only", "monitors", "--prune", "--json"))
    assert [(i["action"], i["key"]) for i in pruned if i["action"] == "delete"] == [("delete", "ingestion-lag")]
    deploy = org.ccl("deploy", "--yes", "--only", "monitors", "--prune")
    assert deploy.exit_code == 0 and "delete monitor ingestion-lag" in deploy.output
    assert {i["action"] for i in actions(org.ccl("plan", "--only", "monitors", "--prune", "--json"))} == {"noop"}


@pytest.mark.vcr
def test_an_unmanaged_object_with_the_same_name_is_left_alone(org):
    plan = org.ccl("plan", "--only", "dashboards")
    assert ("an unmanaged dashboard named 'Claude Compliance Logs - Overview' already exists (id own-clone)"
            in plan.output)
    assert org.ccl("deploy", "--yes", "--only", "dashboards", "--prune").exit_code == 0
    after = actions(org.ccl("plan", "--only", "dashboards", "--prune", "--json"))
    assert all(item["remote_id"] != "own-clone" for item in after) and {i["action"] for i in after} == {"noop"}


@pytest.mark.vcr
def test_a_429_in_the_middle_of_a_run_is_waited_out(org):
    org.setup(lambda fake: fake.faults.extend([("POST", "/api/v2/security_monitoring/rules", 429),
                                               ("POST", "/api/v1/monitor", 503)]))
    result = org.ccl("deploy", "--yes", "--only", "rules")
    assert result.exit_code == 0, result.output
    assert "FAILED" not in result.output and f"applied ({RULES})" in result.output
    monitors = org.ccl("deploy", "--yes", "--only", "monitors")
    assert monitors.exit_code == 0 and "applied (3)" in monitors.output


@pytest.mark.vcr
def test_a_403_stops_with_the_permission_name_and_the_next_run_completes(org):
    org.setup(lambda fake: fake.forbidden.add(("POST", "/api/v1/dashboard")))
    failed = org.ccl("deploy", "--yes")
    assert failed.exit_code == 3  # refused for a permission: the contract's exit code
    assert "403 Forbidden: the application key lacks dashboards_write, or DD_API_KEY/DD_APP_KEY" in failed.output
    assert "applied (1):" in failed.output and "create pipeline claude-compliance-logs" in failed.output
    assert "not attempted (" in failed.output and "create rule sso-disabled" in failed.output
    org.setup(lambda fake: fake.forbidden.clear())
    completed = org.ccl("deploy", "--yes")
    assert completed.exit_code == 0 and f"applied ({OBJECTS - 1})" in completed.output  # the pipeline was already there


@pytest.mark.vcr
def test_a_rule_datadog_refuses_is_reported_with_its_file_and_nothing_else_changes(org):
    org.setup(lambda fake: fake.reject_rules.update(
        {SSO_DISABLED: "Invalid query: unknown facet @enabled"}))
    result = org.ccl("deploy", "--yes", "--only", "rules")
    assert result.exit_code == 1
    assert ("create rule sso-disabled: detections/sso-disabled.yaml: Datadog refused the rule: POST "
            "/api/v2/security_monitoring/rules/validation: HTTP 400: Invalid rule configuration; Invalid query: "
            "unknown facet @enabled") \
        in result.output
    assert f"applied ({RULES - 1})" in result.output
    plan = actions(org.ccl("plan", "--json", "--only", "rules"))
    assert [(i["action"], i["key"]) for i in plan if i["action"] != "noop"] == [("create", "sso-disabled")]


@pytest.mark.vcr
def test_deploy_refuses_without_a_terminal_or_yes(org):
    result = org.ccl("deploy", "--only", "monitors")
    assert result.exit_code == 2 and "refusing to change Datadog without confirmation" in result.output
    assert {i["action"] for i in actions(org.ccl("plan", "--only", "monitors", "--json"))} == {"create"}


@pytest.mark.vcr
def test_overlapping_default_rules_are_reported_and_can_be_disabled(org):
    plan = org.ccl("plan", "--only", "rules")
    assert "Datadog default rule def-000-wwq" in plan.output and "compliance-logging-disabled" in plan.output
    flagged = actions(org.ccl("plan", "--only", "rules", "--json", "--disable-overlapping-defaults"))
    assert {"kind": "rule", "key": "def-000-wwq", "action": "disable", "remote_id": "def-000-wwq"} in flagged
    deployed = org.ccl("deploy", "--yes", "--only", "rules", "--disable-overlapping-defaults")
    assert deployed.exit_code == 0
    # Shown as what it is: a default rule disabled, not an update of one of ours.
    assert ", 1 Datadog default rule to disable," in deployed.output.splitlines()[0]
    assert "  x disable rule       def-000-wwq (id def-000-wwq): Datadog default rule, superseded by ours: " \
           "compliance-logging-disabled" in deployed.output
    assert "disable rule def-000-wwq (id def-000-wwq)" in deployed.output  # in the report of what was applied
    assert "already disabled" in org.ccl("plan", "--only", "rules").output


@pytest.mark.vcr
def test_remote_rule_tests_agree_with_the_offline_matcher(org):
    result = org.ccl("test", "--remote", "detections/sso-disabled.yaml", "detections/admin-role-granted.yaml",
                     "detections/sso-brute-force-then-success.yaml")
    assert result.exit_code == 0, result.output
    assert "query verdicts checked against Datadog's rule test endpoint: 0 disagree" in result.output


@pytest.mark.vcr
@pytest.mark.default_cassette("test_a_removed_file_is_deleted_only_with_prune.yaml")
def test_a_replay_fails_on_a_request_whose_query_or_body_the_cassette_does_not_hold(vcr):
    created = next(request for request in vcr.requests if request.method == "POST")
    recorded = json.loads(created.body)
    with httpx.Client(headers={"DD-API-KEY": API_KEY, "DD-APPLICATION-KEY": APP_KEY}) as client:
        with pytest.raises(CannotOverwriteExistingCassetteException) as edited:
            client.post(created.uri, json={**recorded, "name": f"{recorded['name']} (edited)"})
        assert edited.value.reason == "no_match"
        # The closest recorded requests (the three monitors created) differ only by their body.
        failed = [failed for _, _, failed in edited.value.similar_requests]
        assert len(failed) == 3 and all([name for name, _ in matchers] == ["parsed_body"] for matchers in failed)
        assert ("parsed_body", "the JSON bodies differ at name") in [matchers[0] for matchers in failed]
        with pytest.raises(CannotOverwriteExistingCassetteException, match="parsed_query"):
            client.post(f"{created.uri}?dry_run=true", json=recorded)
        # The same JSON value with its keys in another order is the same body, as for vcrpy's `body`.
        answer = client.post(created.uri, json=dict(reversed(recorded.items())))
    assert answer.status_code == 200 and answer.json()["name"] == recorded["name"]


def verdicts(matcher, requests: list[Request]) -> list[tuple[int, int, bool]]:
    """Whether `matcher` accepts each pair of requests to the same method and path (where it decides)."""
    pairs = [(i, j) for i, first in enumerate(requests) for j, second in enumerate(requests)
             if (first.method, first.path) == (second.method, second.path)]
    return [(i, j, vcr.matchers.requests_match(requests[i], requests[j], [matcher])) for i, j in pairs]


def test_the_replay_matchers_agree_with_vcrpys_on_recorded_requests_and_edited_copies():
    # GETs with and without a query, a DELETE, and creates whose bodies are monitors.
    requests, _ = deserialize((CASSETTES / "test_a_removed_file_is_deleted_only_with_prune.yaml").read_text(),
                              yamlserializer)
    edited = []
    for request in requests:
        if request.method in ("POST", "PUT"):
            body = json.loads(request.body)
            for changed in ({**body, "name": "x"}, dict(reversed(body.items())), [body]):
                edited.append(Request(request.method, request.uri, json.dumps(changed), dict(request.headers)))
            edited.append(Request(request.method, request.uri, json.dumps(body), {}))  # not sent as JSON
        edited.append(Request(request.method, f"{request.uri}&page=2" if "?" in request.uri else f"{request.uri}?x=1",
                              request.body, dict(request.headers)))
    everything = requests + edited
    assert verdicts(parsed_query, everything) == verdicts(vcr.matchers.query, everything)
    ours = verdicts(parsed_body, everything)
    assert ours == verdicts(vcr.matchers.body, everything)
    assert sum(same for i, j, same in ours if i != j) > len(everything)  # not only each request with itself


def test_missing_keys_and_unknown_sites_are_refused_before_any_call(monkeypatch, tmp_path):
    monkeypatch.delenv("DD_API_KEY", raising=False)
    monkeypatch.delenv("DD_API_URL", raising=False)
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(cli, ["plan"])
    assert result.exit_code == 2 and "set DD_API_KEY" in result.output
    assert api_url("datadoghq.eu") == "https://api.datadoghq.eu"
    assert {api_url(site) for site in SITES} == {f"https://api.{site}" for site in SITES}
    with pytest.raises(ConfigError, match=r"unknown Datadog site 'datadoghq\.org'"):
        api_url("datadoghq.org")


def test_no_key_is_in_any_cassette():
    texts = [path.read_text() for path in CASSETTES.glob("*.yaml")]
    assert texts, "cassettes are missing: record them (see this module's docstring)"
    assert not any(API_KEY in text or APP_KEY in text for text in texts)
    assert all("REDACTED" in text for text in texts)


@pytest.mark.parametrize(("body", "message"), [
    (b"<html>maintenance</html>", "the answer is not JSON (text/html)"),
    (b"[1, 2, 3]", "Datadog answered with a list, not a dict"),
    (b'{"data": "x"}', "Datadog answered with a dict, not a list"),
], ids=["html", "list", "wrong-shape"])
def test_answers_that_are_not_datadogs_give_one_clear_error(monkeypatch, body, message):
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("content-type", "text/html" if body.startswith(b"<") else "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("DD_API_URL", f"http://127.0.0.1:{server.server_address[1]}")
        monkeypatch.setenv("DD_API_KEY", API_KEY)
        monkeypatch.setenv("DD_APP_KEY", APP_KEY)
        monkeypatch.chdir(ROOT)
        result = CliRunner().invoke(cli, ["plan"])
    finally:
        server.shutdown()
    assert result.exit_code == 1 and message in result.output
    assert "Traceback" not in result.output and API_KEY not in result.output
