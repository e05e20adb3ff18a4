"""normalize.vrl against Datadog's own pipeline tests, and `ccl normalize` as a user runs it."""

from __future__ import annotations

import json
import subprocess
from datetime import datetime

import pytest
from ruamel.yaml import YAML

from ccl.vector.normalize import Normalizer
from ccl.vector.vrl import VrlProgram
from tests.conftest import CCL, ROOT

DATADOG_SAMPLES = ROOT / "tests" / "data" / "datadog-pipeline-tests.yaml"
# Attributes we add on purpose, beyond what Datadog's pipeline produces.
OUR_ADDITIONS = {"evt": {"outcome"}, "usr": {"identity", "kind"}}


def flatten(value, prefix=""):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from flatten(item, f"{prefix}.{key}" if prefix else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from flatten(item, f"{prefix}[{index}]")
    else:
        yield prefix, value


@pytest.fixture(scope="module")
def normalizer():
    return Normalizer()


@pytest.fixture(scope="module")
def datadog_tests():
    return YAML(typ="safe").load(DATADOG_SAMPLES.read_text())["tests"]


def test_all_29_datadog_samples_get_every_attribute_datadog_reports(normalizer, datadog_tests):
    assert len(datadog_tests) == 29
    checked = {group: [0, 0] for group in ("evt", "usr", "network.client.ip", "http", "ocsf")}
    differences = []
    for number, test in enumerate(datadog_tests):
        sample = json.loads(test["sample"])
        expected, got = test["result"]["custom"], normalizer.normalize(sample)
        for group in checked:
            head, _, rest = group.partition(".")
            want = dict(flatten(expected.get(head, {})))
            have = {path: value for path, value in flatten(got.get(head, {}))
                    if path.split(".")[0] not in OUR_ADDITIONS.get(head, set())}
            if rest:
                want = {path: value for path, value in want.items() if path == rest}
                have = {path: value for path, value in have.items() if path == rest}
            matched = sum(have.get(path) == value for path, value in want.items())
            checked[group][0] += matched
            checked[group][1] += len(want)
            if want != have:
                differences.append(f"#{number} {sample['type']} {group}: want {want}, have {have}")
    print({group: f"{ok}/{total}" for group, (ok, total) in checked.items()})
    assert not differences, "\n".join(differences)


def test_the_date_is_created_at_to_the_microsecond(normalizer, datadog_tests):
    for test in datadog_tests:
        event = normalizer.normalize(json.loads(test["sample"]))
        moment = datetime.fromisoformat(event["timestamp"])
        assert event["timestamp"] == json.loads(test["sample"])["created_at"]
        assert int(moment.timestamp() * 1000) == test["result"]["timestamp"]  # Datadog keeps milliseconds


def test_normalizing_a_normalized_event_changes_nothing(normalizer, datadog_tests):
    for test in datadog_tests:
        once = normalizer.normalize(json.loads(test["sample"]))
        assert normalizer.normalize(json.loads(json.dumps(once))) == once


ACTORS = {
    "user_actor": {"email_address": "ana@example.com", "user_id": "user_01A", "ip_address": "81.2.69.142",
                   "user_agent": "Mozilla/5.0"},
    "api_actor": {"api_key_id": "apikey_01A", "ip_address": "2.125.160.216", "user_agent": "python-httpx/0.28"},
    "admin_api_key_actor": {"admin_api_key_id": "admin_api_key_01A", "ip_address": "89.160.20.112"},
    "unauthenticated_user_actor": {"ip_address": "175.16.199.0", "unauthenticated_email_address": None},
    "anthropic_actor": {"email_address": None},
    "system_actor": {"service": "memory-migration"},
    "scim_directory_sync_actor": {"directory_id": "directory_01A", "workos_event_id": "event_01A",
                                  "idp_connection_type": "OktaSCIMV2"},
    "service_account_actor": {"service_account_id": "svcacct_01A", "ip_address": "2001:db8::1"},
    "federated_identity_actor": {"issuer": "https://token.actions.githubusercontent.com", "subject": "repo:x",
                                 "audience": ["anthropic"], "ip_address": None, "user_agent": None},
    "federated_actor": {"provider": {"type": "aws", "account_id": "123456789012",
                                     "signed_principal": "arn:aws:iam::123456789012:role/x"}, "subject": None},
    "attested_device_actor": {"external_client_id": "ios-1", "kid_hash": "abc", "ip_address": "0.0.0.0",
                              "user_agent": None},
}


# The one identity every actor type gets (usr.identity), whatever it lacks.
IDENTITIES = {
    "user_actor": "ana@example.com", "api_actor": "apikey_01A", "admin_api_key_actor": "admin_api_key_01A",
    "unauthenticated_user_actor": "175.16.199.0", "anthropic_actor": "anthropic_actor", "system_actor": "system_actor",
    "scim_directory_sync_actor": "directory_01A", "service_account_actor": "svcacct_01A",
    "federated_identity_actor": "https://token.actions.githubusercontent.com|repo:x",
    "federated_actor": "arn:aws:iam::123456789012:role/x", "attested_device_actor": "abc",
}


@pytest.mark.parametrize("actor_type", sorted(ACTORS))
def test_every_actor_type_of_the_reference_normalizes(normalizer, actor_type):
    for activity_type in ("role_assignment_granted", "claude_chat_viewed", "sso_login_succeeded",
                          "org_user_deleted", "compliance_api_accessed", "workspace_created"):
        raw = {"id": "activity_01X", "created_at": "2026-11-01T10:00:00.123456Z", "type": activity_type,
               "organization_id": None, "organization_uuid": "00000000-0000-0000-0000-000000000000",
               "actor": {"type": actor_type, **ACTORS[actor_type]}}
        event = normalizer.normalize(raw)
        assert "normalize_error" not in event.get("ccl", {})
        assert event["actor"] == raw["actor"]  # the raw actor stays as the API sent it
        assert event["evt"]["name"] == activity_type
        if actor_type == "user_actor":
            assert {k: event["usr"][k] for k in ("email", "id")} == {"email": "ana@example.com", "id": "user_01A"}
        else:
            assert "email" not in event.get("usr", {})
        assert event["usr"]["kind"] == actor_type
        assert event["usr"]["identity"] == IDENTITIES[actor_type]
        ocsf_actor = event["ocsf"].get("actor", {}).get("user") or event["ocsf"].get("src_endpoint", {}).get("owner")
        if ocsf_actor:
            expected = {"user_actor": "User", "admin_api_key_actor": "Admin"}.get(actor_type, actor_type)
            assert ocsf_actor["type"] == expected
        if activity_type != "workspace_created":
            assert event["ocsf"].get("user", {}).get("org", {}).get("uid") in (
                None, "00000000-0000-0000-0000-000000000000")


def test_unknown_types_and_odd_values_pass_through_without_error(normalizer):
    raw = {"id": "activity_01Y", "created_at": "not a date", "type": "brand_new_type", "status": "pending",
           "message": "hello", "actor": {"type": "robot_actor", "ip_address": "0.0.0.0"}, "extra": [1, {"a": None}]}
    event = normalizer.normalize(raw)
    assert event["activity_status"] == "pending" and event["activity_message"] == "hello"
    assert event["status"] == "info" and "message" not in event
    assert event["ccl"]["warning"].startswith("created_at is missing")
    assert "timestamp" not in event  # Datadog then dates it at intake
    assert event["extra"] == [1, {"a": None}] and event["actor"] == raw["actor"]
    assert event["network"]["client"]["ip"] == "0.0.0.0"
    assert "http" not in event and "class_uid" not in event["ocsf"]
    assert normalizer.normalize({})["ddsource"] == "claude-compliance-logs"  # even an empty object


def test_a_vrl_failure_keeps_the_activity_and_says_why():
    normalizer = Normalizer()
    normalizer._normalize = VrlProgram('abort "simulated failure"', "broken.vrl")
    event = normalizer.normalize({"id": "activity_01Z", "type": "claude_chat_viewed"})
    assert event["id"] == "activity_01Z" and event["ddsource"] == "claude-compliance-logs"
    assert "simulated failure" in event["ccl"]["normalize_error"]
    assert normalizer.failed == 1


def run_normalize(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([*CCL, "normalize", *args], input=stdin, capture_output=True, text=True, cwd=ROOT,
                          check=False)


def test_ccl_normalize_adds_geoip_as_vector_would(geoip_db):
    ips = ["81.2.69.142", "2.125.160.216", "89.160.20.112", "175.16.199.0", "10.1.2.3", "0.0.0.0", "2001:218::1"]
    lines = [json.dumps({"id": f"activity_0{n}", "type": "sso_login_succeeded", "created_at": "2026-11-01T10:00:00Z",
                         "actor": {"type": "user_actor", "ip_address": ip}}) for n, ip in enumerate(ips)]
    done = run_normalize("--geoip-db", str(geoip_db), "-", stdin="\n".join(lines) + "\n")
    assert done.returncode == 0, done.stderr
    geo = [json.loads(line)["network"]["client"].get("geoip") for line in done.stdout.splitlines()]
    assert [g and g.get("city", {}).get("name") for g in geo] == [
        "London", "Boxford", "Linköping", "Changchun", None, None, None]
    assert geo[0] == {"city": {"name": "London"}, "continent": {"code": "EU", "name": "Europe"},
                      "country": {"iso_code": "GB", "name": "United Kingdom"},
                      "location": {"latitude": 51.5142, "longitude": -0.0931},
                      "subdivision": {"iso_code": "ENG", "name": "England"}}
    assert geo[1]["subdivision"] == {"iso_code": "WBK", "name": "West Berkshire"}  # the last subdivision
    assert geo[6] == {"continent": {"code": "AS", "name": "Asia"}, "country": {"iso_code": "JP", "name": "Japan"},
                      "location": {"latitude": 35.68536, "longitude": 139.75309}}


def test_ccl_normalize_reports_bad_lines_by_number_and_keeps_the_good_ones(tmp_path):
    source = tmp_path / "activities.ndjson"
    source.write_text('{"id": "a1", "type": "claude_chat_viewed"}\n{oops\n\n[1, 2]\n{"id": "a2"}\n')
    done = run_normalize(str(source))
    assert done.returncode == 2
    assert [json.loads(line)["id"] for line in done.stdout.splitlines()] == ["a1", "a2"]
    assert f"{source}:2: not JSON" in done.stderr and f"{source}:4: a JSON list" in done.stderr
    assert "Traceback" not in done.stderr


def test_ccl_normalize_refuses_unusable_inputs_with_one_message(tmp_path):
    missing = run_normalize(str(tmp_path / "nope.ndjson"))
    assert missing.returncode == 2 and "nope.ndjson" in missing.stderr and "Traceback" not in missing.stderr
    not_a_db = tmp_path / "city.mmdb"
    not_a_db.write_bytes(b"definitely not an mmdb")
    bad_db = run_normalize("--geoip-db", str(not_a_db), "-", stdin="{}\n")
    assert bad_db.returncode == 2 and "cannot open the GeoIP database" in bad_db.stderr
    assert "Traceback" not in bad_db.stderr


def test_every_simulated_activity_normalizes_cleanly(make_simulator, normalizer):
    simulator = make_simulator(seed=3, rate=1.0, history=1800)
    for activity in simulator.store.all_activities():
        event = normalizer.normalize(activity)
        assert "ccl" not in event, (activity, event.get("ccl"))
        assert event["evt"]["name"] == activity["type"]
        # Vector's JSON encoding drops trailing zeros of the fraction (.359000 -> .359).
        assert datetime.fromisoformat(event["timestamp"]) == datetime.fromisoformat(activity["created_at"])
