"""`ccl validate`: schema and semantic checks, every problem as `path:line: what, and the fix`."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator

from ccl.content.assets import Asset, Problem
from ccl.content.attributes import is_known
from ccl.content.catalog import activity_types
from ccl.datadog.ownership import reserved_tag_problems
from ccl.datadog.samples import SamplesError, check_reference
from ccl.detection.conditions import ConditionError, compile_condition
from ccl.detection.query import MAX_QUERY_LENGTH, QueryError, attribute_fields, event_names, parse
from ccl.detection.query.match import wildcard_matcher
from ccl.detection.rules import WINDOW_VALUES
from collector.timeparse import TimeFormatError, parse_duration

TEMPLATE_ATTRIBUTE = re.compile(r"\{\{\s*@([A-Za-z0-9_.]+)\s*\}\}")
TACTIC = re.compile(r"^tactic:TA\d{4}(-[a-z-]+)?$")
TECHNIQUE = re.compile(r"^technique:T\d{4}(\.\d{3})?(-[a-z-]+)?$")
MAX_PROCESSORS = 20
MAX_TEST_SPAN = 365 * 86400  # the longest windows (new_value learning + forget-after) are 60 days
MAX_TEST_EVENTS = 10_000


@cache
def schema(kind: str) -> Draft202012Validator:
    text = resources.files("ccl").joinpath(f"schemas/{kind}.json").read_text(encoding="utf-8")
    return Draft202012Validator(json.loads(text))


def validate(assets: list[Asset]) -> list[Problem]:
    problems: list[Problem] = []
    seen: dict[tuple[str, str], Asset] = {}
    for asset in assets:
        schema_problems = _schema_problems(asset)
        problems.extend(schema_problems)
        key = (asset.kind, asset.id)
        if key in seen:
            problems.append(Problem(asset.path, asset.line("id"), f"{asset.kind} id {asset.id!r} is also used by "
                                    f"{seen[key].path}; ids must be unique, rename one"))
        else:
            seen[key] = asset
        if schema_problems:
            continue  # semantic checks assume the shape is right
        checker = {"rule": _check_rule, "dashboard": _check_dashboard, "monitor": _check_monitor,
                   "pipeline": _check_pipeline}[asset.kind]
        problems.extend(checker(asset))
        problems.extend(reserved_tag_problems(asset))
    return sorted(problems, key=lambda p: (str(p.path), p.line, p.message))


def _schema_problems(asset: Asset) -> list[Problem]:
    problems = []
    for error in sorted(schema(asset.kind).iter_errors(asset.data), key=lambda e: list(e.absolute_path)):
        path = list(error.absolute_path)
        where = ".".join(str(part) for part in path) or "(top level)"
        line = asset.line(*path)
        if error.validator == "additionalProperties":
            extra = [key for key in error.instance if key not in (error.schema.get("properties") or {})]
            line = asset.line(*path, extra[0]) if extra else line
        problems.append(Problem(asset.path, line, f"{where}: {_explain(error)}"))
    return problems


def _explain(error: Any) -> str:
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return f"missing `{missing}`; add it"
    if error.validator == "additionalProperties":
        extra = re.findall(r"'([^']+)'", error.message)
        allowed = sorted((error.schema.get("properties") or {}).keys())
        return f"unknown key {', '.join(map(repr, extra))}; allowed here: {', '.join(allowed)}"
    if error.validator == "enum":
        return f"{error.instance!r} is not one of {', '.join(map(str, error.validator_value))}"
    if error.validator == "pattern" and list(error.absolute_path)[-1:] == ["nearest"]:
        return (f"{error.instance!r} names no Datadog or Panther rule; write `Datadog def-000-xxx (severity not "
                "published)` or `Panther Anthropic.Activity.<Rule> (<severity>)`, several joined by `; `, or `none`")
    if error.validator == "pattern":
        return (f"{error.instance!r} does not match {error.validator_value} "
                "(attributes start with @, ids are kebab-case)")
    if error.validator == "type":
        return f"expected {error.validator_value}, got {type(error.instance).__name__}"
    if error.validator == "maximum":
        return f"{error.instance:,} is more than {error.validator_value:,}, the most ccl accepts"
    if error.validator == "minItems":
        return f"needs at least {error.validator_value} item(s)"
    return error.message


def _duration(asset: Asset, problems: list[Problem], keys: tuple[str | int, ...], text: Any) -> float | None:
    try:
        return parse_duration(str(text))
    except TimeFormatError:
        problems.append(Problem(asset.path, asset.line(*keys), f"{'.'.join(map(str, keys))}: cannot read "
                                f"{text!r} as a duration; write e.g. 30s, 5m, 1h, 7d"))
        return None


def _check_query(asset: Asset, problems: list[Problem], keys: tuple[str | int, ...], text: str,
                 check_fields: bool = True, scoped: bool = True) -> None:
    label = ".".join(map(str, keys))

    def problem(message: str) -> Problem:  # the line only when there is a problem: finding it may parse the file
        return Problem(asset.path, asset.line(*keys), f"{label}: {message}")

    if scoped and "source:" in text.replace("@source:", ""):
        problems.append(problem("leave out `source:...`; render scopes every query to the right source"))
    if len(text) > MAX_QUERY_LENGTH:
        problems.append(problem(f"{len(text):,} characters; ccl accepts queries of at most {MAX_QUERY_LENGTH:,}, "
                                "split it into several"))
        return
    try:
        node = parse(text)
    except QueryError as error:
        problems.append(problem(f"the query does not parse: {error}"))
        return
    for name, is_pattern in event_names(node):
        if is_pattern:
            matches = wildcard_matcher(name)
            if not any(matches(known) for known in activity_types()):
                problems.append(problem(f"@evt.name:{name} matches none of the 514 documented activity types"))
        elif name not in activity_types():
            problems.append(problem(f"{name!r} is not a documented activity type{_suggest(name)}"))
    if check_fields:
        for path in sorted(attribute_fields(node)):
            if not is_known(path):
                problems.append(problem(f"@{path} is neither a normalized attribute nor a field of any activity "
                                        "type; check the spelling"))


def _suggest(name: str) -> str:
    import difflib

    close = difflib.get_close_matches(name, activity_types().keys(), n=1)
    return f"; did you mean {close[0]!r}?" if close else "; see `ccl test --coverage` for the catalog"


def _check_fields(asset: Asset, problems: list[Problem], keys: tuple[str | int, ...], fields: list[str]) -> None:
    for position, field in enumerate(fields):
        if not is_known(field):
            problems.append(Problem(asset.path, asset.line(*keys, position),
                                    f"{'.'.join(map(str, keys))}: {field} does not exist on normalized events; "
                                    "use an attribute such as @usr.identity or @network.client.ip"))


def _check_rule(asset: Asset) -> list[Problem]:
    data, problems = asset.data, []
    names = set()
    for index, query in enumerate(data["queries"]):
        if query["name"] in names:
            problems.append(Problem(asset.path, asset.line("queries", index, "name"),
                                    f"queries.{index}.name: {query['name']!r} is used twice; name each query once"))
        names.add(query["name"])
        _check_query(asset, problems, ("queries", index, "query"), query["query"])
        _check_fields(asset, problems, ("queries", index, "group_by"), query.get("group_by", []))
        _check_fields(asset, problems, ("queries", index, "distinct"), query.get("distinct", []))
        if query.get("metric"):
            _check_fields(asset, problems, ("queries", index, "metric"), [query["metric"]])
        if query.get("aggregation") == "cardinality" and len(query.get("distinct", [])) != 1:
            problems.append(Problem(asset.path, asset.line("queries", index),
                                    f"queries.{index}: Datadog's cardinality counts exactly one field (distinctFields "
                                    "holds one entry); give `distinct` one attribute, one query per field"))
    problems.extend(_replayable_counts(asset))
    group_bys = {tuple(q.get("group_by", [])) for q in data["queries"]}
    if len(group_bys) > 1:
        problems.append(Problem(asset.path, asset.line("queries"), "queries: Datadog requires the same group_by "
                                                                   "on every query of a rule"))
    method = data["method"]
    if method == "sequence":
        problems.extend(_check_sequence(asset, names))
    elif "sequence" in data:
        problems.append(Problem(asset.path, asset.line("sequence"), f"sequence: only for method: sequence "
                                                                    f"(this rule is {method}); remove it"))
    for index, case in enumerate(data["cases"]):
        condition = case.get("condition")
        if method == "threshold" and not condition:
            problems.append(Problem(asset.path, asset.line("cases", index),
                                    f"cases.{index}: a threshold case needs a condition, e.g. "
                                    f"`{data['queries'][0]['name']} > 0`"))
        if method != "threshold" and condition:
            problems.append(Problem(asset.path, asset.line("cases", index, "condition"),
                                    f"cases.{index}.condition: {method} rules take no condition; remove it"))
        if condition:
            try:
                compile_condition(condition, names)
            except ConditionError as error:
                problems.append(Problem(asset.path, asset.line("cases", index, "condition"),
                                        f"cases.{index}.condition: {error}"))
    for key in ("evaluation_window", "keep_alive", "max_signal_duration"):
        if key in data:
            seconds = _duration(asset, problems, (key,), data[key])
            if seconds is not None and int(seconds) not in WINDOW_VALUES:
                allowed = ", ".join(_short(value) for value in WINDOW_VALUES)
                problems.append(Problem(asset.path, asset.line(key), f"{key}: Datadog accepts only {allowed}; "
                                                                     f"{data[key]} is not one of them"))
    if method == "new_value":
        for key, low, high in (("learning_duration", 0, 30), ("forget_after", 1, 30)):
            value = (data.get("new_value") or {}).get(key)
            if value is not None:
                seconds = _duration(asset, problems, ("new_value", key), value)
                if seconds is not None and not (low * 86400 <= seconds <= high * 86400 and seconds % 86400 == 0):
                    problems.append(Problem(asset.path, asset.line("new_value", key),
                                            f"new_value.{key}: whole days from {low}d to {high}d"))
        if not all(q.get("metric") for q in data["queries"]):
            problems.append(Problem(asset.path, asset.line("queries"), "queries: a new_value query needs `metric`, "
                                                                       "the attribute whose new values alert"))
    if method == "impossible_travel":
        for index, query in enumerate(data["queries"]):
            if not query.get("group_by"):
                problems.append(Problem(asset.path, asset.line("queries", index),
                                        f"queries.{index}: impossible travel groups by the user; add "
                                        "group_by: [\"@usr.id\"] (or @usr.email)"))
    problems.extend(_check_travel_baseline(asset))
    for attribute in TEMPLATE_ATTRIBUTE.findall(data["message"]):
        if not is_known(attribute):
            problems.append(Problem(asset.path, asset.line("message"), f"message: {{{{@{attribute}}}}} does not "
                                                                       "exist on normalized events"))
    tags = data["tags"]
    if not any(TACTIC.match(tag) for tag in tags) or not any(TECHNIQUE.match(tag) for tag in tags):
        problems.append(Problem(asset.path, asset.line("tags"), "tags: add a MITRE ATT&CK tactic and technique, "
                                                                "e.g. tactic:TA0005-defense-evasion, technique:T1562"))
    problems.extend(_check_tests(asset))
    problems.extend(_check_nearest(asset))
    return problems


def _check_nearest(asset: Asset) -> list[Problem]:
    """A rule that overlaps a Datadog default rule names it as its nearest rule (docs/rules.md shows both)."""
    nearest = asset.data["nearest"]
    return [Problem(asset.path, asset.line("nearest"), f"nearest: the rule overlaps Datadog's {default_id} "
                    f"(overlaps_default); name it here, e.g. `Datadog {default_id} (severity not published)`")
            for default_id in asset.data.get("overlaps_default", []) if f"Datadog {default_id} " not in nearest + " "]


def _check_travel_baseline(asset: Asset) -> list[Problem]:
    """baseline_duration is Datadog's baselineUserLocationsDuration: whole days, 1 to 30, with the baseline on."""
    problems: list[Problem] = []
    travel = asset.data.get("impossible_travel") or {}
    if "baseline_duration" not in travel:
        return problems
    seconds = _duration(asset, problems, ("impossible_travel", "baseline_duration"), travel["baseline_duration"])
    if seconds is not None and not (86400 <= seconds <= 30 * 86400 and seconds % 86400 == 0):
        problems.append(Problem(asset.path, asset.line("impossible_travel", "baseline_duration"),
                                "impossible_travel.baseline_duration: whole days from 1d to 30d"))
    if not travel.get("baseline_user_locations"):
        problems.append(Problem(asset.path, asset.line("impossible_travel", "baseline_duration"),
                                "impossible_travel.baseline_duration: only with baseline_user_locations: true; set "
                                "it, or remove the duration"))
    return problems


