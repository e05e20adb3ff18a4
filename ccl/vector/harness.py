"""Runs Vector config unit tests (`[[tests]]`) without a Vector binary, over vrl-python.

`vector test vector.toml vector/geoip-off.toml vector/tests.toml` is the real thing; this harness
runs the same files where Vector cannot be installed (CI here). It loads the TOML files as one
config, as Vector does, and emulates the transforms the topology uses: `remap` (source or file,
drop_on_error, drop_on_abort, reroute_dropped), `route` (named outputs and `_unmatched`),
`filter` and `dedupe`. Conditions are VRL run by Vector's VRL engine: each condition must hold for
at least one event of its output, as in Vector; `expected_event_count` and `no_outputs_from` are
checked too. Any other transform type is reported, never silently skipped.

Vector's enrichment tables do not exist in vrl-python: a `get_enrichment_table_record` on a
`geoip` table is answered from the same mmdb through ccl.vector.geoip (Vector's field names).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vrl_python import VRLRuntime

from ccl.vector.geoip import GeoIpError, GeoIpTable
from ccl.vector.vrl import VRL_TIMESTAMP

SECTIONS = ("sources", "transforms", "sinks", "enrichment_tables")
EMULATED = ("remap", "route", "filter", "dedupe")
LOOKUP_CALL = re.compile(
    r'get_enrichment_table_record\(\s*"(?P<table>[^"]+)"\s*,\s*\{\s*"ip"\s*:\s*(?P<ip>[^}]+?)\s*\}\s*\)')
ROWS_FIELD = "__ccl_enrichment_rows"


class HarnessError(Exception):
    """The configuration cannot be loaded or uses something the harness does not emulate."""


@dataclass
class TestResult:
    name: str
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


class Config:
    def __init__(self, paths: Iterable[Path], base_dir: Path, enrichment_paths: dict[str, Path] | None = None):
        self.base_dir = base_dir
        self.components: dict[str, dict[str, Any]] = {}
        self.kinds: dict[str, str] = {}
        self.tests: list[dict[str, Any]] = []
        self._output_ids: list[str] | None = None
        for path in paths:
            self._load(path)
        # One runtime per program text: a vrl-python runtime keeps only the program it compiled
        # last, and normalize.vrl takes seconds to compile.
        self._runtimes: dict[str, VRLRuntime] = {}
        self._tables: dict[str, GeoIpTable] = {}
        for name, path in (enrichment_paths or {}).items():
            self.components.setdefault(name, {"type": "geoip"})["path"] = str(path)
        self._check_inputs()

    # -- loading -----------------------------------------------------------------------------

    def _load(self, path: Path) -> None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as error:
            raise HarnessError(f"{path}: {error.strerror}") from None
        except tomllib.TOMLDecodeError as error:
            raise HarnessError(f"{path}: not valid TOML: {error}") from None
        for section in SECTIONS:
            for name, body in (data.get(section) or {}).items():
                if name in self.components:
                    raise HarnessError(f"{path}: component {name!r} is defined twice (Vector refuses this too)")
                self.components[name] = body
                self.kinds[name] = section
        self.tests.extend(data.get("tests") or [])

    def _check_inputs(self) -> None:
        for name, body in self.components.items():
            for pattern in body.get("inputs") or []:
                if not self._resolve(pattern):
                    raise HarnessError(
                        f"input {pattern!r} of {name!r} matches no component (is a config file missing?)")

    def _resolve(self, pattern: str) -> list[str]:
        """Output ids ("id" or "id.output") that an `inputs` entry names."""
        outputs = self.output_ids()
        if pattern.endswith("*"):
            return [output for output in outputs if output.startswith(pattern[:-1])]
        return [pattern] if pattern in outputs else []

    def output_ids(self) -> list[str]:
        """Every output of every source and transform, as `inputs` and `extract_from` name them: a
        route has only its named outputs and `_unmatched`; a remap with reroute_dropped adds
        `dropped`."""
        if self._output_ids is not None:
            return self._output_ids
        ids = []
        for name, body in self.components.items():
            kind, component_type = self.kinds.get(name), body.get("type")
            if kind == "sources":
                ids.append(name)
            elif kind == "transforms" and component_type == "route":
                ids.extend(f"{name}.{route}" for route in body.get("route") or {})
                if body.get("reroute_unmatched", True):
                    ids.append(f"{name}._unmatched")
            elif kind == "transforms":
                ids.append(name)
                if component_type == "remap" and body.get("reroute_dropped", False):
                    ids.append(f"{name}.dropped")
        self._output_ids = ids
        return ids

    def consumers(self, output_id: str, kinds: tuple[str, ...] = ("transforms",)) -> list[str]:
        found = []
        for name, body in self.components.items():
            if self.kinds.get(name) not in kinds:
                continue
            if any(output_id in self._resolve(pattern) for pattern in body.get("inputs") or []):
                found.append(name)
        return found

    def program(self, name: str) -> str:
        body = self.components[name]
        if "source" in body:
            return body["source"]
        files = [body["file"]] if "file" in body else body.get("files") or []
        if not files:
            raise HarnessError(f"remap {name!r} has neither `source` nor `file`")
        return "\n".join(self._read_program(name, file) for file in files)

    def _read_program(self, name: str, file: str) -> str:
        path = self.base_dir / file
        try:
            return path.read_text(encoding="utf-8")
        except OSError as error:
            # Vector resolves `file` against its working directory, and so does this harness.
            raise HarnessError(f"remap {name!r}: file = {file!r}: {error.strerror} ({path}); run from the "
                               "directory that holds it, as Vector would be") from None

    # -- running -----------------------------------------------------------------------------

    def run_vrl(self, source: str, event: dict[str, Any]) -> tuple[dict[str, Any], Any]:
        """(event, value of the last expression); raises RuntimeError/ValueError as vrl-python does."""
        prefix, event = _restore_timestamps(event)
        source, event = self._answer_lookups(source, event)
        program = prefix + source
        runtime = self._runtimes.get(program)
        if runtime is None:
            runtime = self._runtimes[program] = VRLRuntime()
        result = runtime.execute(program, event)
        processed = result.processed_event if isinstance(result.processed_event, dict) else {}
        processed.pop(ROWS_FIELD, None)
        return processed, result.runtime_result

    def _answer_lookups(self, source: str, event: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        tables = {match["table"] for match in LOOKUP_CALL.finditer(source)}
        if not tables:
            return source, event
        rows: dict[str, dict[str, Any]] = {}
        for table_name in tables:
            table = self._table(table_name)
            for value in _strings(event):
                row = table.lookup(value)
                if row is not None:
                    rows[value] = row
        replaced = LOOKUP_CALL.sub(
            lambda m: f"object(get(.{ROWS_FIELD}, [string({m['ip']}) ?? \"\"]) ?? null)", source)
        return replaced, {**event, ROWS_FIELD: rows}

    def _table(self, name: str) -> GeoIpTable:
        if name not in self._tables:
            body = self.components.get(name)
            if body is None or self.kinds.get(name, "enrichment_tables") != "enrichment_tables":
                raise HarnessError(f"enrichment table {name!r} is not defined")
            if body.get("type") != "geoip":
                raise HarnessError(f"enrichment table {name!r}: only `geoip` tables are emulated")
            try:
                self._tables[name] = GeoIpTable(Path(body["path"]), body.get("locale", "en"))
            except GeoIpError as error:
                raise HarnessError(f"enrichment table {name!r}: {error}; point it at a City mmdb with "
                                   f"--enrichment-table {name}=PATH") from None
        return self._tables[name]


class Run:
    """One test's events flowing through the transforms, collected per output id."""

    def __init__(self, config: Config):
        self.config = config
        self.outputs: dict[str, list[dict[str, Any]]] = {}
        self._dedupe_seen: dict[str, set[str]] = {}

    def insert(self, component: str, event: dict[str, Any]) -> None:
        if self.config.kinds.get(component) != "transforms":
            raise HarnessError(f"insert_at {component!r} is not a transform")
        self._process(component, event)

    def _process(self, name: str, event: dict[str, Any]) -> None:
        body = self.config.components[name]
        kind = body.get("type")
        if kind not in EMULATED:
            raise HarnessError(f"transform {name!r} has type {kind!r}, which the harness does not emulate")
        for output, produced in getattr(self, f"_{kind}")(name, body, event):
            output_id = name if output is None else f"{name}.{output}"
            self.outputs.setdefault(output_id, []).append(produced)
            for consumer in self.config.consumers(output_id):
                self._process(consumer, produced)

    def _remap(self, name: str, body: dict[str, Any], event: dict[str, Any]):
        try:
            processed, _ = self.config.run_vrl(self.config.program(name), event)
        except (RuntimeError, ValueError, TypeError) as error:
            text = str(error)
            aborted = "aborted" in text
            drop = body.get("drop_on_abort", True) if aborted else body.get("drop_on_error", False)
            if not drop:
                yield None, event  # Vector passes the original, unmodified event on
            elif body.get("reroute_dropped", False):
                marked = {**event, "metadata": {**(event.get("metadata") or {}), "dropped": {
                    "reason": "abort" if aborted else "error", "message": text.strip(),
                    "component_id": name, "component_type": "remap", "component_kind": "transform"}}}
                yield "dropped", marked
            return
        yield None, processed

    def _route(self, name: str, body: dict[str, Any], event: dict[str, Any]):
        matched = False
        for route_name, condition in (body.get("route") or {}).items():
            if self._holds(condition, event):
                matched = True
                yield route_name, event
        if not matched and body.get("reroute_unmatched", True):
            yield "_unmatched", event

    def _filter(self, name: str, body: dict[str, Any], event: dict[str, Any]):
        if self._holds(body.get("condition"), event):
            yield None, event

    def _dedupe(self, name: str, body: dict[str, Any], event: dict[str, Any]):
        fields = ((body.get("fields") or {}).get("match")) or ["timestamp", "host", "message"]
        key = repr([_get(event, path) for path in fields])
        seen = self._dedupe_seen.setdefault(name, set())
        if key not in seen:
            seen.add(key)
            yield None, event

    def _holds(self, condition: Any, event: dict[str, Any]) -> bool:
        source = condition.get("source") if isinstance(condition, dict) else condition
        if not isinstance(source, str):
            raise HarnessError(f"unsupported condition {condition!r}: only VRL conditions are emulated")
        try:
            _, value = self.config.run_vrl(source, event)
        except (RuntimeError, ValueError, TypeError):
            return False
        return value is True


