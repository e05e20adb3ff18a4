"""vector/fluent-bit.yaml, checked setting by setting against what Fluent Bit's sources do with it
(fluent/fluent-bit at d55459d): parsers, time formats, retries, storage, threading, the late archive."""

from __future__ import annotations

import fnmatch
import io
import json
import re
import shlex
from datetime import UTC, datetime, timedelta

import pytest
from ruamel.yaml import YAML

from collector.log import JsonLog
from collector.settings import collect_parser
from tests.conftest import ROOT

CONFIG_PATH = ROOT / "vector" / "fluent-bit.yaml"
CONFIG = YAML(typ="safe").load(CONFIG_PATH.read_text())
INPUTS = CONFIG["pipeline"]["inputs"]
FILTERS = CONFIG["pipeline"]["filters"]
OUTPUTS = CONFIG["pipeline"]["outputs"]
PARSERS = {parser["name"]: parser for parser in CONFIG["parsers"]}
COLLECTOR_MAX_LINE_BYTES_DEFAULT = 16 * 1024 * 1024


def plugin(section: list[dict], name: str) -> dict:
    return next(entry for entry in section if entry["name"] == name)


def on(value: object) -> bool:
    """Fluent Bit's flb_utils_bool: on, true, yes (any case) are true."""
    return str(value).lower() in ("on", "true", "yes")


def size_in_bytes(text: str) -> int:
    """flb_utils_size_to_bytes: a number with an optional K/M/G (and optional B) suffix, base 1024."""
    match = re.fullmatch(r"(\d+)\s*([kmg]?)b?", str(text).lower())
    assert match, text
    return int(match[1]) * 1024 ** " kmg".index(match[2] or " ")


def fluent_bit_time(value: str, time_format: str) -> datetime:
    """What Fluent Bit's parser makes of `value` with `time_format`, for the formats used here.

    flb_parser_time_lookup splits the format at %L, reads up to nine digits of fraction there, and
    reads `Z` with %z as UTC (src/flb_parser.c, src/flb_strptime.c). Python's strptime, with %L
    read as %f, accepts the same strings (it needs the whole string, which only makes it stricter).
    """
    return datetime.strptime(value, time_format.replace("%L", "%f"))


def matching_parser(value: str, names: list[str]) -> str | None:
    """The first regex parser whose regex matches, as filter_parser tries them in order."""
    for name in names:
        regex = PARSERS[name]["regex"].replace("(?<", "(?P<")  # Onigmo's named groups in Python's syntax
        if re.match(regex, value):
            return name
    return None


# -- 1. the parsers this file uses are the parsers it defines ----------------------------------

def test_every_parser_named_is_defined_in_the_file():
    named = [entry["parser"] for entry in INPUTS if "parser" in entry]
    for entry in FILTERS:
        if entry["name"] == "parser":
            named.extend(entry["parser"] if isinstance(entry["parser"], list) else [entry["parser"]])
    assert named and all(name in PARSERS for name in named), named
    assert "json" not in named  # Fluent Bit's own `json` lives in a parsers.conf this file does not load


def test_the_collector_log_parser_reads_the_time_the_collector_writes():
    stream = io.StringIO()
    JsonLog(stream=stream, fmt="json").info("caught up", emitted=3)
    record = json.loads(stream.getvalue())
    parser = PARSERS[plugin(INPUTS, "tail")["parser"]]
    assert parser["format"] == "json" and parser["time_key"] == "time" and on(parser["time_keep"])
    parsed = fluent_bit_time(record["time"], parser["time_format"])
    assert abs(parsed - datetime.now(UTC)) < timedelta(seconds=60)


# -- 3. created_at, with or without a fraction of a second --------------------------------------

@pytest.mark.parametrize("created_at", [
    "2026-05-22T15:19:09Z", "2026-05-22T15:25:13.701734Z", "2026-05-22T15:19:09.946Z", "2026-05-22T15:19:09.9Z",
])
def test_created_at_sets_the_record_time_whole_second_or_not(created_at):
    parser_filter = plugin(FILTERS, "parser")
    assert parser_filter["match"] == "claude.compliance" and parser_filter["key_name"] == "created_at"
    # reserve_data keeps every other field of the activity, preserve_key keeps created_at itself
    assert on(parser_filter["reserve_data"]) and on(parser_filter["preserve_key"])
    name = matching_parser(created_at, parser_filter["parser"])
    assert name is not None, created_at
    parser = PARSERS[name]
    assert parser["format"] == "regex" and parser["time_key"] == "time"
    expected = datetime.fromisoformat(created_at.replace("Z", "+00:00"))
    assert fluent_bit_time(created_at, parser["time_format"]) == expected


def test_the_old_single_format_rejects_a_whole_second():
    with pytest.raises(ValueError):
        fluent_bit_time("2026-05-22T15:19:09Z", "%Y-%m-%dT%H:%M:%S.%LZ")