def _replayable_counts(asset: Asset) -> list[Problem]:
    """A threshold case that needs a query to count several events must count distinct ids: the
    collector's --replay-on-start re-sends activities and Datadog's intake does not deduplicate."""
    data, problems = asset.data, []
    if data["method"] != "threshold":
        return problems
    names = [query["name"] for query in data["queries"]]
    try:
        conditions = [compile_condition(case["condition"], set(names))[0] for case in data["cases"]
                      if case.get("condition")]
    except ConditionError:
        return problems  # reported with the case
    for index, query in enumerate(data["queries"]):
        if query.get("aggregation", "count") != "count":
            continue
        plenty = {name: 1e9 for name in names}
        needed = next((count for count in range(1, 1001)
                       if any(holds({**plenty, query["name"]: count}) for holds in conditions)), None)
        if needed is not None and needed > 1:
            problems.append(Problem(asset.path, asset.line("queries", index),
                                    f"queries.{index}: counts {needed} events, so a replayed activity counts twice; "
                                    "count distinct activities: aggregation: cardinality, distinct: [\"@id\"]"))
    return problems


def _check_sequence(asset: Asset, names: set[str]) -> list[Problem]:
    problems: list[Problem] = []
    steps = (asset.data.get("sequence") or {}).get("steps")
    if not steps:
        return [Problem(asset.path, asset.line("method"), "sequence rules need `sequence: {steps: [...]}` with at "
                                                          "least two steps")]
    window = asset.data.get("evaluation_window")
    if window is not None and _duration(asset, problems, ("evaluation_window",), window) not in (0, None):
        problems.append(Problem(asset.path, asset.line("evaluation_window"), "evaluation_window: a sequence is "
                                "evaluated per step (`within`); Datadog takes 0 here, set it to 0 or leave it out"))
    seen = set()
    for index, step in enumerate(steps):
        keys = ("sequence", "steps", index)
        if step["name"] in seen:
            problems.append(Problem(asset.path, asset.line(*keys, "name"), f"sequence.steps.{index}.name: "
                                    f"{step['name']!r} is used twice"))
        seen.add(step["name"])
        try:
            compile_condition(step["condition"], names)
        except ConditionError as error:
            problems.append(Problem(asset.path, asset.line(*keys, "condition"),
                                    f"sequence.steps.{index}.condition: {error}"))
        for key in ("within", "after_previous"):
            if key not in step:
                continue
            if key == "after_previous" and index == 0:
                problems.append(Problem(asset.path, asset.line(*keys, key), "sequence.steps.0.after_previous: the "
                                                                            "first step has no previous step"))
                continue
            seconds = _duration(asset, problems, (*keys, key), step[key])
            if seconds is not None and int(seconds) not in WINDOW_VALUES:
                problems.append(Problem(asset.path, asset.line(*keys, key), f"sequence.steps.{index}.{key}: Datadog "
                                        "accepts only " + ", ".join(_short(v) for v in WINDOW_VALUES)))
        if index and "after_previous" not in step:
            problems.append(Problem(asset.path, asset.line(*keys), f"sequence.steps.{index}: say how long after the "
                                                                   "previous step it may happen (after_previous)"))
    return problems


