"""Hostile content: files and inputs crafted to exhaust `ccl`, each answered by one clear message.

Every test reproduces an attack from the red-team pass of issue 11 (alias bombs, deep nesting,
huge repeats and offsets, wildcard backtracking, unusable paths and URLs) and checks that the
answer is a `file:line: what` message and the contract's exit code, never a traceback. The
attacks that once ran for minutes run in a subprocess with a timeout, so that a regression fails
instead of hanging the suite.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest
from click.testing import CliRunner

from ccl.cli import cli
from ccl.datadog.client import ConfigError, api_url
from ccl.detection.conditions import ConditionError, compile_condition
from ccl.detection.query import QueryError, parse
from ccl.detection.query.match import wildcard_matcher
from tests.conftest import CCL, ROOT

RULE = (ROOT / "detections" / "sso-disabled.yaml").read_text()
FIRST_EVENT = '      - activity: {"type": "org_sso_toggled", "enabled": false}\n'


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """A copy of the repository's content, as the current directory."""
    for directory in ("pipelines", "detections", "tests/data"):
        shutil.copytree(ROOT / directory, tmp_path / directory)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def ccl(*args: str):
    result = CliRunner().invoke(cli, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result


def ccl_guarded(cwd: Path, *args: str, seconds: float = 90) -> subprocess.CompletedProcess:
    """`ccl` in a subprocess that may not outlive `seconds` nor take more than 1 GB."""
    limit = "import resource; resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30)); "
    command = [CCL[0], "-c", limit + "import sys; from ccl import main; sys.argv = ['ccl', *sys.argv[1:]]; main()",
               *args]
    try:
        result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=seconds, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail(f"ccl {' '.join(args)} still running after {seconds} s")
    assert "Traceback" not in result.stderr and "MemoryError" not in result.stderr, result.stderr[-2000:]
    return result


def rule_with(text: str, old: str = FIRST_EVENT) -> str:
    assert old in RULE
    return RULE.replace(old, text)


# -- YAML -----------------------------------------------------------------------------------------

def billion_laughs() -> str:
    """The classic alias bomb: nine levels of nine aliases, about 500 bytes, 387 million strings."""
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"l{level}: &l{level} [{', '.join([f'*l{level - 1}'] * 9)}]" for level in range(1, 9)]
    return "id: laughs\n" + "\n".join(lines) + "\n"


def test_a_yaml_alias_bomb_is_refused_in_a_moment(repo):
    bomb = billion_laughs()
    assert len(bomb) < 600
    (repo / "detections" / "laughs.yaml").write_text(bomb)
    result = ccl_guarded(repo, "validate", "detections/laughs.yaml")
    assert result.returncode == 2
    assert re.search(r"detections/laughs\.yaml:\d+: aliases \(\*name\) expand this document to [\d,]+ values; "
                     r"ccl accepts at most 200,000", result.stderr), result.stderr


@pytest.mark.parametrize(("text", "message"), [
    ("id: deep\nx: " + "[" * 5000 + "]" * 5000 + "\n", "detections/deep.yaml:2: nested more than 50 levels deep"),
    ("id: deep\n" + "".join("  " * i + f"k{i}:\n" for i in range(60)) + "  " * 60 + "v: 1\n",
     "detections/deep.yaml:51: nested more than 50 levels deep"),
    ("id: deep\nx: &a [1, *a]\n", "detections/deep.yaml:2: an alias (*name) refers to a value that contains it"),
    ("id: deep\nx: &a [1]\ny: [" + ", ".join(["*a"] * 201) + "]\n", "more than 200 aliases"),
], ids=["flow", "block", "recursive", "many-aliases"])
def test_deep_or_recursive_yaml_is_one_clear_problem(repo, text, message):
    (repo / "detections" / "deep.yaml").write_text(text)
    result = ccl("validate", "detections/deep.yaml")
    assert result.exit_code == 2 and message in result.output, result.output


