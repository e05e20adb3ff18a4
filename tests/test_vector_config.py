"""vector.toml: structure, delivery paths, and the Vector unit tests through the harness."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ccl.vector.harness import LOOKUP_CALL, Config, Run, run_tests
from ccl.vector.vrl import check
from collector.settings import collect_parser
from tests.conftest import CCL, ROOT, run_collector

MAIN = ROOT / "vector.toml"
STAGES = [ROOT / "vector" / "geoip-off.toml", ROOT / "vector" / "geoip-on.toml"]
VECTOR_FILES = sorted([MAIN, *(ROOT / "vector").glob("*.toml")])
SECRET_SHAPES = re.compile(r"sk-ant-|default_api_key|apikey\s*[:=]\s*[\"']?[0-9a-f]{20,}|\$\{", re.IGNORECASE)
# What Vector substitutes in the raw text of a config file, comments included, when interpolation
# is on (ENVIRONMENT_VARIABLE_INTERPOLATION_REGEX in src/config/vars.rs, vectordotdev/vector
# v0.57.0): `$$`, `$NAME` and `${...}`. A name that is not set is a hard error.
VECTOR_INTERPOLATION = re.compile(r"\$\$|\$[\w.]+|\$\{")
COLLECTOR_MAX_LINE_BYTES_DEFAULT = 16 * 1024 * 1024


def merged(*paths: Path) -> dict:
    config: dict = {}
    for path in paths:
        for section, body in tomllib.loads(path.read_text()).items():
            if isinstance(body, dict):
                config.setdefault(section, {}).update(body)
            else:
                config[section] = body
    return config


@pytest.mark.parametrize("stage", STAGES, ids=lambda p: p.name)
def test_every_input_names_a_component_and_every_vrl_file_compiles(stage):
    Config([MAIN, stage], ROOT)  # raises on an input that matches nothing
    config = merged(MAIN, stage)
    transforms = config["transforms"]
    for name, body in transforms.items():
        if body["type"] != "remap":
            continue
        source = (ROOT / body["file"]).read_text() if "file" in body else body["source"]
        # vrl-python has no enrichment tables; stand in for the lookup to compile the rest.
        source = LOOKUP_CALL.sub('object(.stand_in)', source)
        assert check(source) is None, f"{name}: {check(source)}"
    for name, body in transforms.items():
        for condition in (body.get("route") or {}).values():
            assert check(condition) is None, f"{name}: {check(condition)}"


def test_the_topology_is_one_path_whatever_the_geoip_stage():
    for stage in STAGES:
        config = Config([MAIN, stage], ROOT)
        assert config.consumers("normalize") in (["geoip"], ["geoip_lookup"])
        assert config.consumers("geoip") == ["id_check"]
        assert config.consumers("id_check.has_id") == ["dedupe"]
        assert config.consumers("id_check._unmatched") == ["measure_lag"]  # events without an id
        assert config.consumers("feed_streams.collector_logs") == ["collector_lines"]


@pytest.mark.parametrize("stage", STAGES, ids=lambda p: p.name)
def test_every_output_of_every_component_reaches_a_consumer(stage):
    """Vector warns about an output nothing reads, and what reaches it is gone: every route's
    `_unmatched` and every remap's `dropped` must lead somewhere visible."""
    config = Config([MAIN, stage], ROOT)
    outputs = config.output_ids()
    assert "feed_streams._unmatched" in outputs and "intake_window._unmatched" in outputs
    assert "activity_lines.dropped" in outputs and "normalize.dropped" in outputs
    unread = [output for output in outputs
              if not config.consumers(output, ("transforms", "sinks"))]
    assert unread == []


def test_no_config_file_holds_what_vector_would_interpolate():
    for path in VECTOR_FILES:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            assert not VECTOR_INTERPOLATION.search(line), f"{path.name}:{number}: {line.strip()}"


