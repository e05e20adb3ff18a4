"""RememberingNormalizer (ccl detect's normalize.vrl with parsed user agents remembered) writes what
the production program writes, event for event, and falls back to it wherever it cannot be sure."""

from __future__ import annotations

import random

import orjson
import pytest

from ccl.content.catalog import activity_types
from ccl.simulator.generator import ActivityFactory
from ccl.simulator.population import Population
from ccl.vector.normalize import Normalizer
from ccl.vector.normalize_memo import RememberingNormalizer, _RememberingProgram, split_program, without_ocsf
from ccl.vector.vrl import VrlProgram

USER_AGENTS = [
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
    "Safari/537.36",
    "Mozilla/5.0 (iPad; CPU OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 "
    "Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.43 "
    "Mobile Safari/537.36",
    "Googlebot/2.1 (+http://www.google.com/bot.html)", "python-httpx/0.28.1", "curl/8.5.0", "x", "{\"}", "",
]


@pytest.fixture(scope="module")
def both():
    return Normalizer(), RememberingNormalizer()


def same(production: Normalizer, remembering: RememberingNormalizer, activity: dict) -> None:
    expected, got = production.normalize(activity), remembering.normalize(activity)
    assert orjson.dumps(got) == orjson.dumps(expected), activity  # same values, same key order


def test_the_production_text_has_the_shape_relied_on(both):
    # If normalize.vrl's user-agent block changes shape, detect falls back to the slow path: say so here.
    assert isinstance(both[1]._normalize, _RememberingProgram) and both[1]._normalize.lean is not None


def test_every_activity_type_normalizes_as_the_production_program_does(both):
    rng = random.Random(13)
    factory = ActivityFactory(Population(rng), rng)
    for index, activity_type in enumerate(sorted(activity_types())):
        activity = factory.make(activity_type, "2026-03-01T10:00:00.123456Z")
        if isinstance(activity.get("actor"), dict):
            activity["actor"]["user_agent"] = USER_AGENTS[index % len(USER_AGENTS)]
        same(*both, activity)
        without = both[1].normalize_without_ocsf(activity)
        expected = {key: value for key, value in both[0].normalize(activity).items() if key != "ocsf"}
        assert "ocsf" not in without and without == expected
    assert both[1]._normalize.remembered  # the remembered path did run


@pytest.mark.parametrize("tail", [
    ".usr.extra = 1", "del(.usr)", ".ocsf.x, err = to_int(.a)", 'if true { .evt.name = "x" }', '."ocsf".x = 1',
    ".ocsfx = 1", "abort", ". = {}", "x = compact(.)", ".ocsf |= {}\n.evt |= {}",
])
def test_the_ocsf_part_is_left_out_only_where_it_writes_under_ocsf_alone(tail):
    source = Normalizer()._normalize.source
    assert without_ocsf(source) is not None
    assert without_ocsf(source + "\n" + tail + "\n") is None
    assert without_ocsf(source + "\nx, err = to_int(.a)\nresource = {}\nresource.uid = x\n.ocsf.y = resource\n")
    assert without_ocsf(source.replace("# ccl-detect:", "# ccl-detect (moved):")) is None


@pytest.mark.parametrize("actor", [
    {"type": "user_actor", "user_agent": None}, {"type": "user_actor", "user_agent": 42},
    {"type": "user_actor"}, "not an object", None,
    {"type": "user_actor", "user_agent": USER_AGENTS[0], "email_address": "ana@example.com"},
])
def test_odd_actors_normalize_as_the_production_program_does(both, actor):
    same(*both, {"id": "activity_01A", "type": "claude_chat_viewed", "created_at": "2026-03-01T10:00:00Z",
                 "actor": actor})


def test_an_activity_carrying_its_own_http_useragent_or_the_memo_keys(both):
    base = {"id": "activity_01B", "type": "sso_login_succeeded", "created_at": "2026-03-01T10:00:00Z",
            "actor": {"type": "user_actor", "user_agent": USER_AGENTS[1]}}
    same(*both, {**base, "http": {"useragent": USER_AGENTS[2]}})
    same(*both, {**base, "actor": {"type": "user_actor"}, "http": {"useragent": USER_AGENTS[2]}})
    same(*both, {**base, "ccl_memo_useragent": USER_AGENTS[2], "ccl_memo_useragent_details": {"x": 1}})
    same(*both, {**base, "ccl_memo_useragent_details": None})


def test_a_block_that_reads_more_than_the_user_agent_is_not_remembered():
    source = Normalizer()._normalize.source
    assert split_program(source) is not None
    widened = source.replace('browser_family = if', 'browser_family = if .type == "x" { "X" } else if', 1)
    assert widened != source and split_program(widened) is None
    assert split_program(source.replace("if is_string(.http.useragent) &&", "if true &&")) is None


@pytest.mark.parametrize("later", [
    '.http.useragent = "changed"', 'x = .http.useragent_details', 'del(.http)', 'x = keys(.)', '. = {}',
    '.ccl.copy = ."http"',
])
def test_a_program_that_refers_to_the_block_s_paths_after_it_is_run_whole(later):
    # The details are added after the program: nothing after the block may see or change them.
    source = Normalizer()._normalize.source
    assert split_program(source + "\n" + later + "\n") is None
    assert split_program(source + "\n# " + later + "\n.ccl.note = \"" + later.replace('"', "'") + "\"\n")


def test_a_block_that_does_not_run_for_every_event_is_run_in_place():
    source = Normalizer()._normalize.source
    block_at = source.index("if is_string(.http.useragent) &&")
    nested = source[:block_at] + "if .type != \"x\" {\n" + source[block_at:] + "\n}\n"
    assert split_program(nested) is None


def test_a_failing_derived_program_gives_the_production_diagnostic():
    remembering = RememberingNormalizer()
    remembering._normalize.rest = VrlProgram('abort "derived failure"', "derived.vrl")
    remembering._normalize.production = VrlProgram('abort "production failure"', "normalize.vrl")
    event = remembering.normalize({"id": "activity_01Z", "type": "claude_chat_viewed",
                                   "actor": {"type": "user_actor", "user_agent": USER_AGENTS[0]}})
    assert "production failure" in event["ccl"]["normalize_error"] and remembering.failed == 1
