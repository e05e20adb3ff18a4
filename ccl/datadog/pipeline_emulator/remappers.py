"""Remapping processors: attributes and the status moved or copied, strings built from templates, arrays appended."""

from __future__ import annotations

import re
from typing import Any

from ccl.datadog.pipeline_emulator.fields import MISSING, Emulator, Handler, UnsupportedProcessor, delete, get, put


def attribute_remapper(emulator: Emulator, processor: dict[str, Any], event: dict[str, Any]) -> None:
    if processor.get("source_type", "attribute") != "attribute" or \
            processor.get("target_type", "attribute") != "attribute":
        raise UnsupportedProcessor("tag remapping is not emulated")
    remap(event, processor)


def status_remapper(emulator: Emulator, processor: dict[str, Any], event: dict[str, Any]) -> None:
    for source in processor["sources"]:
        value = get(event, source)
        if value is not MISSING and value is not None:
            event["status"] = value
            return


def string_builder_processor(emulator: Emulator, processor: dict[str, Any], event: dict[str, Any]) -> None:
    missing = False

    def substitute(match: re.Match[str]) -> str:
        nonlocal missing
        value = get(event, match.group(1))
        if value is MISSING or value is None:
            missing = True
            return ""
        return str(value)

    text = re.sub(r"%\{([^}]+)\}", substitute, processor["template"])
    if missing and not processor.get("is_replace_missing", False):
        return
    put(event, processor["target"], text)


def array_processor(emulator: Emulator, processor: dict[str, Any], event: dict[str, Any]) -> None:
    operation = processor["operation"]
    if operation["type"] != "append":
        raise UnsupportedProcessor(f"array operation {operation['type']!r} is not emulated")
    value = get(event, operation["source"])
    if value is MISSING:
        return
    target = get(event, operation["target"])
    items = list(target) if isinstance(target, list) else ([] if target is MISSING else [target])
    items.extend(value if isinstance(value, list) else [value])
    put(event, operation["target"], items)
    if not operation.get("preserve_source", True):
        delete(event, operation["source"])


def remap(event: dict[str, Any], processor: dict[str, Any]) -> None:
    for source in processor["sources"]:
        value = get(event, source)
        if value is MISSING or value is None:
            continue
        target = processor["target"]
        if get(event, target) is not MISSING and not processor.get("override_on_conflict", False) \
                and source != target:
            return
        put(event, target, _convert(value, processor.get("target_format", "auto")))
        if not processor.get("preserve_source", False) and source != target:
            delete(event, source)
        return


def _convert(value: Any, target_format: str) -> Any:
    try:
        if target_format == "integer":
            return int(value)
        if target_format == "double":
            return float(value)
        if target_format == "string":
            return str(value)
    except (TypeError, ValueError):
        return value
    return value


REMAPPERS: dict[str, Handler] = {"attribute-remapper": attribute_remapper, "status-remapper": status_remapper,
                                  "string-builder-processor": string_builder_processor,
                                  "array-processor": array_processor}