def run_tests(config: Config, only: str | None = None) -> list[TestResult]:
    results = []
    for test in config.tests:
        name = test.get("name", "(unnamed)")
        if only and only not in name:
            continue
        results.append(_run_test(config, test, name))
    return results


def _run_test(config: Config, test: dict[str, Any], name: str) -> TestResult:
    result = TestResult(name)
    run = Run(config)
    inputs = test.get("inputs") or ([test["input"]] if "input" in test else [])
    try:
        for entry in inputs:
            run.insert(entry["insert_at"], _input_event(config, entry))
    except (RuntimeError, ValueError, TypeError) as error:
        result.failures.append(f"an input could not be built: {str(error).strip()}")
        return result
    known = set(config.output_ids())
    for output in test.get("outputs") or []:
        sources = output.get("extract_from")
        sources = [sources] if isinstance(sources, str) else list(sources or [])
        missing = [source for source in sources if source not in known]
        if missing:  # Vector refuses the test: "Invalid extract_from target ... does not exist"
            result.failures.append(f"extract_from {', '.join(missing)}: no such output")
            continue
        events = [event for source in sources for event in run.outputs.get(source, [])]
        expected = output.get("expected_event_count")
        # As Vector's unit-test sink (src/config/unit_test/unit_test_components.rs): the count first,
        # then no events at all is a failure unless 0 were expected, then each condition.
        if expected is not None and len(events) != expected:
            result.failures.append(f"{', '.join(sources)}: expected {expected} events, got {len(events)}")
        conditions = output.get("conditions") or []
        if not events:
            if expected != 0:
                result.failures.append(f"{', '.join(sources)}: no events came out")
            continue
        for condition in conditions:
            errors = []
            for event in events:
                try:
                    _, value = config.run_vrl(condition.get("source", ""), event)
                except (RuntimeError, ValueError, TypeError) as error:
                    errors.append(_first_line(str(error)))
                    continue
                if value is False:
                    errors.append("the condition returned false")
                    continue
                errors = []
                break
            if errors:
                result.failures.append(f"{', '.join(sources)}: {errors[0]}")
    for component in test.get("no_outputs_from") or []:
        emitted = [key for key in run.outputs if key == component or key.startswith(component + ".")]
        if any(run.outputs[key] for key in emitted):
            result.failures.append(f"{component}: expected no output, got {sum(len(run.outputs[k]) for k in emitted)}")
    return result