def test_the_interpolation_check_finds_a_variable_in_a_comment():
    assert VECTOR_INTERPOLATION.search("# Vector 0.57 no longer interpolates ${...} here")
    assert VECTOR_INTERPOLATION.search('default_api_key = "$DD_API_KEY"')
    assert not VECTOR_INTERPOLATION.search("match(string(.created_at) ?? \"\", r'^\\d{4}Z$')")


def test_no_line_an_activity_can_fill_is_cut_by_vectors_framing():
    source = merged(MAIN)["sources"]["compliance_feed"]
    cap = source["framing"]["newline_delimited"]["max_length"]
    collector_default = getattr(collect_parser("python -m collector").parse_args([]), "max_line_bytes",
                                COLLECTOR_MAX_LINE_BYTES_DEFAULT)
    assert cap > collector_default  # the collector reports a line over its cap before Vector would cut it
    assert cap >= 32 * 1024 * 1024


def test_one_state_directory_everywhere():
    """`ccl status --state-dir` on the docs' path must find the collector that vector.toml runs."""
    command = merged(MAIN)["sources"]["compliance_feed"]["command"]
    state_dir = command[command.index("--state-dir") + 1]
    pages = [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]
    texts = {path: path.read_text() for path in [*pages, MAIN, *(ROOT / "vector").glob("*")] if path.is_file()}
    for path, text in texts.items():
        for found in re.findall(r"/var/lib/vector/claude-compliance[^\s\"'`,)]*", text):
            assert found == state_dir or found.startswith("/var/lib/vector/claude-compliance-logs/archive/"), \
                f"{path.name}: {found}"
    readme = "".join(texts[page] for page in pages)
    assert f"ccl status --state-dir {state_dir}" in readme
    assert f'"--state-dir", "{state_dir}"' in readme


def test_no_secret_in_any_config_and_keys_come_from_the_environment():
    for path in [*VECTOR_FILES, ROOT / "vector" / "fluent-bit.yaml"]:
        text = path.read_text()
        found = [line for line in text.splitlines()
                 if SECRET_SHAPES.search(line) and not line.lstrip().startswith("#")]
        if path.suffix == ".yaml":  # Fluent Bit substitutes ${VAR} itself; only env references are allowed
            found = [line for line in found if "${DD_API_KEY}" not in line]
        assert not found, f"{path.name}: {found}"
    sinks = merged(MAIN)["sinks"]
    for name, body in sinks.items():
        if body["type"] == "datadog_logs":
            assert "default_api_key" not in body and "site" not in body  # DD_API_KEY / DD_SITE
            assert body["compression"] in ("gzip", "zstd")
            assert body["buffer"]["type"] == "disk" and body["buffer"]["when_full"] == "block"
            assert body["buffer"]["max_size"] >= 268435488, name


def test_the_exec_command_is_the_real_collector_cli():
    source = merged(MAIN)["sources"]["compliance_feed"]
    assert source["type"] == "exec" and source["mode"] == "streaming"
    assert source["decoding"]["codec"] == "bytes" and source["include_stderr"] is True
    command = source["command"]
    assert command[1:3] == ["-m", "collector"]
    options = collect_parser("python -m collector").parse_args(command[3:])
    assert not options.once  # streaming: the collector follows the feed
    assert str(options.state_dir).startswith(merged(MAIN)["data_dir"])
    assert "ANTHROPIC_COMPLIANCE_KEY" not in str(source)  # inherited, not written


