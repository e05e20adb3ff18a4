"""pipelines/claude-compliance-logs.yaml through the processor emulation."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path

import pytest

from ccl.content.assets import load
from ccl.datadog.pipeline_emulator import PipelineEmulator, UnsupportedProcessor
from ccl.datadog.pipeline_tests import run_pipeline_tests
from ccl.datadog.render import render_pipeline
from ccl.vector.normalize import Normalizer
from tests.conftest import CCL, ROOT

PIPELINE = ROOT / "pipelines" / "claude-compliance-logs.yaml"


@pytest.fixture(scope="module")
def asset():
    return load("pipeline", PIPELINE)


def test_datadogs_29_samples_raw_and_normalized_give_datadogs_output(asset):
    outcomes = run_pipeline_tests(asset, Normalizer())
    assert len(outcomes) == 58
    failed = [f"{o.name}: {o.detail}" for o in outcomes if not o.passed]
    assert not failed, "\n".join(failed)


def test_ccl_test_runs_the_pipeline_tests():
    done = subprocess.run([*CCL, "test", "pipelines"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout
    assert "1 pipeline, 0 rules, 58 tests: 58 passed, 0 failed" in done.stdout


def test_a_broken_pipeline_fails_its_tests(asset):
    broken = copy.deepcopy(asset)
    broken.data["processors"] = [p for p in broken.data["processors"] if p.get("target") != "usr.email"]
    failed = [o for o in run_pipeline_tests(broken, Normalizer()) if not o.passed]
    # Vector-normalized events still carry usr.email; raw ones lose it.
    assert failed and all("raw" in o.name for o in failed) and "usr.email" in failed[0].detail


def test_every_level_stays_within_twenty_processors(asset):
    def levels(processors):
        yield processors
        for processor in processors:
            if processor["type"] == "pipeline":
                assert all(p["type"] != "pipeline" for p in processor["processors"])  # one level of nesting
                yield processor["processors"]

    assert all(len(level) <= 20 for level in levels(asset.data["processors"]))


def test_the_pipeline_adds_outcome_and_status(asset):
    emulator = PipelineEmulator(render_pipeline(asset))
    failed = emulator.run({"ddsource": "claude-compliance-logs", "type": "sso_login_failed",
                           "created_at": "2026-03-02T09:00:00Z",
                           "actor": {"type": "unauthenticated_user_actor", "ip_address": "192.0.2.7"}})
    assert failed["evt"] == {"name": "sso_login_failed", "outcome": "failure"} and failed["status"] == "warn"
    assert failed["ocsf"]["status"] == "Failure" and failed["network"]["client"]["geoip"] == {}
    api = emulator.run({"ddsource": "claude-compliance-logs", "type": "compliance_api_accessed", "status_code": 403})
    assert api["evt"]["outcome"] == "failure" and api["ocsf"]["severity"] == "Medium"
    viewed = emulator.run({"ddsource": "claude-compliance-logs", "type": "claude_chat_viewed"})
    assert "outcome" not in viewed["evt"] and viewed["status"] == "info"


def test_processors_the_emulator_cannot_run_are_refused(asset):
    pipeline = render_pipeline(asset)
    pipeline["processors"].append({"type": "lookup-processor", "name": "x", "is_enabled": True})
    with pytest.raises(UnsupportedProcessor, match="lookup-processor"):
        PipelineEmulator(pipeline).run({"ddsource": "claude-compliance-logs", "type": "x"})


def test_other_sources_are_left_alone(asset):
    event = {"ddsource": "nginx", "type": "claude_chat_viewed"}
    assert PipelineEmulator(render_pipeline(asset)).run(event) == event


def test_geoip_matches_vectors_when_a_database_is_given(asset, geoip_db):
    from ccl.vector.geoip import GeoIpTable

    emulator = PipelineEmulator(render_pipeline(asset), GeoIpTable(geoip_db))
    raw = {"ddsource": "claude-compliance-logs", "type": "sso_login_succeeded", "created_at": "2026-03-02T09:00:00Z",
           "actor": {"type": "user_actor", "ip_address": "89.160.20.112"}}
    from_datadog = emulator.run(raw)
    from_vector = Normalizer(Path(geoip_db)).normalize({k: v for k, v in raw.items() if k != "ddsource"})
    assert from_datadog["network"]["client"]["geoip"] == from_vector["network"]["client"]["geoip"]
    assert from_datadog["network"]["client"]["geoip"]["city"]["name"] == "Linköping"


@pytest.fixture(scope="module")
def emulator(asset):
    return PipelineEmulator(render_pipeline(asset))


@pytest.fixture(scope="module")
def normalizer():
    return Normalizer()


IDENTITY_ACTORS = [
    *({"type": kind} for kind in ("anthropic_actor", "system_actor", "robot_actor")),
    {"type": "unauthenticated_user_actor", "ip_address": "192.0.2.7", "unauthenticated_email_address": None},
    {"type": "federated_actor", "provider": {"type": "oidc", "issuer": "https://idp.example"}, "subject": "svc-1"},
    {"type": "federated_actor", "provider": {"type": "gcp", "project_number": 12345}, "subject": None},
    {"type": "federated_identity_actor", "issuer": "https://token.actions.githubusercontent.com", "subject": None},
]


@pytest.mark.parametrize("kind", ["user_actor", "api_actor", "admin_api_key_actor", "unauthenticated_user_actor",
                                  "anthropic_actor", "system_actor", "scim_directory_sync_actor",
                                  "service_account_actor", "federated_identity_actor", "federated_actor",
                                  "attested_device_actor"])
def test_the_pipeline_gives_every_actor_the_identity_vector_gives(emulator, normalizer, kind):
    from ccl.content.actors import example_actor

    for actor in [example_actor(kind), *(a for a in IDENTITY_ACTORS if a["type"] == kind)]:
        raw = {"type": "mcp_server_created", "created_at": "2026-03-02T09:00:00Z", "actor": actor}
        from_vector = normalizer.normalize(raw)
        from_datadog = emulator.run({**raw, "ddsource": "claude-compliance-logs"})
        assert from_datadog["usr"].get("identity") == from_vector["usr"]["identity"], actor
        assert from_datadog["usr"]["kind"] == from_vector["usr"]["kind"] == kind
        assert emulator.run(from_vector)["usr"] == from_vector["usr"]  # already normalized: unchanged


def test_an_unknown_actor_type_is_its_own_identity(emulator, normalizer):
    raw = {"type": "x", "actor": {"type": "robot_actor"}}
    assert emulator.run({**raw, "ddsource": "claude-compliance-logs"})["usr"] == \
        normalizer.normalize(raw)["usr"] == {"identity": "robot_actor", "kind": "robot_actor"}
