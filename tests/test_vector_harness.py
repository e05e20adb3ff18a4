"""`ccl vector-test` builds inputs and judges outputs as `vector test` does (Vector v0.57.0:
build_input_event in src/config/unit_test/mod.rs, the unit-test sink in
src/config/unit_test/unit_test_components.rs)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from ccl.vector.harness import Config, run_tests
from tests.conftest import CCL, ROOT

PASS_THROUGH = '[transforms.pass]\ntype = "remap"\ninputs = []\nsource = "."\n'


def run(tmp_path: Path, tests: str) -> list:
    config = tmp_path / "config.toml"
    config.write_text(PASS_THROUGH + tests)
    return run_tests(Config([config], tmp_path))


def test_a_log_input_has_vectors_message_and_timestamp_unless_log_fields_set_them(tmp_path):
    results = run(tmp_path, '''
[[tests]]
name = "defaults"
[[tests.inputs]]
insert_at = "pass"
type = "log"
log_fields.a = 1
[[tests.outputs]]
extract_from = "pass"
[[tests.outputs.conditions]]
type = "vrl"
source = """
assert_eq!(.message, "")
assert!(is_timestamp(.timestamp))
assert!(to_unix_timestamp(now()) - to_unix_timestamp(timestamp!(.timestamp)) < 60)
assert_eq!(.a, 1)
"""

[[tests]]
name = "log_fields win"
[[tests.inputs]]
insert_at = "pass"
type = "log"
log_fields.message = "mine"
log_fields.timestamp = "not a time"
[[tests.outputs]]
extract_from = "pass"
[[tests.outputs.conditions]]
type = "vrl"
source = """
assert_eq!(.message, "mine")
assert_eq!(.timestamp, "not a time")
"""
''')
    assert [result.failures for result in results] == [[], []]


def test_an_input_without_a_type_is_raw(tmp_path):
    results = run(tmp_path, '''
[[tests]]
name = "raw by default"
[[tests.inputs]]
insert_at = "pass"
value = "Traceback (most recent call last):"
[[tests.outputs]]
extract_from = "pass"
[[tests.outputs.conditions]]
type = "vrl"
source = """
assert_eq!(.message, "Traceback (most recent call last):")
assert!(is_timestamp(.timestamp))
"""
''')
    assert results[0].failures == []


def test_a_raw_input_without_value_or_a_log_input_without_fields_is_refused(tmp_path):
    for entry in ('type = "raw"', 'type = "log"', ''):
        config = tmp_path / "config.toml"
        config.write_text(PASS_THROUGH + f'[[tests]]\nname = "t"\n[[tests.inputs]]\ninsert_at = "pass"\n{entry}\n'
                          '[[tests.outputs]]\nextract_from = "pass"\n')
        done = subprocess.run([*CCL, "vector-test", str(config)], capture_output=True, text=True, cwd=ROOT,
                              check=False)
        assert done.returncode == 2, entry
        assert "requires the field" in done.stderr and "Traceback" not in done.stderr


def test_an_output_that_receives_nothing_fails_unless_zero_was_expected(tmp_path):
    results = run(tmp_path, '''
[[tests]]
name = "nothing came, nothing asked"
no_outputs_from = []
[[tests.inputs]]
insert_at = "pass"
value = "x"
[[tests.outputs]]
extract_from = "drop_all"
[[tests.outputs]]
extract_from = "drop_all"
expected_event_count = 0

[transforms.drop_all]
type = "filter"
inputs = ["pass"]
condition = "false"
''')
    assert results[0].failures == ["drop_all: no events came out"]


def test_an_extract_from_that_names_no_output_fails(tmp_path):
    results = run(tmp_path, '''
[[tests]]
name = "typo"
[[tests.inputs]]
insert_at = "pass"
value = "x"
[[tests.outputs]]
extract_from = "pas"
expected_event_count = 0
''')
    assert results[0].failures == ["extract_from pas: no such output"]


def test_inputs_name_route_outputs_and_dropped_ports_as_vector_does(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(PASS_THROUGH + '''
[transforms.split]
type = "route"
inputs = ["pass"]
route.a = "true"
[transforms.strict]
type = "remap"
inputs = ["split.a", "split._unmatched"]
drop_on_error = true
reroute_dropped = true
source = "."
''')
    loaded = Config([config], tmp_path)
    assert loaded.output_ids() == ["pass", "split.a", "split._unmatched", "strict", "strict.dropped"]
    assert loaded.consumers("split._unmatched") == ["strict"]
    bad = tmp_path / "bad.toml"
    bad.write_text(PASS_THROUGH + '[transforms.x]\ntype = "remap"\ninputs = ["pass.dropped"]\nsource = "."\n')
    done = subprocess.run([*CCL, "vector-test", str(bad)], capture_output=True, text=True, cwd=ROOT, check=False)
    assert done.returncode == 2 and "'pass.dropped' of 'x' matches no component" in done.stderr
