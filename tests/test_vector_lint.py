"""Every option of every Vector config file, checked against Vector 0.57.0's own reference."""

from __future__ import annotations

import re
import subprocess

import pytest

from ccl.vector.lint import key_lines, lint_file, lint_text, load_table
from tests.conftest import CCL, ROOT

VECTOR_FILES = sorted([ROOT / "vector.toml", *(ROOT / "vector").glob("*.toml")], key=str)


def test_the_table_names_its_source_and_holds_every_component_type_this_project_uses():
    table = load_table()
    source = table["source"]
    assert table["vector_version"] == "0.57.0" and source["tag"] == "v0.57.0"
    assert re.fullmatch(r"[0-9a-f]{40}", source["commit"])
    assert all(path.startswith("website/cue/reference/") for path in source["files"])
    components = table["components"]
    assert set(components["sources"]) == {"exec"}
    assert set(components["transforms"]) == {"remap", "route", "filter", "dedupe"}
    assert set(components["sinks"]) == {"datadog_logs", "file", "aws_s3"}
    assert set(components["enrichment_tables"]) == {"geoip"}
    assert "buffer" in table["common"]["sinks"]
    assert table["tests"]["outputs"]["type"]["array"]["items"]["object"]["options"]["expected_event_count"]


@pytest.mark.parametrize("path", VECTOR_FILES, ids=lambda p: p.name)
def test_every_option_of_every_config_file_is_one_vector_knows(path):
    assert [str(problem) for problem in lint_file(path)] == []


def test_the_s3_archive_example_in_vector_toml_is_valid_too():
    lines = (ROOT / "vector.toml").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("# [sinks.to_archive]"))
    block = []
    for line in lines[start:]:
        if not line.startswith("# "):
            break
        block.append(line[2:])
    assert any('type = "aws_s3"' in line for line in block)
    assert [str(problem) for problem in lint_text("\n".join(block), "vector.toml", first_line=start + 1)] == []


BROKEN = '''data_dir = "/var/lib/vector"

[sources.feed]
type = "exec"
mode = "streamin"
command = ["python3"]
decoding.codec = "json"
framing.method = "newline_delimited"
framing.newline_delimited.max_lenght = 5

[transforms.parse]
type = "remap"
inputs = ["feed"]
drop_on_error = "yes"
source = """
.a = 1
"""

[sinks.dd]
type = "datadog_logs"
inputs = ["parse"]
buffer.type = "disk"
buffer.max_events = 10
compression = "brotli"

[sinks.out]
type = "file"
inputs = ["parse"]
encoding.codec = "json"

[sinks.k]
type = "kafka"
inputs = ["parse"]

[[tests]]
name = "t"
[[tests.inputs]]
type = "log"
log_fields.a = 1
[[tests.outputs]]
extract_from = "parse"
expected_event_cont = 1
'''


def test_what_vector_would_refuse_is_reported_with_file_and_line(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text(BROKEN)
    problems = [str(problem) for problem in lint_file(path)]
    name = str(path)
    assert problems == [
        f"{name}:5: sources.feed.mode: 'streamin' is not one of 'scheduled', 'streaming'",
        f"{name}:9: sources.feed.framing.newline_delimited.max_lenght: unknown option (Vector 0.57.0 refuses it); "
        "did you mean `max_length`?",
        f"{name}:14: transforms.parse.drop_on_error: expected true or false, got a string 'yes'",
        f"{name}:23: sinks.dd.buffer.max_events: only applies when type = \"memory\"",
        f"{name}:24: sinks.dd.compression: 'brotli' is not one of 'gzip', 'none', 'snappy', 'zlib', 'zstd'",
        f"{name}:26: sinks.out: misses the required option `path`",
        f"{name}:32: sinks.k.type: 'kafka' is not in the option table of Vector 0.57.0 (it holds the sinks this "
        "project uses: aws_s3, datadog_logs, file); its options are not checked",
        f"{name}:37: tests[0].inputs[0]: misses the required option `insert_at`",
        f"{name}:42: tests[0].outputs[0].expected_event_cont: unknown option (Vector 0.57.0 refuses it); "
        "did you mean `expected_event_count`?",
    ]


def test_ccl_vector_test_refuses_a_config_vector_would_not_load(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text((ROOT / "vector.toml").read_text().replace(
        "framing.newline_delimited.max_length", "framing.newline_delimited.max_len"))
    done = subprocess.run([*CCL, "vector-test", str(path), "vector/geoip-off.toml", "vector/tests.toml"],
                          capture_output=True, text=True, cwd=ROOT, check=False)
    assert done.returncode == 2, done.stdout
    line = next(number for number, text in enumerate(path.read_text().splitlines(), 1) if "max_len =" in text)
    assert f"{path}:{line}: sources.compliance_feed.framing.newline_delimited.max_len: unknown option" in done.stderr
    assert "Running tests" not in done.stdout and "Traceback" not in done.stderr


def test_keys_are_found_in_headers_dotted_keys_quoted_keys_and_arrays_of_tables():
    text = '''# comment = 1
[a.b]
x.y = 1
"q.r" = 2
s = """
[not.a.header]
z = 3
"""
arr = [
  "w = 4",
]
[[t]]
n = 1
[[t.u]]
m = 2
[[t]]
n = 3
'''
    lines = key_lines(text)
    assert lines[("a", "b")] == 2
    assert lines[("a", "b", "x", "y")] == 3
    assert lines[("a", "b", "q.r")] == 4
    assert lines[("a", "b", "s")] == 5
    assert ("not", "a", "header") not in lines and ("a", "b", "z") not in lines
    assert ("a", "b", "w") not in lines
    assert lines[("t", 0, "n")] == 13
    assert lines[("t", 0, "u", 0, "m")] == 15
    assert lines[("t", 1, "n")] == 17


RUNTIME_FILES = [ROOT / "vector.toml", ROOT / "vector" / "geoip-off.toml", ROOT / "vector" / "geoip-on.toml"]
TEST_FILES = [ROOT / "vector" / "tests.toml", ROOT / "vector" / "tests-geoip.toml"]


@pytest.mark.parametrize("version", ["0.54.0", "0.57.0"])
def test_the_topology_loads_on_every_supported_vector(version):
    """The README's claim, Vector 0.54 to 0.57, checked at both ends with each release's own table."""
    table = load_table(version)
    assert table["source"]["tag"] == f"v{version}"
    assert [str(problem) for path in RUNTIME_FILES for problem in lint_file(path, table)] == []


def test_the_unit_tests_need_vector_0_56():
    problems = [problem.message for path in TEST_FILES for problem in lint_file(path, load_table("0.54.0"))]
    assert problems and all(message.split(": ")[1].startswith("unknown option") and "expected_event_count" in message
                            for message in problems)
    assert [problem for path in TEST_FILES for problem in lint_file(path, load_table("0.57.0"))] == []