def _check_tests(asset: Asset) -> list[Problem]:
    problems = []
    tests = asset.data["tests"]
    if not any(t["expect"]["signals"] > 0 for t in tests) or not any(t["expect"]["signals"] == 0 for t in tests):
        problems.append(Problem(asset.path, asset.line("tests"), "tests: every rule needs a test that must fire "
                                                                 "(signals: 1 or more) and one that must not "
                                                                 "(signals: 0)"))
    for index, test in enumerate(tests):
        problems.extend(_check_test_timeline(asset, index, test))
        for position, event in enumerate(test["events"]):
            keys = ("tests", index, "events", position)
            activity_type = event["activity"].get("type")
            if activity_type not in activity_types():
                problems.append(Problem(asset.path, asset.line(*keys, "activity", "type"),
                                        f"tests.{index}: activity type {activity_type!r} is not documented"
                                        f"{_suggest(str(activity_type))}"))
    return problems


def _check_test_timeline(asset: Asset, index: int, test: dict[str, Any]) -> list[Problem]:
    """Offsets readable and on a bounded timeline, and a bounded number of events per test."""
    problems: list[Problem] = []
    for position, event in enumerate(test["events"]):
        keys = ("tests", index, "events", position)
        at = _duration(asset, problems, (*keys, "at"), event["at"]) if "at" in event else 0.0
        every = _duration(asset, problems, (*keys, "every"), event["every"]) if "every" in event else 1.0
        if at is None or every is None:
            continue
        last = at + every * (event.get("repeat", 1) - 1)
        if last > MAX_TEST_SPAN:
            where = "at" if at > MAX_TEST_SPAN else "every"
            problems.append(Problem(asset.path, asset.line(*keys, where), f"{'.'.join(map(str, keys))}.{where}: the "
                                    f"events would run until {last / 86400:,.0f} days after the test's start; a "
                                    f"test's timeline spans at most {MAX_TEST_SPAN // 86400} days"))
    total = sum(event.get("repeat", 1) for event in test["events"])
    if total > MAX_TEST_EVENTS:
        problems.append(Problem(asset.path, asset.line("tests", index, "events"), f"tests.{index}.events: {total:,} "
                                f"events in one test; ccl accepts at most {MAX_TEST_EVENTS:,} (lower `repeat`)"))
    return problems