def _input_event(config: Config, entry: dict[str, Any]) -> dict[str, Any]:
    """The event Vector builds for a test input (build_input_event in src/config/unit_test/mod.rs,
    v0.57.0): `type` defaults to "raw"; raw and log events start as LogEvent::from_str_legacy, so
    they carry `message` (the raw value, or "" for log) and `timestamp` (now) unless log_fields
    set them."""
    kind = entry.get("type", "raw")
    if kind == "log":
        if "log_fields" not in entry:
            raise HarnessError(f"input at {entry.get('insert_at')!r}: type 'log' requires the field 'log_fields'")
        event: dict[str, Any] = {"message": "", "timestamp": _now()}
        for path, value in entry["log_fields"].items():
            _set(event, path, value)
        return event
    if kind == "raw":
        if "value" not in entry:
            raise HarnessError(f"input at {entry.get('insert_at')!r}: type 'raw' requires the field 'value'")
        return {"message": entry["value"], "timestamp": _now()}
    if kind == "vrl":
        event, _ = config.run_vrl(entry.get("source", ""), {})
        return event
    raise HarnessError(f"input type {kind!r} is not emulated")


def _now() -> str:
    """Now, in the text form that _restore_timestamps turns back into a VRL timestamp."""
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f UTC")


def _set(event: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    node = event
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def _get(event: dict[str, Any], path: str) -> Any:
    node: Any = event
    for part in path.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


# Turns timestamps (text after a previous program) back into timestamps. One fixed text, so that
# vrl-python's compile cache (keyed on the program text) serves every event: normalize.vrl alone
# takes seconds to compile.
RESTORE_TIMESTAMPS = r"""
. = map_values(., recursive: true) -> |value| {
  text = string(value) ?? ""
  if is_string(value) && match(text, r'^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)? UTC$') {
    parse_timestamp(text, "%Y-%m-%d %H:%M:%S%.f UTC") ?? value
  } else {
    value
  }
}
"""


def _restore_timestamps(event: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The VRL prefix that restores the event's timestamps, or "" when it holds none."""
    return (RESTORE_TIMESTAMPS if any(VRL_TIMESTAMP.match(text) for text in _strings(event)) else ""), event


def _first_line(text: str) -> str:
    for line in text.strip().splitlines():
        if line.startswith("error"):
            return line
    return text.strip().splitlines()[0] if text.strip() else "failed"


def format_results(results: list[TestResult]) -> str:
    lines = ["Running tests"]
    for result in results:
        lines.append(f"test {result.name} ... {'passed' if result.passed else 'failed'}")
    failed = [r for r in results if not r.passed]
    for result in failed:
        lines.append(f"\n--- {result.name} ---")
        lines.extend(f"  {failure}" for failure in result.failures)
    lines.append(f"\n{len(results) - len(failed)} passed, {len(failed)} failed")
    return "\n".join(lines)
