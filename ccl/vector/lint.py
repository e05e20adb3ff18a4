"""Checks Vector TOML config files against Vector's own option reference, without Vector.

`vector validate` is the real check; where no Vector binary exists (CI here) this catches first
what it would: an option Vector does not know (every Vector config struct is
`deny_unknown_fields`), a value of the wrong type, a value outside an enum, an option that only
applies with another setting (`framing.newline_delimited` needs `framing.method =
"newline_delimited"`), a required option left out, and a component type outside the table.

The table, ccl/data/vector-options-<version>.json, is extracted from Vector's generated component
reference at a release tag by tools/vector_options_from_cue.py (its `source` names the commit and
files). It holds only the components this project uses.
"""

from __future__ import annotations

import difflib
import json
import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

VECTOR_VERSION = "0.57.0"
COMPONENT_KINDS = ("sources", "transforms", "sinks", "enrichment_tables")
RELEVANT_WHEN = re.compile(r'(\w+) = "([^"]*)"')


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    message: str
    # True when the table cannot tell (a component type it does not hold): Vector may accept it.
    unchecked: bool = False

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


def load_table(version: str = VECTOR_VERSION) -> dict[str, Any]:
    text = resources.files("ccl").joinpath(f"data/vector-options-{version}.json").read_text(encoding="utf-8")
    return json.loads(text)


def lint_file(path: Path, table: dict[str, Any] | None = None) -> list[Problem]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        return [Problem(str(path), 0, error.strerror or "cannot be read")]
    return lint_text(text, str(path), table)