def test_the_activity_parser_leaves_the_time_to_created_at():
    exec_input = plugin(INPUTS, "exec")
    activity_parser = PARSERS[exec_input["parser"]]
    assert activity_parser["format"] == "json" and "time_key" not in activity_parser


# -- 2. an outage or a restart loses nothing ----------------------------------------------------

def test_every_output_retries_without_limit_and_every_input_buffers_on_disk():
    assert CONFIG["service"]["storage.path"].startswith("/")
    for output in OUTPUTS:
        assert str(output.get("retry_limit")).lower() in ("no_limits", "false", "off"), output["name"]
        assert "storage.total_limit_size" not in output  # a limit would discard the oldest chunks
    for entry in INPUTS:
        assert entry["storage.type"] == "filesystem", entry["name"]
    assert plugin(FILTERS, "rewrite_tag")["emitter_storage.type"] == "filesystem"


# -- 4. a long catch-up does not stall the engine -----------------------------------------------

def test_the_exec_input_runs_the_real_collector_threaded():
    exec_input = plugin(INPUTS, "exec")
    assert on(exec_input["threaded"])
    words = shlex.split(exec_input["command"])
    redirect = [word for word in words if word.startswith("2>")]
    assert redirect, "stderr (log lines) must not reach the activity stream"
    assert redirect[0].lstrip("2>") == plugin(INPUTS, "tail")["path"]
    arguments = [word for word in words if word not in redirect]
    assert arguments[:3] == ["python3", "-m", "collector"]
    options = collect_parser("python -m collector").parse_args(arguments[3:])
    assert options.once  # exec reads until the command exits
    collector_cap = getattr(collect_parser("x").parse_args([]), "max_line_bytes", COLLECTOR_MAX_LINE_BYTES_DEFAULT)
    assert size_in_bytes(exec_input["buf_size"]) > collector_cap


def test_activities_and_collector_logs_go_to_their_own_datadog_source():
    datadog = {output["match"]: output for output in OUTPUTS if output["name"] == "datadog"}
    assert datadog["claude.compliance"]["dd_source"] == "claude-compliance-logs"
    assert datadog["claude.collector"]["dd_service"] == "claude-compliance-collector"
    assert all(output["apikey"] == "${DD_API_KEY}" for output in datadog.values())
    for number, line in enumerate(CONFIG_PATH.read_text().splitlines(), 1):
        if "${" in line:  # Fluent Bit substitutes only where a key is needed, never in a comment
            assert line.strip() == "apikey: ${DD_API_KEY}", f"fluent-bit.yaml:{number}"


# -- 5. activities older than Datadog's intake window go to an archive ---------------------------

def late_marker():
    from lupa import luajit21  # Fluent Bit embeds LuaJIT (lib/luajit-*)

    lua_filter = plugin(FILTERS, "lua")
    runtime = luajit21.LuaRuntime(unpack_returned_tuples=True)
    runtime.execute(lua_filter["code"])
    return runtime.globals()[lua_filter["call"]], runtime


def route(tag: str, record: dict) -> list[str]:
    """The outputs a record reaches: rewrite_tag's rule `$KEY REGEX NEW_TAG KEEP`, then `match`."""
    rule = plugin(FILTERS, "rewrite_tag")["rule"].split()
    key, regex, new_tag, keep = rule[0].lstrip("$"), rule[1], rule[2], on(rule[3])
    tags = [tag]
    if fnmatch.fnmatchcase(tag, plugin(FILTERS, "rewrite_tag")["match"]) and re.search(regex, str(record.get(key))):
        tags = [tag, new_tag] if keep else [new_tag]
    return [f"{output['name']}:{output['match']}" for t in tags for output in OUTPUTS
            if fnmatch.fnmatchcase(t, output["match"])]


@pytest.mark.parametrize(("age_hours", "archived"), [(0.1, False), (16.9, False), (17.1, True), (240, True)])
def test_an_activity_older_than_the_intake_window_goes_to_the_archive_not_datadog(age_hours, archived):
    mark, runtime = late_marker()
    timestamp = datetime.now(UTC).timestamp() - age_hours * 3600
    record = runtime.table_from({"id": "activity_01TESTLATE", "type": "org_user_deleted"})
    code, new_timestamp, new_record = mark("claude.compliance", timestamp, record)
    fields = dict(new_record.items())
    assert code == (2 if archived else 0) and new_timestamp == timestamp
    assert fields["id"] == "activity_01TESTLATE"
    reached = route("claude.compliance", fields)
    if archived:
        assert fields["ccl_intake"] == "late"
        assert reached == ["file:claude.compliance.late"]
    else:
        assert "ccl_intake" not in fields
        assert reached == ["datadog:claude.compliance"]
    archive = plugin(OUTPUTS, "file")
    assert archive["format"] == "plain" and on(archive["mkdir"])


def test_the_late_archive_tag_is_not_caught_by_the_activity_filters_again():
    for entry in FILTERS:
        assert not fnmatch.fnmatchcase("claude.compliance.late", entry["match"]), entry["name"]
