"""vector.toml and fluent-bit.yaml: structure, and the Vector unit tests through the harness."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from ccl.vector_harness import LOOKUP_CALL, Config, run_tests
from ccl.vrl import check
from collector.settings import collect_parser
from tests.conftest import CCL, ROOT

MAIN = ROOT / "vector.toml"
STAGES = [ROOT / "vector" / "geoip-off.toml", ROOT / "vector" / "geoip-on.toml"]
SECRET_SHAPES = re.compile(r"sk-ant-|default_api_key|apikey\s*[:=]\s*[\"']?[0-9a-f]{20,}|\$\{", re.IGNORECASE)


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
        assert config.consumers("geoip") == ["dedupe"]
        assert config.consumers("feed_streams.collector_logs") == ["collector_logs"]


def test_no_secret_in_any_config_and_keys_come_from_the_environment():
    for path in [MAIN, *STAGES, ROOT / "vector" / "fluent-bit.yaml"]:
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
    assert source["decoding"]["codec"] == "json" and source["include_stderr"] is True
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
    assert "10 passed, 0 failed" in done.stdout


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
    assert "9 passed, 1 failed" in done.stdout


def test_the_harness_refuses_what_it_cannot_emulate(tmp_path):
    config = tmp_path / "odd.toml"
    config.write_text('[transforms.x]\ntype = "lua"\ninputs = []\n[[tests]]\nname = "t"\n'
                      '[[tests.inputs]]\ninsert_at = "x"\ntype = "log"\nlog_fields.a = 1\n')
    done = subprocess.run([*CCL, "vector-test", str(config)], capture_output=True, text=True, cwd=ROOT, check=False)
    assert done.returncode == 2 and "does not emulate" in done.stderr and "Traceback" not in done.stderr


def test_fluent_bit_runs_the_real_collector_and_ships_logs_apart():
    config = YAML(typ="safe").load((ROOT / "vector" / "fluent-bit.yaml").read_text())
    exec_input = next(i for i in config["pipeline"]["inputs"] if i["name"] == "exec")
    words = shlex.split(exec_input["command"])
    redirect = [word for word in words if word.startswith("2>")]
    assert redirect, "stderr (log lines) must not reach the activity stream"
    arguments = [word for word in words if word not in redirect]
    assert arguments[:3] == ["python3", "-m", "collector"]
    options = collect_parser("python -m collector").parse_args(arguments[3:])
    assert options.once  # exec reads until the command exits
    assert exec_input["parser"] == "claude_activity" and exec_input["buf_size"] == "8mb"
    outputs = {o["match"]: o for o in config["pipeline"]["outputs"]}
    assert outputs["claude.compliance"]["dd_source"] == "claude-compliance-logs"
    assert outputs["claude.collector"]["dd_service"] == "claude-compliance-collector"
    assert all(o["apikey"] == "${DD_API_KEY}" for o in outputs.values())


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