def lint_text(text: str, name: str, table: dict[str, Any] | None = None, first_line: int = 1) -> list[Problem]:
    """Problems in one TOML config text; `first_line` places a snippet inside a larger file."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        return [Problem(name, first_line - 1 + (getattr(error, "lineno", 1) or 1), f"not valid TOML: {error}")]
    checker = _Checker(table or load_table(), name, key_lines(text), first_line)
    checker.document(data)
    return checker.problems


class _Checker:
    def __init__(self, table: dict[str, Any], name: str, lines: dict[tuple, int], first_line: int):
        self.table = table
        self.name = name
        self.lines = lines
        self.first_line = first_line
        self.problems: list[Problem] = []
        self.version = table["vector_version"]

    def report(self, path: tuple, message: str, unchecked: bool = False) -> None:
        probe = path
        while probe and probe not in self.lines:
            probe = probe[:-1]
        line = self.lines.get(probe, 1) + self.first_line - 1
        self.problems.append(Problem(self.name, line, f"{_render(path)}: {message}", unchecked))

    def document(self, data: dict[str, Any]) -> None:
        for key, value in data.items():
            if key in COMPONENT_KINDS:
                if not isinstance(value, dict):
                    self.report((key,), f"expected a table of components, got {_kind(value)}")
                    continue
                for component, body in value.items():
                    self.component(key, component, body)
            elif key == "tests":
                self.value(value, {"type": {"array": {"items": {"object": {"options": self.table["tests"]}}}}},
                           (key,), strict=True)
            elif key in self.table["global"]:
                self.value(value, self.table["global"][key], (key,))
            else:
                self.unknown((key,), key, self.table["global"], "global option")

    def component(self, kind: str, name: str, body: Any) -> None:
        path = (kind, name)
        if not isinstance(body, dict):
            self.report(path, f"expected a table, got {_kind(body)}")
            return
        known = self.table["components"][kind]
        component_type = body.get("type")
        if not isinstance(component_type, str):
            self.report(path, "has no `type`")
            return
        if component_type not in known:
            self.report((*path, "type"), f"{component_type!r} is not in the option table of Vector {self.version} "
                                          f"(it holds the {kind} this project uses: {', '.join(sorted(known))}); "
                                          "its options are not checked", unchecked=True)
            return
        options = {**self.table["common"][kind], **known[component_type]}
        options.setdefault("type", {"type": {"string": {}}, "required": True})
        self.object(body, options, path, check_required=True)

    def object(self, value: dict[str, Any], options: dict[str, Any], path: tuple, check_required: bool) -> None:
        for key, item in value.items():
            node = options.get(key) or options.get("*")
            if node is None:
                self.unknown((*path, key), key, options, "option")
                continue
            self.relevance(key, node, value, options, path)
            self.value(item, node, (*path, key), strict=check_required and path[0] == "tests")
        if check_required:
            for key, node in options.items():
                if key != "*" and node.get("required") and key not in value and self.applies(node, value, options):
                    self.report(path, f"misses the required option `{key}`")

    def relevance(self, key: str, node: dict[str, Any], value: dict[str, Any], options: dict[str, Any],
                  path: tuple) -> None:
        if not self.applies(node, value, options):
            self.report((*path, key), f"only applies when {node['relevant_when']}")

    def applies(self, node: dict[str, Any], value: dict[str, Any], options: dict[str, Any]) -> bool:
        condition = node.get("relevant_when")
        if not condition:
            return True
        for field, expected in RELEVANT_WHEN.findall(condition):
            actual = value.get(field, _default(options.get(field)))
            if actual == expected:
                return True
        return False

    def unknown(self, path: tuple, key: str, options: dict[str, Any], what: str) -> None:
        names = sorted(name for name in options if name != "*")
        close = difflib.get_close_matches(key, names, n=1)
        hint = f"; did you mean `{close[0]}`?" if close else f"; known: {', '.join(names)}"
        self.report(path, f"unknown {what} (Vector {self.version} refuses it){hint}")

    def value(self, value: Any, node: dict[str, Any], path: tuple, strict: bool = False) -> None:
        """`strict`: check required options in nested tables too (unit tests; components are enums)."""
        types = node.get("type") or {}
        if "*" in types or "any" in types:
            return
        for type_name, detail in types.items():
            if not _matches(type_name, value):
                continue
            if type_name in ("string", "ascii_char") and detail.get("enum") and value not in detail["enum"]:
                self.report(path, f"{value!r} is not one of {', '.join(map(repr, detail['enum']))}")
            elif type_name == "object":
                self.object(value, detail.get("options") or {}, path, check_required=strict)
            elif type_name == "array":
                items = {"type": detail.get("items") or {}}
                for index, item in enumerate(value):
                    self.value(item, items, (*path, index), strict)
            return
        expected = " or ".join(_describe(name) for name in types)
        self.report(path, f"expected {expected}, got {_kind(value)} {value!r}"[:300])


def _matches(type_name: str, value: Any) -> bool:
    if type_name == "bool":
        return isinstance(value, bool)
    if type_name in ("string", "ascii_char"):
        return isinstance(value, str) and (type_name == "string" or len(value) == 1)
    if type_name == "uint":
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0
    if type_name == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if type_name == "float":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if type_name == "array":
        return isinstance(value, list)
    if type_name == "object":
        return isinstance(value, dict)
    if type_name == "condition":  # a VRL string, or {type = "vrl", source = ...}
        return isinstance(value, str) or (isinstance(value, dict) and isinstance(value.get("type"), str))
    return False


def _default(node: dict[str, Any] | None) -> Any:
    for detail in ((node or {}).get("type") or {}).values():
        if isinstance(detail, dict) and "default" in detail:
            return detail["default"]
    return None


def _describe(type_name: str) -> str:
    return {"uint": "a non-negative integer", "int": "an integer", "float": "a number", "bool": "true or false",
            "string": "a string", "ascii_char": "one character", "array": "an array", "object": "a table",
            "condition": "a VRL condition"}.get(type_name, type_name)


def _kind(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "an array",
            dict: "a table"}.get(type(value), type(value).__name__)


def _render(path: tuple) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


# -- where each key sits in the TOML text --------------------------------------------------------

HEADER = re.compile(r"^\s*(\[\[?)\s*(.+?)\s*\]\]?\s*(#.*)?$")
BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def key_lines(text: str) -> dict[tuple, int]:
    """Line number (1-based) of each table header and key, by its path; arrays of tables are indexed."""
    lines: dict[tuple, int] = {}
    table: tuple = ()
    array_index: dict[tuple, int] = {}
    closing: str | None = None
    depth = 0
    for number, line in enumerate(text.splitlines(), 1):
        if closing:
            if line.count(closing) % 2 == 1:
                closing = None
            continue
        if depth:
            depth += _bracket_balance(line)
            continue
        header = HEADER.match(line)
        if header and "=" not in line.split("#", 1)[0].split("]")[0]:
            table = _resolve(_split_key(header[2]), header[1] == "[[", array_index)
            lines.setdefault(table, number)
            continue
        key_text, sep, rest = _split_assignment(line)
        if not sep:
            continue
        keys = _split_key(key_text)
        for end in range(1, len(keys) + 1):
            lines.setdefault(table + tuple(keys[:end]), number)
        rest = rest.strip()
        for quote in ("'''", '"""'):
            if rest.startswith(quote) and rest.count(quote) == 1:
                closing = quote
        if rest.startswith("["):
            depth = max(_bracket_balance(rest), 0)
    return lines


def _resolve(keys: list[str], is_array: bool, array_index: dict[tuple, int]) -> tuple:
    resolved: list[Any] = []
    for position, key in enumerate(keys):
        resolved.append(key)
        current = tuple(resolved)
        if is_array and position == len(keys) - 1:
            array_index[current] = array_index.get(current, -1) + 1
            resolved.append(array_index[current])
        elif current in array_index:
            resolved.append(array_index[current])
    return tuple(resolved)


def _split_assignment(line: str) -> tuple[str, str, str]:
    stripped = line.strip()
    if not stripped or stripped.startswith("#"):
        return "", "", ""
    position, quote = 0, None
    while position < len(stripped):
        char = stripped[position]
        if quote:
            quote = None if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char == "=":
            return stripped[:position].strip(), "=", stripped[position + 1:]
        position += 1
    return "", "", ""


def _split_key(text: str) -> list[str]:
    keys, position = [], 0
    while position < len(text):
        char = text[position]
        if char in " .\t":
            position += 1
        elif char in "\"'":
            end = text.index(char, position + 1)
            keys.append(text[position + 1:end])
            position = end + 1
        else:
            match = BARE_KEY.match(text, position)
            if not match:
                break
            keys.append(match.group())
            position = match.end()
    return keys


def _bracket_balance(text: str) -> int:
    without_strings = re.sub(r'"(?:[^"\\]|\\.)*"|\'[^\']*\'', "", text.split("#", 1)[0])
    return without_strings.count("[") - without_strings.count("]")
