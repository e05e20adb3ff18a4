"""The collector against recorded API exchanges (pytest-recording cassettes, keys filtered).

The cassettes were recorded from the simulator:
    .venv/bin/python -m pytest tests/test_cassettes.py --record-mode=rewrite
Against a real organization, point CCL_CASSETTE_API_URL at https://api.anthropic.com and export a
real ANTHROPIC_COMPLIANCE_KEY while recording; the key header is filtered out of every cassette,
and `test_secrets.py` fails if it ever appears in one.
"""

from __future__ import annotations

import io
import json
import os
import signal
import time
from pathlib import Path

import pytest

from ccl.simulator import FaultPlan, Simulator
from collector.log import JsonLog
from collector.runner import run_collect
from collector.settings import collect_parser, settings_from_args
from tests.conftest import TEST_KEY

RECORDED_SINCE = "2026-11-25T20:00:00Z"


@pytest.fixture
def vcr_config():
    return {
        "filter_headers": [("x-api-key", "REDACTED"), ("authorization", "REDACTED")],
        "match_on": ["method", "path", "query_without_time"],
        "decode_compressed_response": True,
    }


@pytest.fixture(autouse=True)
def _keep_signal_handlers():
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


@pytest.fixture
def api(request, record_mode, vcr_cassette_dir, default_cassette_name, monkeypatch):
    """While recording: a simulator (or CCL_CASSETTE_API_URL). On replay: the clock of the recording."""
    cassette = Path(vcr_cassette_dir) / f"{default_cassette_name}.yaml"
    clock_file = cassette.with_suffix(".clock")
    recording = record_mode in ("rewrite", "all") or (record_mode != "none" and not cassette.exists())
    marker = request.node.get_closest_marker("simulator")
    options = dict(marker.kwargs) if marker else {}
    if recording:
        clock_file.parent.mkdir(parents=True, exist_ok=True)
        clock_file.write_text(f"{time.time()}\n")
        url = os.environ.get("CCL_CASSETTE_API_URL")
        if url:
            yield url
            return
        faults = FaultPlan.parse(options.pop("faults", ""))
        simulator = Simulator(seed=40, rate=0.05, history=3600, faults=faults, **options).start()
        yield simulator.url
        simulator.stop()
        return
    # Replay: the collector's notion of "now" decides which ids it remembers; give it the recording's.
    offset = float(clock_file.read_text()) - time.time()
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + offset)
    yield "http://127.0.0.1:8900"


def collect_once(url: str, state_dir: Path, key: str = TEST_KEY) -> tuple[int, list[dict], list[dict]]:
    os.environ["ANTHROPIC_COMPLIANCE_KEY"] = key
    args = collect_parser("test").parse_args(
        ["--once", "--api-url", url, "--state-dir", str(state_dir), "--since", RECORDED_SINCE,
         "--max-rpm", "0", "--max-retry-time", "30s"])
    out, err = io.BytesIO(), io.StringIO()
    try:
        code = run_collect(settings_from_args(args), JsonLog(err), stdout=out)
    finally:
        del os.environ["ANTHROPIC_COMPLIANCE_KEY"]
    activities = [json.loads(line) for line in out.getvalue().splitlines()]
    logs = [json.loads(line) for line in err.getvalue().splitlines()]
    return code, activities, logs


def recorded_pages(vcr) -> list[dict]:
    return [json.loads(response["body"]["string"]) for response in vcr.responses
            if response["status"]["code"] == 200]


@pytest.mark.vcr
def test_replayed_run_emits_exactly_the_recorded_activities(api, vcr, tmp_path):
    code, activities, _logs = collect_once(api, tmp_path / "state")
    assert code == 0
    served = [activity for page in recorded_pages(vcr) for activity in page["data"]]
    assert len(served) > 100
    assert sorted(a["id"] for a in activities) == sorted({a["id"] for a in served})
    by_id = {a["id"]: a for a in served}
    assert all(activity == by_id[activity["id"]] for activity in activities)
    state = json.loads((tmp_path / "state" / "state.json").read_text())
    pages = recorded_pages(vcr)
    assert state["cursor"] == pages[0]["first_id"]  # the newest first_id, stored as it came
    if vcr.write_protected:  # replaying: every recorded exchange was needed, none was left over
        assert vcr.all_played


@pytest.mark.vcr
@pytest.mark.simulator(faults="429@1")
def test_replayed_429_is_waited_out(api, vcr, tmp_path):
    code, activities, logs = collect_once(api, tmp_path / "state")
    assert code == 0
    assert [r["status"]["code"] for r in vcr.responses][:2] == [429, 200]
    assert any(entry["message"] == "request failed, will retry" for entry in logs)
    assert activities


@pytest.mark.vcr
@pytest.mark.simulator(faults="not-enabled")
def test_replayed_not_enabled_exits_3(api, vcr, tmp_path):
    code, activities, logs = collect_once(api, tmp_path / "state")
    assert (code, activities) == (3, [])
    assert logs[-1]["cause"] == "not_enabled"


@pytest.mark.vcr
@pytest.mark.simulator(faults="403")
def test_replayed_missing_scope_exits_3(api, vcr, tmp_path):
    code, _activities, logs = collect_once(api, tmp_path / "state")
    assert code == 3
    assert "read:compliance_activities" in logs[-1]["message"]


@pytest.mark.vcr
def test_replayed_wrong_key_type_exits_3(api, vcr, tmp_path):
    code, _activities, logs = collect_once(api, tmp_path / "state", key="sk-ant-api03-" + "wrong-type")
    assert code == 3
    assert logs[-1]["cause"] == "not_found"