def _check_dashboard(asset: Asset) -> list[Problem]:
    problems: list[Problem] = []

    def visit(widgets: list[dict[str, Any]], keys: tuple[str | int, ...]) -> None:
        for index, widget in enumerate(widgets):
            (kind, body), = widget.items()
            here = (*keys, index, kind)
            if kind == "group":
                visit(body["widgets"], (*here, "widgets"))
            elif kind != "note":
                # The collector's own log lines have their own attributes (cause, lag_seconds, ...).
                activities = body.get("logs", "activities") == "activities"
                _check_query(asset, problems, (*here, "query"), body["query"], check_fields=activities)
                if activities:
                    _check_fields(asset, problems, (*here, "group_by"), body.get("group_by", []))
                if body.get("aggregation", "count") != "count" and not body.get("measure"):
                    problems.append(Problem(asset.path, asset.line(*here), f"{kind}: {body['aggregation']} needs "
                                                                           "`measure`, the attribute to aggregate"))

    visit(asset.data["widgets"], ("widgets",))
    return problems


def _check_monitor(asset: Asset) -> list[Problem]:
    problems: list[Problem] = []
    data = asset.data
    _check_query(asset, problems, ("query",), data["query"], check_fields=data["logs"] == "activities")
    seconds = _duration(asset, problems, ("window",), data["window"])
    if seconds is not None and not 60 <= seconds <= 2 * 86400:
        problems.append(Problem(asset.path, asset.line("window"), "window: log monitors evaluate 1m to 2d"))
    if data["rollup"] != "count" and not data.get("measure"):
        problems.append(Problem(asset.path, asset.line("rollup"), f"rollup: {data['rollup']} needs `measure`"))
    warning = data.get("warning")
    if warning is not None:
        wrong_side = warning >= data["critical"] if data["alert_when"] == "above" else warning <= data["critical"]
        if wrong_side:
            problems.append(Problem(asset.path, asset.line("warning"), "warning: must come before critical "
                                                                       f"(alerting when {data['alert_when']})"))
    return problems


