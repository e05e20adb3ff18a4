"""Builds ccl/data/vector-options-<version>.json from Vector's generated component reference.

Vector documents every option of every component in CUE files that it generates from its Rust
config structs (`website/cue/reference/components/*/generated/*.cue` and
`website/cue/reference/generated/configuration.cue`). This script reads those files at a release
tag of a local clone of vectordotdev/vector and keeps what a lint needs: option names, types,
enum values, defaults, `required` and `relevant_when`. Descriptions and examples are dropped.

    python tools/vector_options_from_cue.py /path/to/vector v0.57.0 > ccl/data/vector-options-0.57.0.json

Only the components this project's configuration uses are extracted (COMPONENTS below); the
unit-test schema is not in the CUE reference and is transcribed by hand in TEST_OPTIONS from
`src/config/mod.rs` (TestDefinition, TestInput, TestOutput; all `deny_unknown_fields`).
Not run by the tests: CI has no Vector clone. Rerun it when the supported Vector changes.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

COMPONENTS = {
    "sources": ["exec"],
    "transforms": ["remap", "route", "filter", "dedupe"],
    "sinks": ["datadog_logs", "file", "aws_s3"],
}
ENRICHMENT_TABLES = ["geoip"]
CONFIGURATION = "website/cue/reference/generated/configuration.cue"

_str = {"type": {"string": {}}, "required": False}
TEST_OPTIONS: dict[str, Any] = {
    "name": {"type": {"string": {}}, "required": True},
    "input": {"type": {"object": {"options": "@input"}}, "required": False},
    "inputs": {"type": {"array": {"items": {"object": {"options": "@input"}}}}, "required": False},
    "outputs": {"type": {"array": {"items": {"object": {"options": {
        "extract_from": {"type": {"string": {}, "array": {"items": {"string": {}}}}, "required": True},
        "conditions": {"type": {"array": {"items": {"condition": {}}}}, "required": False},
        "expected_event_count": {"type": {"uint": {}}, "required": False},
    }}}}}, "required": False},
    "no_outputs_from": {"type": {"array": {"items": {"string": {}}}}, "required": False},
}
TEST_INPUT_OPTIONS: dict[str, Any] = {
    "insert_at": {"type": {"string": {}}, "required": True},
    "type": {"type": {"string": {"enum": ["raw", "vrl", "log", "metric"], "default": "raw"}}, "required": False},
    "value": _str,
    "source": _str,
    "log_fields": {"type": {"object": {"options": {"*": {"type": {"any": {}}, "required": False}}}},
                   "required": False},
    "metric": {"type": {"object": {"options": {"*": {"type": {"any": {}}, "required": False}}}},
               "required": False},
}


# -- a reader for the subset of CUE that Vector's generator writes ----------------------------

TOKEN = re.compile(r'''
    (?P<space>[ \t\r\n]+|//[^\n]*)
  | (?P<multiline>"""\n(?:.|\n)*?\n[ \t]*""")
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<number>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)
  | (?P<ident>[A-Za-z_#$][A-Za-z0-9_#$]*)
  | (?P<punct>[{}\[\]:,])
''', re.VERBOSE)


def tokens(text: str) -> list[tuple[str, str]]:
    found, position = [], 0
    while position < len(text):
        match = TOKEN.match(text, position)
        if not match:
            raise ValueError(f"unexpected CUE text at {position}: {text[position:position + 40]!r}")
        position = match.end()
        if match.lastgroup != "space":
            found.append((match.lastgroup, match.group()))
    return found


class Reader:
    def __init__(self, text: str):
        self.items = tokens(text)
        self.at = 0

    def peek(self) -> tuple[str, str]:
        return self.items[self.at] if self.at < len(self.items) else ("end", "")

    def take(self) -> tuple[str, str]:
        item = self.peek()
        self.at += 1
        return item

    def document(self) -> dict[str, Any]:
        if self.peek() == ("ident", "package"):
            self.take()
            self.take()
        return self.fields(until="end")

    def fields(self, until: str) -> dict[str, Any]:
        result: dict[str, Any] = {}
        while self.peek()[1] != until and self.peek()[0] != until:
            kind, text = self.take()
            label = json.loads(text) if kind == "string" else text
            if self.take()[1] != ":":
                raise ValueError(f"expected ':' after {label!r}")
            value = self.value()
            if isinstance(result.get(label), dict) and isinstance(value, dict):
                result[label] = {**result[label], **value}  # CUE unifies repeated labels
            else:
                result[label] = value
            if self.peek()[1] == ",":
                self.take()
        return result

    def value(self) -> Any:
        kind, text = self.peek()
        if kind in ("ident", "string") and self.items[self.at + 1][1] == ":":
            return self.fields_inline()
        self.take()
        if text == "{":
            body = self.fields(until="}")
            self.take()
            return body
        if text == "[":
            items = []
            while self.peek()[1] != "]":
                items.append(self.value())
                if self.peek()[1] == ",":
                    self.take()
            self.take()
            return items
        if kind == "multiline":
            return text[4:].rsplit("\n", 1)[0]
        if kind in ("string", "number"):
            return json.loads(text)
        if text in ("true", "false", "null"):
            return json.loads(text)
        raise ValueError(f"unexpected CUE value {text!r}")

    def fields_inline(self) -> dict[str, Any]:
        """`a: b: c: 1` is `a: {b: {c: 1}}`."""
        kind, text = self.take()
        label = json.loads(text) if kind == "string" else text
        self.take()
        return {label: self.value()}


# -- from CUE option descriptions to the table -------------------------------------------------

def option(node: dict[str, Any]) -> dict[str, Any]:
    kept: dict[str, Any] = {"type": type_map(node.get("type", {})), "required": bool(node.get("required", False))}
    if "relevant_when" in node:
        kept["relevant_when"] = node["relevant_when"]
    if node.get("warnings"):
        kept["warnings"] = node["warnings"]
    return kept


def type_map(types: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, detail in types.items():
        detail = detail if isinstance(detail, dict) else {}
        entry: dict[str, Any] = {}
        if "default" in detail:
            entry["default"] = detail["default"]
        if name == "string" and isinstance(detail.get("enum"), dict):
            entry["enum"] = sorted(detail["enum"])
        if name == "array":
            entry["items"] = type_map(detail.get("items", {}).get("type", {}))
        if name == "object":
            entry["options"] = options(detail.get("options", {}))
        result[name] = entry
    return result


def options(nodes: dict[str, Any]) -> dict[str, Any]:
    return {name: option(node) for name, node in sorted(nodes.items())}


def git_show(repo: str, tag: str, path: str) -> str:
    return subprocess.run(["git", "-C", repo, "show", f"{tag}:{path}"], check=True, capture_output=True,
                          text=True).stdout


def build(repo: str, tag: str) -> dict[str, Any]:
    commit = subprocess.run(["git", "-C", repo, "rev-parse", f"{tag}^{{commit}}"], check=True,
                            capture_output=True, text=True).stdout.strip()
    files = [CONFIGURATION]
    configuration = Reader(git_show(repo, tag, CONFIGURATION)).document()["generated"]["configuration"]
    top = configuration["configuration"]
    kinds = {}
    for kind in ("sources", "transforms", "sinks", "enrichment_tables"):
        common = top[kind]["type"]["object"]["options"]["*"]["type"]["object"]["options"]
        kinds[kind] = options({name: node for name, node in common.items() if "relevant_when" not in node})
    components: dict[str, dict[str, Any]] = {kind: {} for kind in ("sources", "transforms", "sinks")}
    for kind, names in COMPONENTS.items():
        for name in names:
            path = f"website/cue/reference/components/{kind}/generated/{name}.cue"
            files.append(path)
            document = Reader(git_show(repo, tag, path)).document()
            components[kind][name] = options(document["generated"]["components"][kind][name]["configuration"])
    table_options = top["enrichment_tables"]["type"]["object"]["options"]["*"]["type"]["object"]["options"]
    components["enrichment_tables"] = {}
    for name in ENRICHMENT_TABLES:
        components["enrichment_tables"][name] = options({
            option_name: node for option_name, node in table_options.items()
            if option_name != "type" and f'type = "{name}"' in node.get("relevant_when", "")})
    global_options = options({name: node for name, node in top.items()
                              if name not in ("sources", "transforms", "sinks", "enrichment_tables")})
    tests = json.loads(json.dumps(TEST_OPTIONS).replace('"@input"', json.dumps(TEST_INPUT_OPTIONS)))
    if "expected_event_count" not in git_show(repo, tag, "src/config/mod.rs"):  # added in 0.56.0
        del tests["outputs"]["type"]["array"]["items"]["object"]["options"]["expected_event_count"]
    return {
        "vector_version": tag.lstrip("v"),
        "source": {
            "repository": "vectordotdev/vector", "tag": tag, "commit": commit, "files": files,
            "tests": "src/config/mod.rs (TestDefinition, TestInput, TestOutput), transcribed by hand",
            "generator": "tools/vector_options_from_cue.py",
        },
        "global": global_options,
        "common": kinds,
        "components": components,
        "tests": tests,
    }


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: vector_options_from_cue.py VECTOR_CLONE TAG")
    json.dump(build(sys.argv[1], sys.argv[2]), sys.stdout, indent=1)
    sys.stdout.write("\n")