def test_vector_unit_tests_pass_through_the_harness():
    done = subprocess.run([*CCL, "vector-test", "vector.toml", "vector/geoip-off.toml", "vector/tests.toml"],
                          capture_output=True, text=True, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "18 passed, 0 failed" in done.stdout


def test_geoip_unit_tests_pass_with_maxminds_test_database(geoip_db):
    config = Config([MAIN, STAGES[1], ROOT / "vector" / "tests-geoip.toml"], ROOT, {"geoip_city": geoip_db})
    results = run_tests(config)
    assert len(results) == 3 and all(result.passed for result in results), [r.failures for r in results]


def test_the_harness_fails_when_an_assertion_fails(tmp_path):
    wrong = (ROOT / "vector" / "tests.toml").read_text().replace(
        'assert_eq!(.usr.email, "ana@example.com")', 'assert_eq!(.usr.email, "someone.else@example.com")')
    wrong_tests = tmp_path / "tests.toml"
    wrong_tests.write_text(wrong)
    done = subprocess.run([*CCL, "vector-test", "vector.toml", "vector/geoip-off.toml", str(wrong_tests)],
                          capture_output=True, text=True, cwd=ROOT, check=False)
    assert done.returncode == 1
    assert "test a chat view gets Datadog's attributes and OCSF class 6001 ... failed" in done.stdout
    assert "someone.else@example.com" in done.stdout
    assert "17 passed, 1 failed" in done.stdout


def test_the_harness_refuses_what_it_cannot_emulate(tmp_path):
    config = tmp_path / "odd.toml"
    config.write_text('[transforms.x]\ntype = "lua"\ninputs = []\n[[tests]]\nname = "t"\n'
                      '[[tests.inputs]]\ninsert_at = "x"\ntype = "log"\nlog_fields.a = 1\n')
    done = subprocess.run([*CCL, "vector-test", str(config)], capture_output=True, text=True, cwd=ROOT, check=False)
    assert done.returncode == 2 and "does not emulate" in done.stderr and "Traceback" not in done.stderr


def exec_event(line: str, stream: str) -> dict:
    """A line as Vector's exec source hands it on with `decoding.codec = "bytes"` (legacy namespace)."""
    return {"message": line, "stream": stream, "host": "vector-1", "pid": 4121,
            "command": ["python3", "-m", "collector"], "source_type": "exec",
            "timestamp": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f UTC")}


def test_every_line_a_real_collector_writes_reaches_datadog(make_simulator, tmp_path):
    """The real collector's stdout and stderr, and a crash's traceback, through the whole topology."""
    simulator = make_simulator(seed=81, rate=0.05, history=3600)
    done = run_collector(simulator.url, tmp_path / "state", "--once", "--since", "1h", "--max-rpm", "0")
    assert done.returncode == 0, done.stderr
    activities = done.stdout.decode().splitlines()
    traceback = ["Traceback (most recent call last):", '  File "/usr/lib/python3/collector/output.py", line 40',
                 "OSError: [Errno 28] No space left on device"]
    logs = [*done.stderr.splitlines(), *traceback]
    assert len(activities) > 50 and len(logs) > len(traceback)
    run = Run(Config([MAIN, STAGES[0]], ROOT))
    for stream, lines in (("stdout", activities), ("stderr", logs)):
        for line in lines:
            run.insert("feed_streams", exec_event(line, stream))

    to_datadog = run.outputs.get("intake_window.current", [])
    assert sorted(event["id"] for event in to_datadog) == sorted(json.loads(line)["id"] for line in activities)
    assert all(event["ddsource"] == "claude-compliance-logs" and "stream" not in event for event in to_datadog)
    collector_logs = run.outputs["collector_logs"]
    assert len(collector_logs) == len(logs)
    assert [event["message"] for event in collector_logs if event.get("unparsed_line")] == traceback
    assert all(event["status"] == "error" for event in collector_logs if event.get("unparsed_line"))


def test_a_vrl_file_missing_from_the_working_directory_is_one_line(tmp_path):
    """deploy/ lays the files out under a working directory; a file left out must say which."""
    shutil.copy(ROOT / "vector.toml", tmp_path / "vector.toml")
    (tmp_path / "vector").mkdir()
    shutil.copy(ROOT / "vector" / "geoip-off.toml", tmp_path / "vector" / "geoip-off.toml")
    tests = str(ROOT / "vector" / "tests.toml")
    done = subprocess.run([*CCL, "vector-test", "vector.toml", "vector/geoip-off.toml", tests],
                          capture_output=True, text=True, cwd=tmp_path, check=False)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith("error: remap 'normalize': file = 'vector/normalize.vrl': No such file or directory")