def _check_pipeline(asset: Asset) -> list[Problem]:
    problems: list[Problem] = []
    # A pipeline's filter is its scope: it names the source itself.
    _check_query(asset, problems, ("filter", "query"), asset.data["filter"]["query"], check_fields=False,
                 scoped=False)

    def visit(processors: list[dict[str, Any]], keys: tuple[str | int, ...], depth: int) -> None:
        if len(processors) > MAX_PROCESSORS:
            problems.append(Problem(asset.path, asset.line(*keys), f"{'.'.join(map(str, keys))}: "
                                    f"{len(processors)} processors; Datadog recommends at most {MAX_PROCESSORS} "
                                    "per pipeline, move some into a nested pipeline"))
        for index, processor in enumerate(processors):
            if processor["type"] == "pipeline":
                if depth >= 1:
                    problems.append(Problem(asset.path, asset.line(*keys, index),
                                            "a nested pipeline cannot hold another pipeline (one level only)"))
                query = (processor.get("filter") or {}).get("query", "*")
                _check_query(asset, problems, (*keys, index, "filter", "query"), query, check_fields=False)
                visit(processor.get("processors", []), (*keys, index, "processors"), depth + 1)

    visit(asset.data["processors"], ("processors",), 0)
    for index, entry in enumerate(asset.data.get("tests", [])):
        try:
            check_reference(asset.path, entry["datadog_samples"])
        except SamplesError as error:
            problems.append(Problem(asset.path, asset.line("tests", index, "datadog_samples"),
                                    f"tests.{index}.datadog_samples: {error}"))
    return problems


def _short(seconds: int) -> str:
    if seconds == 0:
        return "0"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def count_by_kind(assets: list[Asset]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for asset in assets:
        counts[asset.kind] += 1
    return dict(counts)