def test_yaml_anchors_within_the_bounds_still_work(repo):
    text = rule_with(FIRST_EVENT.replace("- activity:", "- &switched_off\n        activity:") +
                     "      - *switched_off\n").replace("expect: {\"signals\": 1,", "expect: {\"signals\": 1,")
    (repo / "detections" / "sso-disabled.yaml").write_text(text)
    assert ccl("validate", "detections/sso-disabled.yaml").exit_code == 0


# -- rule tests: repeat and offsets ---------------------------------------------------------------

def test_a_huge_repeat_is_refused_by_validate_and_test(repo):
    text = rule_with(FIRST_EVENT + "        repeat: 100000000\n")
    (repo / "detections" / "sso-disabled.yaml").write_text(text)
    line = text.splitlines().index("        repeat: 100000000") + 1
    for command in ("validate", "test"):
        result = ccl_guarded(repo, command, "detections/sso-disabled.yaml")
        assert result.returncode == 2
        assert f"detections/sso-disabled.yaml:{line}: tests.0.events.0.repeat: 100,000,000 is more than 10,000, " \
               "the most ccl accepts" in result.stderr, result.stderr


@pytest.mark.parametrize(("extra", "message"), [
    ("        at: 99999999999999d\n", "tests.0.events.0.at: the events would run until 99,999,999,999,999 days after "
                                     "the test's start; a test's timeline spans at most 365 days"),
    ("        repeat: 9000\n        every: 1h\n", "tests.0.events.0.every: the events would run until 375 days"),
    ("        at: soon\n", "tests.0.events.0.at: cannot read 'soon' as a duration"),
], ids=["far-offset", "long-series", "unreadable"])
def test_offsets_beyond_a_tests_timeline_are_refused(repo, extra, message):
    (repo / "detections" / "sso-disabled.yaml").write_text(rule_with(FIRST_EVENT + extra))
    result = ccl("test", "detections/sso-disabled.yaml")
    assert result.exit_code == 2 and message in result.output, result.output


def test_too_many_events_in_one_test_are_refused(repo):
    events = "".join(FIRST_EVENT + "        repeat: 6000\n" for _ in range(2))
    (repo / "detections" / "sso-disabled.yaml").write_text(rule_with(events))
    result = ccl("validate", "detections/sso-disabled.yaml")
    assert result.exit_code == 2
    assert "tests.0.events: 12,000 events in one test; ccl accepts at most 10,000" in result.output


# -- pipeline tests -------------------------------------------------------------------------------

def set_pipeline_tests(repo: Path, tests: str) -> None:
    path = repo / "pipelines" / "claude-compliance-logs.yaml"
    text = path.read_text()
    path.write_text(text[:text.index("\ntests:\n")] + "\ntests:\n" + tests + "\n")


@pytest.mark.parametrize(("tests", "code", "message"), [
    ("  - {}", 2, "tests.0: missing `datadog_samples`; add it"),
    ("  - datadog_samples: 42", 2, "tests.0.datadog_samples: expected string, got int"),
    ("  - datadog_samples: ../nowhere.yaml", 2, "tests.0.datadog_samples: ../nowhere.yaml does not exist"),
    ("  - datadog_samples: ../detections/sso-disabled.yaml", 1,
     "detections/sso-disabled.yaml: tests[0]: needs `sample` (the raw log, JSON text) and `result: {custom: ...}`"),
    ("  - datadog_samples: ../bad-sample.yaml", 1, "bad-sample.yaml: tests[0].sample: not JSON"),
    ("  - datadog_samples: ../bomb.yaml", 1, "bomb.yaml:3: aliases (*name) expand this document"),
], ids=["no-key", "not-a-path", "missing-file", "wrong-shape", "sample-not-json", "alias-bomb"])
def test_a_malformed_pipeline_test_is_one_clear_message(repo, tests, code, message):
    (repo / "bad-sample.yaml").write_text('tests:\n  - sample: "{not json"\n    result: {custom: {}}\n')
    (repo / "bomb.yaml").write_text(billion_laughs())
    set_pipeline_tests(repo, tests)
    result = ccl("test", "pipelines")
    assert result.exit_code == code and message in result.output, result.output


# -- queries and conditions -----------------------------------------------------------------------

def query_rule(query: str) -> str:
    return rule_with('    query: "' + query.replace('"', '\\"') + '"\n',
                     old='    query: "@evt.name:org_sso_toggled @enabled:false"\n')


@pytest.mark.parametrize(("query", "message"), [
    ("(" * 5000 + "@enabled:false" + ")" * 5000, "characters; ccl accepts queries of at most 4,000"),
    ("(" * 40 + "@enabled:false" + ")" * 40, "the query does not parse: nested deeper than 32 levels (parentheses "
                                             "and NOT) at character 33"),
    ("NOT " * 100 + "@enabled:false", "nested deeper than 32 levels"),
    ("@evt.name:" + "(" * 40 + "org_sso_toggled" + ")" * 40, "nested deeper than 32 levels"),
], ids=["long", "parentheses", "not", "value-group"])
def test_deeply_nested_or_huge_queries_are_refused(repo, query, message):
    (repo / "detections" / "sso-disabled.yaml").write_text(query_rule(query))
    result = ccl("validate", "detections/sso-disabled.yaml")
    line = RULE.splitlines().index('    query: "@evt.name:org_sso_toggled @enabled:false"') + 1
    assert result.exit_code == 2 and f"detections/sso-disabled.yaml:{line}: queries.0.query: " in result.output
    assert message in result.output, result.output


def test_parser_and_conditions_refuse_depth_that_would_exhaust_the_recursion():
    for query in ("(" * 3000 + "a" + ")" * 3000, "NOT " * 3000 + "a", "-" * 3000 + "a"):
        with pytest.raises(QueryError):
            parse(query)
    with pytest.raises(ConditionError, match="characters; ccl accepts conditions of at most 1,000"):
        compile_condition("(" * 3000 + "a > 0" + ")" * 3000, {"a"})
    with pytest.raises(ConditionError, match="parentheses nested deeper than 32 levels"):
        compile_condition("(" * 33 + "a > 0" + ")" * 33, {"a"})
    holds, _ = compile_condition(" || ".join(["a > 1"] * 100), {"a"})
    assert holds({"a": 2}) and not holds({"a": 0})


def test_many_wildcards_do_not_backtrack(repo):
    """25 stars once took minutes in `ccl test` and `ccl validate`; the answer must not change."""
    stars = "org*" + "_*" * 25 + "x"
    (repo / "detections" / "sso-disabled.yaml").write_text(
        query_rule(f"@evt.name:org_sso_toggled @enabled:false -@usr.email:{stars}"))
    result = ccl_guarded(repo, "test", "detections/sso-disabled.yaml")
    assert result.returncode == 0, result.stdout + result.stderr
    # The rule's firing and quiet tests, and its actor-matrix check, all pass.
    assert re.search(r"\b(\d+) tests: \1 passed, 0 failed", result.stdout), result.stdout
    (repo / "detections" / "sso-disabled.yaml").write_text(query_rule(f"@evt.name:{stars}"))
    refused = ccl_guarded(repo, "validate", "detections/sso-disabled.yaml")
    assert refused.returncode == 2 and "matches none of the 514 documented activity types" in refused.stderr
    snippet = ("from ccl.detection.query.match import compile_query\n"
               f"event = {{'usr': {{'email': 'org' + '_' * 3000}}, 'message': 'org ' + '_ ' * 3000}}\n"
               f"print(compile_query('@usr.email:{stars}')(event), compile_query('{stars}')(event))")
    try:
        verdicts = subprocess.run([CCL[0], "-c", snippet], capture_output=True, text=True, timeout=60, check=True)
    except subprocess.TimeoutExpired:
        pytest.fail("matching 25 wildcards against 3,000 characters still running after 60 s")
    assert verdicts.stdout.split() == ["False", "False"]


@cache
def reference_glob(pattern: str, text: str) -> bool:
    """Plain dynamic programming over (pattern, text): the definition of `*` and `?`, slowly."""
    if not pattern:
        return not text
    if pattern[0] == "*":
        return reference_glob(pattern[1:], text) or (bool(text) and reference_glob(pattern, text[1:]))
    if pattern[0] == "\\" and len(pattern) > 1:
        return bool(text) and text[0] == pattern[1] and reference_glob(pattern[2:], text[1:])
    return bool(text) and (pattern[0] == "?" or pattern[0] == text[0]) and reference_glob(pattern[1:], text[1:])


def test_the_wildcard_matcher_agrees_with_the_definition_of_wildcards():
    chooser = random.Random(11)
    for _ in range(20000):
        pattern = "".join(chooser.choice("ab*?_\\") for _ in range(chooser.randint(1, 8))).rstrip("\\") or "*"
        text = "".join(chooser.choice("ab_*?\n") for _ in range(chooser.randint(0, 10)))
        assert wildcard_matcher(pattern)(text) == reference_glob(pattern, text), (pattern, text)


# -- JSON lines, output paths, URLs ---------------------------------------------------------------

def test_deeply_nested_json_lines_are_skipped_with_their_line_number(repo):
    # 1,020 levels: within what orjson reads, beyond what json.dumps writes back.
    deep_object = ('{"id": "activity_01DEEP", "type": "org_sso_toggled", "created_at": "2026-03-02T09:00:00Z", "x": '
                   + '{"x": ' * 1019 + "{}" + "}" * 1020)
    fine = {"id": "activity_01OK", "type": "org_sso_toggled", "created_at": "2026-03-02T09:00:00Z", "enabled": False,
            "actor": {"type": "user_actor", "email_address": "ana@example.com", "user_id": "user_01ANA"}}
    lines = ["[" * 100000 + "]" * 100000, deep_object, json.dumps(fine)]
    (repo / "deep.ndjson").write_text("\n".join(lines) + "\n")
    normalized = ccl("normalize", "deep.ndjson")
    assert normalized.exit_code == 2
    assert "deep.ndjson:1: nested too deeply to be an activity; line skipped" in normalized.output
    assert "deep.ndjson:2: nested too deeply to be an activity; line skipped" in normalized.output
    assert '"activity_01OK"' in normalized.output
    detected = ccl("detect", "--events", "deep.ndjson")
    assert detected.exit_code == 2 and "deep.ndjson:1: nested too deeply to be an activity" in detected.output
    assert '"rule": "sso-disabled"' in detected.output


def test_render_into_an_impossible_directory_is_one_clear_error(repo):
    result = ccl("render", "detections/sso-disabled.yaml", "--out", "/dev/null/x")
    assert result.exit_code == 2
    assert "error: cannot write the payloads under /dev/null/x/: /dev/null/x/rules: Not a directory" in result.output


@pytest.mark.parametrize(("url", "message"), [
    ("http://[::1", "DD_API_URL is not a URL (Invalid port: ':1')"),
    ("http://127.0.0.1:9/\x01", "DD_API_URL holds a control character"),
    ("ftp://example.com", "DD_API_URL must start with https:// (or http://) and name a host"),
    ("api.datadoghq.com", "DD_API_URL must start with https:// (or http://) and name a host"),
], ids=["unclosed-ipv6", "control-character", "scheme", "no-scheme"])
def test_an_unusable_dd_api_url_is_refused_before_any_call(repo, monkeypatch, url, message):
    monkeypatch.setenv("DD_API_KEY", "k" * 32)
    monkeypatch.setenv("DD_APP_KEY", "a" * 40)
    monkeypatch.setenv("DD_API_URL", url)
    result = ccl("plan")
    assert result.exit_code == 2 and message in result.output, result.output


def test_a_nul_byte_in_dd_api_url_is_refused(monkeypatch):
    # A real environment cannot hold NUL (exec refuses it); a process can still be handed one.
    monkeypatch.setattr(os, "environ", {"DD_API_URL": "https://api.datadoghq.com\x00.evil"})
    with pytest.raises(ConfigError, match="DD_API_URL holds a control character"):
        api_url(None)
